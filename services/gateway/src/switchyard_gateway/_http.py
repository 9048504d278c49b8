"""The little HTTP the gateway needs on top of ASGI: a request's parts, its body under a size
limit, responses, and errors as RFC 9457 problem details (``application/problem+json``).

The gateway is a bare ASGI application: measured against Starlette and FastAPI on uvicorn, a
framework's routing and request objects cost more per request than everything the gateway does
for a trivial action (docs/gateway.md, "Choosing the server").
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http import HTTPStatus
from typing import Any, Final, final
from urllib.parse import parse_qs

__all__ = ["Problem", "Request", "json_response", "problem_response", "send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: problem types: this URN and a slug (docs/gateway.md lists them)
PROBLEM_BASE: Final = "urn:switchyard:gateway:"
_JSON: Final = (b"content-type", b"application/json")
_PROBLEM: Final = (b"content-type", b"application/problem+json")


class Problem(Exception):
    """An error answer: ``status``, a short ``slug`` (its type), ``detail`` for people, and any
    extension members (``errors``, ``suggestions``, ``retry_after``...)."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        headers: Iterable[tuple[bytes, bytes]] = (),
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = list(headers)
        self.extensions = extensions

    def body(self, instance: str) -> dict[str, Any]:
        return {
            "type": PROBLEM_BASE + self.slug,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            **self.extensions,
        }


@final
class Request:
    """What a handler reads of a request: method, path, query, headers (lower-case names; the
    last of repeated ones), the peer, and the body once :meth:`read` ran."""

    __slots__ = (
        "body", "client", "headers", "method", "path", "query_string", "receive", "scheme",
    )  # fmt: skip

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        #: https behind a TLS-terminating proxy too, when uvicorn trusts its X-Forwarded-Proto
        self.scheme: str = scope.get("scheme", "http")
        self.query_string: bytes = scope.get("query_string", b"")
        self.headers: dict[str, str] = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
        }
        peer = scope.get("client")
        self.client = peer[0] if peer else "unknown"
        self.receive = receive
        self.body = b""

    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string.decode("latin-1"))

    def cookie(self, name: str) -> str | None:
        for part in self.headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name and value:
                return value
        return None

    async def read(self, limit: int) -> bytes:
        """The whole body; Problem 413 when it is (or is declared) over ``limit`` bytes, before
        more than that is read."""
        declared = self.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise Problem(400, "bad-request", "Content-Length must be a number of bytes")
            if int(declared) > limit:
                raise too_large(limit)
        chunks = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        self.body = b"".join(chunks)
        return self.body

    async def form(self, limit: int) -> dict[str, list[str]]:
        """An ``application/x-www-form-urlencoded`` body (the dashboard's forms)."""
        return parse_qs((await self.read(limit)).decode("utf-8", "replace"))


def too_large(limit: int) -> Problem:
    return Problem(
        413, "too-large", f"the request body is over the limit of {limit} bytes", limit=limit
    )


async def send(
    send_: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    head = [(b"content-length", str(len(body)).encode()), *headers]
    await send_({"type": "http.response.start", "status": status, "headers": head})
    await send_({"type": "http.response.body", "body": body})


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


async def json_response(
    send_: Send, status: int, value: Any, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await send(send_, status, dumps(value), [_JSON, *headers])


async def problem_response(send_: Send, problem: Problem, instance: str) -> None:
    await send(send_, problem.status, dumps(problem.body(instance)), [_PROBLEM, *problem.headers])
