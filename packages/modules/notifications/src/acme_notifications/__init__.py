"""acme-notifications: Jinja2 templates rendered into email messages (uses acme-users)."""

from __future__ import annotations

from acme_notifications._render import TemplateRenderError
from acme_notifications.actions import (
    SAMPLES,
    EmailOut,
    ListTemplatesIn,
    Mailbox,
    PreviewIn,
    PreviewOut,
    RenderEmailIn,
    TemplateInfo,
    TemplateList,
    WelcomeEmailIn,
    list_templates,
    preview,
    render_email,
    welcome_email,
)

ACTIONS = (render_email, welcome_email, preview, list_templates)

__all__ = [
    "ACTIONS",
    "SAMPLES",
    "EmailOut",
    "ListTemplatesIn",
    "Mailbox",
    "PreviewIn",
    "PreviewOut",
    "RenderEmailIn",
    "TemplateInfo",
    "TemplateList",
    "TemplateRenderError",
    "WelcomeEmailIn",
    "list_templates",
    "preview",
    "render_email",
    "welcome_email",
]
