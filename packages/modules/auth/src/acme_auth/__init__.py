"""acme-auth: password hashing and signed tokens, as switchyard actions."""

from __future__ import annotations

from acme_auth._tokens import SECRET_ENV, MissingSecretError
from acme_auth.actions import (
    HashPasswordIn,
    HashPasswordOut,
    IssueTokenIn,
    IssueTokenOut,
    VerifyPasswordIn,
    VerifyPasswordOut,
    VerifyTokenIn,
    VerifyTokenOut,
    hash_password,
    issue_token,
    verify_password,
    verify_token,
)

ACTIONS = (hash_password, verify_password, issue_token, verify_token)

__all__ = [
    "ACTIONS",
    "SECRET_ENV",
    "HashPasswordIn",
    "HashPasswordOut",
    "IssueTokenIn",
    "IssueTokenOut",
    "MissingSecretError",
    "VerifyPasswordIn",
    "VerifyPasswordOut",
    "VerifyTokenIn",
    "VerifyTokenOut",
    "hash_password",
    "issue_token",
    "verify_password",
    "verify_token",
]
