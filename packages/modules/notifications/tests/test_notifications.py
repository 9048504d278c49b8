from __future__ import annotations

import email
import email.policy

import acme_notifications
import acme_users
import pytest
from switchyard import HandlerError, InvalidInputError, Registry, call_action
from switchyard.testing import make_registry, use_cache, use_registry
from switchyard_db.testing import fresh_database, temporary_server


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    with temporary_server(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture
def db(pg):
    with fresh_database(pg) as settings:
        yield settings


@pytest.fixture(autouse=True)
def registry():
    reg = make_registry(*acme_notifications.ACTIONS, *acme_users.ACTIONS)
    with use_registry(reg), use_cache():
        yield reg


def render(**data):
    base = {
        "to": [{"email": "ada@example.com", "name": "Ada Lovelace"}],
        "subject_template": "Hello {{ name }}",
        "text_template": "Dear {{ name }},\nyour code is {{ code }}.\n",
        "context": {"name": "Ada", "code": "1234"},
    }
    return call_action("notifications.render_email", {**base, **data})


def parse(out):
    return email.message_from_string(out.message, policy=email.policy.default)


def fields(exc):
    return [error.loc for error in exc.value.errors]


def test_render_email_builds_a_parseable_message():
    out = render()
    assert out.subject == "Hello Ada"
    assert out.text == "Dear Ada,\nyour code is 1234.\n"
    assert out.html is None
    assert "\r\n" in out.message  # SMTP line ends
    msg = parse(out)
    assert msg["Subject"] == "Hello Ada"
    assert msg["To"] == "Ada Lovelace <ada@example.com>"
    assert msg["From"] == "Acme <no-reply@acme.example>"
    assert msg["Message-ID"] == out.message_id
    assert out.message_id.endswith("@acme.example>")
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().replace("\r\n", "\n") == out.text
    assert out.size_bytes == len(out.message.encode())


def test_html_part_is_autoescaped_and_text_is_not():
    out = render(
        html_template="<p>Hi {{ name }}</p>",
        context={"name": "<script>x</script>", "code": "1"},
    )
    assert out.html == "<p>Hi &lt;script&gt;x&lt;/script&gt;</p>"
    assert "<script>x</script>" in out.text
    msg = parse(out)
    assert msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(preferencelist=("html",))
    assert html is not None
    assert "&lt;script&gt;" in html.get_content()


def test_non_ascii_content_survives_the_round_trip():
    out = render(context={"name": "Zoë 🚀", "code": "ü"}, to=[{"email": "zoe@example.com"}])
    msg = parse(out)
    assert msg["Subject"] == "Hello Zoë 🚀"
    assert "Zoë 🚀" in msg.get_content()


def test_context_cannot_inject_headers_through_the_subject():
    out = render(context={"name": "x\r\nBcc: victim@example.com", "code": "1"})
    msg = parse(out)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Hello x Bcc: victim@example.com"


def test_sandbox_refuses_unsafe_attribute_access():
    with pytest.raises(HandlerError) as exc:
        render(text_template="{{ name.__class__.__mro__ }}")
    assert exc.value.error_type == "TemplateRenderError"
    assert "text_template" in str(exc.value)


def test_missing_attribute_fails_naming_the_template_part():
    with pytest.raises(HandlerError) as exc:
        render(
            subject_template="Hi {{ user.first_name }}",
            context={"user": {}, "name": "", "code": ""},
        )
    assert exc.value.error_type == "TemplateRenderError"
    assert "subject_template" in str(exc.value)


def test_missing_variables_are_an_input_error_on_context():
    with pytest.raises(InvalidInputError) as exc:
        render(context={"name": "Ada"})
    assert fields(exc) == ["context"]
    assert "code" in str(exc.value)


def test_template_syntax_error_names_the_field_and_line():
    with pytest.raises(InvalidInputError) as exc:
        render(text_template="line one\n{% if x %}never closed")
    assert fields(exc) == ["text_template"]
    assert "line 2" in str(exc.value)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"to": []}, "to"),
        ({"to": [{"email": "not-an-address"}]}, "to.0.email"),
        ({"to": [{"email": "a@example.com", "name": "Evil\nBcc: x@y.z"}]}, "to.0.name"),
        ({"sender": {"email": "a@b@c"}}, "sender.email"),
        ({"subject_template": ""}, "subject_template"),
        ({"html_template": "{{ unclosed"}, "html_template"),
        ({"cc": ["b@example.com"]}, "cc"),
    ],
)
def test_render_email_bad_input_names_the_field(data, field):
    with pytest.raises(InvalidInputError) as exc:
        render(**data)
    assert fields(exc) == [field]


def test_welcome_email_is_addressed_from_the_user_profile(db):
    user = call_action(
        "users.create_user",
        {
            "email": "grace@example.com",
            "display_name": "Grace Hopper",
            "timezone": "America/New_York",
        },
    )
    out = call_action(
        "notifications.welcome_email",
        {
            "user_id": user.id,
            "product_name": "Switchyard",
            "login_url": "https://app.example/login",
        },
    )
    assert out.to == ["Grace Hopper <grace@example.com>"]
    assert out.subject == "Welcome to Switchyard, Grace Hopper!"
    assert "Sign in here: https://app.example/login" in out.text
    assert "America/New_York" in out.text
    assert out.html is not None
    assert 'href="https://app.example/login"' in out.html


def test_welcome_email_for_an_unknown_user_fails(db):
    with pytest.raises(HandlerError) as exc:
        call_action("notifications.welcome_email", {"user_id": 5})
    assert exc.value.error_type == "UserNotFoundError"


def test_preview_merges_overrides_into_the_sample():
    out = call_action(
        "notifications.preview",
        {"template": "password_reset", "context": {"expires_in_minutes": 10}},
    )
    assert out.subject == "Reset your Acme password"
    assert "within 10 minutes" in out.text
    assert acme_notifications.SAMPLES["password_reset"]["reset_url"] in out.text
    assert out.context["expires_in_minutes"] == 10


def test_list_templates_reports_variables():
    out = call_action("notifications.list_templates", {})
    by_name = {t.name: t for t in out.templates}
    assert set(by_name) == {"welcome", "password_reset", "invoice_ready"}
    assert by_name["welcome"].variables == ["login_url", "product_name", "user"]
    assert by_name["invoice_ready"].has_html is False
    # every sample covers its template's variables
    for name, info in by_name.items():
        assert set(info.variables) <= set(acme_notifications.SAMPLES[name])


def test_preview_and_welcome_bad_input():
    with pytest.raises(InvalidInputError) as exc:
        call_action("notifications.preview", {"template": "goodbye"})
    assert fields(exc) == ["template"]
    with pytest.raises(InvalidInputError) as exc:
        call_action("notifications.welcome_email", {"user_id": 1, "login_url": "javascript:x"})
    assert fields(exc) == ["login_url"]


def test_every_entry_point_resolves_to_the_action_it_names():
    installed = Registry.from_entry_points()
    ours = sorted(action.name for action in acme_notifications.ACTIONS)
    assert [name for name in installed.names() if name.startswith("notifications.")] == ours
    for name in ours:
        assert installed.info(name).distribution == "acme-notifications"
        assert installed.resolve(name).name == name


def test_a_queued_call_round_trips_through_json():
    data = {
        "to": [{"email": "ada@example.com"}],
        "subject_template": "Hi {{ who }}",
        "text_template": "{{ who }}",
        "context": {"who": "Ada"},
    }
    queued = acme_notifications.RenderEmailIn.model_validate(data).model_dump_json()
    assert call_action("notifications.render_email", queued).subject == "Hi Ada"
