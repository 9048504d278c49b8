"""The Switchyard HTTP gateway: every action over HTTP (in-process or as a job), OpenAPI from the
manifest, API keys and JWT, per-client rate limits and per-action circuit breakers shared through
Redis, Prometheus metrics, and a web dashboard at ``/ui``."""

from __future__ import annotations

from ._app import Gateway, create_app
from ._auth import Principal, hash_key, new_key
from ._settings import ApiKey, JwtSettings, Settings, SettingsError

__all__ = [
    "ApiKey",
    "Gateway",
    "JwtSettings",
    "Principal",
    "Settings",
    "SettingsError",
    "create_app",
    "hash_key",
    "new_key",
]
