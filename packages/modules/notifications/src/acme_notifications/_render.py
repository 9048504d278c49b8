"""Jinja2 environments and email assembly.

Built-in templates (``templates/<name>.subject.txt``, ``.txt`` and optionally ``.html``) load
from the package; templates given in an action's input are compiled in a sandbox. Both use
``StrictUndefined``: a missing variable is an error, never an empty string in a customer's mail.
HTML autoescapes; text and subjects do not (they are not HTML).
"""

from __future__ import annotations

import email.policy
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from importlib import resources
from typing import Any, Final

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

BUILTIN: Final = ("welcome", "password_reset", "invoice_ready")
PARTS: Final = ("subject.txt", "txt", "html")


@functools.cache
def _sandbox(*, html: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=html, keep_trailing_newline=True
    )


@functools.cache
def _builtin_sources() -> dict[str, dict[str, str]]:
    """Every built-in template's parts, read from package data once (at first use)."""
    folder = resources.files("acme_notifications") / "templates"
    sources: dict[str, dict[str, str]] = {}
    for name in BUILTIN:
        parts: dict[str, str] = {}
        for part in PARTS:
            entry = folder / f"{name}.{part}"
            if entry.is_file():
                parts[part] = entry.read_text(encoding="utf-8")
        sources[name] = parts
    return sources


@functools.lru_cache(maxsize=256)
def compile_template(source: str, *, html: bool) -> jinja2.Template:
    """Compile in the sandbox; TemplateSyntaxError says what and on which line."""
    return _sandbox(html=html).from_string(source)


def check_syntax(source: str, *, html: bool) -> None:
    try:
        _sandbox(html=html).parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from None


def variables(sources: Iterable[tuple[str, bool]]) -> set[str]:
    """The top-level names that the templates read from their context."""
    names: set[str] = set()
    for source, html in sources:
        names |= meta.find_undeclared_variables(_sandbox(html=html).parse(source))
    return names


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str | None


def _one_line(subject: str) -> str:
    # a rendered subject must stay one header line: no header injection through the context
    return " ".join(subject.split())


class TemplateRenderError(ValueError):
    """A template failed while rendering (an attribute missing from the context, say)."""

    def __init__(self, part: str, cause: jinja2.TemplateError) -> None:
        super().__init__(f"{part}: {cause.message or type(cause).__name__}")
        self.part = part


def _render(part: str, source: str, context: Mapping[str, Any], *, html: bool) -> str:
    try:
        return compile_template(source, html=html).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateRenderError(part, exc) from exc


def render_sources(
    subject: str, text: str, html: str | None, context: Mapping[str, Any]
) -> Rendered:
    """Render the three parts; a failure raises TemplateRenderError naming the part."""
    return Rendered(
        subject=_one_line(_render("subject_template", subject, context, html=False)),
        text=_render("text_template", text, context, html=False),
        html=None if html is None else _render("html_template", html, context, html=True),
    )


def builtin(name: str) -> dict[str, str]:
    return _builtin_sources()[name]


def render_builtin(name: str, context: Mapping[str, Any]) -> Rendered:
    parts = builtin(name)
    return render_sources(parts["subject.txt"], parts["txt"], parts.get("html"), context)


def build_message(
    rendered: Rendered, *, sender: Address, to: Sequence[Address], reply_to: Address | None
) -> EmailMessage:
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = list(to)
    if reply_to is not None:
        message["Reply-To"] = reply_to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.domain)
    message.set_content(rendered.text)
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html")
    return message
