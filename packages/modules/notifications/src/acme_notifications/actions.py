"""The notifications actions: Jinja2 templates rendered into email messages.

Jinja2 is imported at the top (through ``_render``), on purpose: it is the heavy import that
lazy loading keeps out of a worker until a notifications job arrives. Templates and their
environments are built at first use, not at import.
"""

from __future__ import annotations

import json
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Annotated, Any, Final, Literal

from acme_users import User, UserStore
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
)
from switchyard import Context, action

from acme_notifications._render import (
    BUILTIN,
    Rendered,
    build_message,
    builtin,
    check_syntax,
    render_builtin,
    render_sources,
    variables,
)

MAX_CONTEXT_BYTES: Final = 64 * 1024

TemplateName = Literal["welcome", "password_reset", "invoice_ready"]
Url = Annotated[str, Field(max_length=2000, pattern=r"^https?://[^\s<>\"]+$")]
TemplateContext = dict[str, JsonValue]


class Mailbox(BaseModel):
    """An address, with an optional display name: ``Ada <ada@example.com>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
    name: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[^\r\n]+$")

    @field_validator("email")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            Address(addr_spec=value)
        except (HeaderParseError, ValueError, IndexError):
            raise ValueError("not an email address") from None
        return value

    def address(self) -> Address:
        return Address(display_name=self.name or "", addr_spec=self.email)


DEFAULT_SENDER: Final = Mailbox(email="no-reply@acme.example", name="Acme")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _small_json(value: TemplateContext) -> TemplateContext:
    size = len(json.dumps(value).encode("utf-8"))
    if size > MAX_CONTEXT_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {MAX_CONTEXT_BYTES} allowed")
    return value


class RenderEmailIn(_Input):
    sender: Mailbox = DEFAULT_SENDER
    to: list[Mailbox] = Field(min_length=1, max_length=50)
    reply_to: Mailbox | None = None
    subject_template: str = Field(min_length=1, max_length=1000)
    text_template: str = Field(min_length=1, max_length=100_000)
    html_template: str | None = Field(None, min_length=1, max_length=200_000)
    context: TemplateContext = Field(default_factory=dict, validate_default=True)

    @field_validator("subject_template", "text_template")
    @classmethod
    def _text_syntax(cls, value: str) -> str:
        check_syntax(value, html=False)
        return value

    @field_validator("html_template")
    @classmethod
    def _html_syntax(cls, value: str | None) -> str | None:
        if value is not None:
            check_syntax(value, html=True)
        return value

    @field_validator("context")
    @classmethod
    def _covers_the_templates(cls, value: TemplateContext, info: ValidationInfo) -> TemplateContext:
        _small_json(value)
        sources = [
            (info.data[name], name == "html_template")
            for name in ("subject_template", "text_template", "html_template")
            if info.data.get(name) is not None
        ]
        missing = sorted(variables(sources) - set(value))
        if missing:
            raise ValueError(f"the templates use {', '.join(missing)}, missing from the context")
        return value


class EmailOut(BaseModel):
    message_id: str
    subject: str
    sender: str
    to: list[str]
    text: str
    html: str | None
    message: str = Field(description="the whole message, RFC 5322, CRLF line ends")
    size_bytes: int


class WelcomeEmailIn(_Input):
    user_id: int = Field(ge=1, le=2**62)
    sender: Mailbox = DEFAULT_SENDER
    product_name: str = Field("Acme", min_length=1, max_length=60, pattern=r"^[^\r\n]+$")
    login_url: Url | None = None


class PreviewIn(_Input):
    template: TemplateName
    context: TemplateContext = Field(
        default_factory=dict, description="overrides the sample context"
    )

    @field_validator("context")
    @classmethod
    def _small(cls, value: TemplateContext) -> TemplateContext:
        return _small_json(value)


class PreviewOut(BaseModel):
    template: TemplateName
    subject: str
    text: str
    html: str | None
    context: dict[str, Any] = Field(description="the context used: sample plus overrides")


class ListTemplatesIn(_Input):
    pass


class TemplateInfo(BaseModel):
    name: TemplateName
    variables: list[str]
    has_html: bool


class TemplateList(BaseModel):
    templates: list[TemplateInfo]


_SAMPLE_USER: Final = {
    "id": 1,
    "email": "ada@example.com",
    "display_name": "Ada Lovelace",
    "locale": "en",
    "timezone": "Europe/London",
}
SAMPLES: Final[dict[str, dict[str, Any]]] = {
    "welcome": {
        "user": _SAMPLE_USER,
        "product_name": "Acme",
        "login_url": "https://app.acme.example/login",
    },
    "password_reset": {
        "user": _SAMPLE_USER,
        "product_name": "Acme",
        "reset_url": "https://app.acme.example/reset/8f14e45f",
        "expires_in_minutes": 30,
    },
    "invoice_ready": {
        "user": _SAMPLE_USER,
        "product_name": "Acme",
        "invoice_number": "INV-000042",
        "total": "108.25",
        "currency": "USD",
        "due_on": "2026-04-14",
        "pay_url": "https://app.acme.example/pay/INV-000042",
    },
}


def _email_out(rendered: Rendered, message: EmailMessage) -> EmailOut:
    serialized = message.as_string()
    return EmailOut(
        message_id=str(message["Message-ID"]),
        subject=rendered.subject,
        sender=str(message["From"]),
        to=[str(address) for address in message["To"].addresses],
        text=rendered.text,
        html=rendered.html,
        message=serialized,
        size_bytes=len(serialized.encode("utf-8")),
    )


def _user_context(user: User) -> dict[str, Any]:
    return user.model_dump(include={"id", "email", "display_name", "locale", "timezone"})


@action(
    "notifications.render_email",
    description="Render subject, text and optional HTML templates into an email message.",
)
def render_email(data: RenderEmailIn) -> EmailOut:
    rendered = render_sources(
        data.subject_template, data.text_template, data.html_template, data.context
    )
    message = build_message(
        rendered,
        sender=data.sender.address(),
        to=[mailbox.address() for mailbox in data.to],
        reply_to=None if data.reply_to is None else data.reply_to.address(),
    )
    return _email_out(rendered, message)


@action(
    "notifications.welcome_email",
    description="The welcome email for an acme user, addressed and rendered from their profile.",
)
def welcome_email(data: WelcomeEmailIn, ctx: Context) -> EmailOut:
    with ctx.db().read().connection() as conn:
        user = UserStore(conn).require(data.user_id)
    context = {
        "user": _user_context(user),
        "product_name": data.product_name,
        "login_url": data.login_url,
    }
    rendered = render_builtin("welcome", context)
    to = Address(display_name=user.display_name, addr_spec=user.email)
    message = build_message(rendered, sender=data.sender.address(), to=[to], reply_to=None)
    return _email_out(rendered, message)


@action(
    "notifications.preview",
    description="Render a built-in template with sample data (and your overrides) to look at.",
)
def preview(data: PreviewIn) -> PreviewOut:
    context = {**SAMPLES[data.template], **data.context}
    rendered = render_builtin(data.template, context)
    return PreviewOut(
        template=data.template,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        context=context,
    )


@action("notifications.list_templates", description="The built-in templates and their variables.")
def list_templates(data: ListTemplatesIn) -> TemplateList:
    infos = []
    for name in BUILTIN:
        parts = builtin(name)
        sources = [(source, part == "html") for part, source in parts.items()]
        infos.append(
            TemplateInfo.model_validate(
                {"name": name, "variables": sorted(variables(sources)), "has_html": "html" in parts}
            )
        )
    return TemplateList(templates=infos)
