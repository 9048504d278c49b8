"""acme-audit: an append-only, hash-chained log that detects tampering."""

from __future__ import annotations

from acme_audit._log import LOG_ENV, DamagedLogError
from acme_audit.actions import (
    Anchor,
    AppendIn,
    Entry,
    HeadIn,
    HeadOut,
    ReadIn,
    ReadOut,
    VerifyChainIn,
    VerifyChainOut,
    append,
    head,
    read,
    verify_chain,
)

ACTIONS = (append, read, verify_chain, head)

__all__ = [
    "ACTIONS",
    "LOG_ENV",
    "Anchor",
    "AppendIn",
    "DamagedLogError",
    "Entry",
    "HeadIn",
    "HeadOut",
    "ReadIn",
    "ReadOut",
    "VerifyChainIn",
    "VerifyChainOut",
    "append",
    "head",
    "read",
    "verify_chain",
]
