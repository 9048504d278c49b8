"""JSON, never pickle: RQ's Serializer protocol (``dumps`` -> bytes, ``loads`` <- bytes)."""

from __future__ import annotations

import json
from typing import Any, final

__all__ = ["JSONSerializer"]


@final
class JSONSerializer:
    """What Switchyard jobs are written with; pass it to RQ's tools
    (``--serializer switchyard_rq.JSONSerializer``) to read their data and results."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    @staticmethod
    def loads(data: bytes | str) -> Any:
        return json.loads(data)
