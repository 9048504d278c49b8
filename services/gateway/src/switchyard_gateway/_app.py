"""The gateway: an ASGI application that serves every action of the registry over HTTP.

``POST /v1/actions/{name}`` runs the action in this process (``acall_action``), or, with
``Prefer: respond-async``, schedules it (``schedule_action``) and answers 202 with the job's URL;
``GET``/``DELETE /v1/jobs/{id}`` read and cancel jobs; ``GET /v1/actions``, ``/openapi.json`` and
``/docs`` describe the actions without importing a plugin; ``/healthz``, ``/readyz``,
``/metrics``; the dashboard under ``/ui``. Errors are RFC 9457 problem details.

The transport (``switchyard_rq``, and with it redis-py) is imported when a request first needs
Redis, and meanwhile by a thread started once the server listens: a gateway is up as soon as
uvicorn is, and an in-process call without limits never waits for it.

Jobs are scheduled in batches by a thread beside the loop (``_writer``: one round trip for all
the requests waiting). The other Redis calls (a client's rate, a breaker, a job's state) are
single short round trips and run inline on the event loop, as ``acall_action`` runs a sync
handler inline; a sync handler whose policy says ``io_bound`` runs in a thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from switchyard import (
    Config,
    HandlerError,
    InvalidInputError,
    InvalidOutputError,
    Registry,
    SwitchyardError,
    acall_action,
    call_action,
    default_registry,
    load_config,
)

from ._auth import COOKIE, Authenticator, AuthError, Principal
from ._catalog import Catalog
from ._http import Problem, Request, Send, dumps, json_response, problem_response, send
from ._metrics import CONTENT_TYPE, Metrics
from ._settings import Settings

if TYPE_CHECKING:
    from switchyard_rq import BreakerGate, JobHandle

    from ._dashboard import Dashboard
    from ._writer import JobWriter

__all__ = ["Gateway", "create_app"]

log = logging.getLogger("switchyard_gateway")

_JOB_ID: Final = re.compile(r"^[A-Za-z0-9{}_:.-]{1,128}$")
_JSON: Final = (b"content-type", b"application/json")


def _retry_after(seconds: float) -> list[tuple[bytes, bytes]]:
    return [(b"retry-after", str(max(1, math.ceil(seconds))).encode())]


def _prefers_async(request: Request) -> bool:
    prefer = request.headers.get("prefer")
    if not prefer:
        return False
    return any(p.strip().lower() == "respond-async" for p in re.split(r"[,;]", prefer))


@contextmanager
def _continued_trace(request: Request, name: str) -> Iterator[None]:
    """The request's ``traceparent`` made current (with a server span when a tracer provider
    is set up), so that the action's spans, and a job's, continue the caller's trace."""
    parent = request.headers.get("traceparent")
    if not parent:
        yield
        return
    from opentelemetry import context, propagate, trace

    carrier = {"traceparent": parent}
    if request.headers.get("tracestate"):
        carrier["tracestate"] = request.headers["tracestate"]
    extracted = propagate.extract(carrier)
    tracer = trace.get_tracer("switchyard_gateway")
    with tracer.start_as_current_span(
        f"POST /v1/actions/{name}", context=extracted, kind=trace.SpanKind.SERVER
    ):
        token = None
        if not trace.get_current_span().get_span_context().is_valid:
            token = context.attach(extracted)
        try:
            yield
        finally:
            if token is not None:
                context.detach(token)


class Gateway:
    """The ASGI application; one per server process."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry | None = None,
        config: Config | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or load_config()
        self.registry = registry or default_registry()
        self.catalog = Catalog(self.registry, self.config)
        self.auth = Authenticator(settings)
        self.metrics = Metrics()
        self.max_body = settings.max_body or self.config.max_payload_bytes
        self._dashboard: Dashboard | None = None
        self._writer: JobWriter | None = None

    @property
    def writer(self) -> JobWriter:
        if self._writer is None:
            from ._writer import JobWriter

            self._writer = JobWriter(self.registry)
        return self._writer

    @property
    def dashboard(self) -> Dashboard:
        if self._dashboard is None:
            from ._dashboard import Dashboard

            self._dashboard = Dashboard(self)
        return self._dashboard

    # -- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Any, receive: Any, send_: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send_)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send_({"type": "lifespan.startup.complete"})
                    threading.Thread(target=_warm, name="warm-transport", daemon=True).start()
                elif message["type"] == "lifespan.shutdown":
                    await send_({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Any, receive: Any, send_: Send) -> None:
        started = time.perf_counter()
        request = Request(scope, receive)
        labels = ["other", ""]
        status = 500
        try:
            status = await self._route(request, send_, labels)
        except Problem as problem:
            status = problem.status
            await problem_response(send_, problem, request.path)
        except AuthError as error:
            status = error.status
            headers = [(b"www-authenticate", b'Bearer realm="switchyard"')] if status == 401 else []
            slug = "unauthorized" if status == 401 else "forbidden"
            await problem_response(
                send_, Problem(status, slug, error.message, headers=headers), request.path
            )
        except _redis_unavailable() as error:
            status = 503
            log.warning("%s %s: %s", request.method, request.path, error)
            await problem_response(
                send_, Problem(503, "redis-unavailable", "Redis is unavailable; try again later"),
                request.path,
            )  # fmt: skip
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            await problem_response(
                send_, Problem(500, "internal", "the gateway failed; see its log"), request.path
            )
        self.metrics.observe(labels[0], labels[1], status, time.perf_counter() - started)

    async def _route(self, request: Request, send_: Send, labels: list[str]) -> int:
        path, method = request.path, request.method
        if path.startswith("/v1/actions/"):
            labels[0] = "action"
            name = path.removeprefix("/v1/actions/")
            labels[1] = name if name in self.registry else ""
            _allow(method, "POST")
            return await self._action(request, send_, name)
        if path.startswith("/v1/jobs/"):
            labels[0] = "job"
            _allow(method, "GET", "DELETE")
            return await self._job(request, send_, path.removeprefix("/v1/jobs/"))
        if path == "/v1/actions":
            labels[0] = "actions"
            _allow(method, "GET")
            principal = self._principal(request)
            listed = [a for a in self.catalog.listing() if principal.may(a["name"])]
            await json_response(send_, 200, {"actions": listed})
            return 200
        if path == "/ui" or path.startswith("/ui/"):
            labels[0] = "ui"
            return await self.dashboard.serve(request, send_)
        if path == "/healthz":
            labels[0] = "healthz"
            await json_response(send_, 200, {"status": "ok"})
            return 200
        if path == "/readyz":
            labels[0] = "readyz"
            return await self._ready(send_)
        if path == "/metrics":
            labels[0] = "metrics"
            await send(send_, 200, self.metrics.render(), [(b"content-type", CONTENT_TYPE)])
            return 200
        if path == "/openapi.json":
            labels[0] = "openapi"
            await send(send_, 200, self.catalog.openapi(), [_JSON])
            return 200
        if path == "/docs":
            labels[0] = "docs"
            from ._docs import docs_page

            body = docs_page(self.catalog).encode()
            await send(send_, 200, body, [(b"content-type", b"text/html; charset=utf-8")])
            return 200
        raise Problem(404, "not-found", f"no route {path}; see /openapi.json or /docs")

    async def _ready(self, send_: Send) -> int:
        from switchyard_rq import check_redis, redis_url

        check = check_redis(redis_url(config=self.config))
        if check.problem is not None:
            await json_response(send_, 503, {"status": "unavailable", "redis": check.problem})
            return 503
        await json_response(send_, 200, {"status": "ready", "actions": len(self.registry)})
        return 200

    # -- who ---------------------------------------------------------------------------------

    def _principal(self, request: Request, *, ui: bool = False) -> Principal:
        if not self.auth.enabled:
            return self.auth.anonymous(request.client)
        headers = request.headers
        cookie = request.cookie(COOKIE) if ui else None
        return self.auth.authenticate(
            headers.get("authorization"), headers.get("x-api-key"), cookie
        )

    def _take_rate(self, principal: Principal) -> None:
        rate = principal.rate or self.settings.rate
        if rate is None:
            return
        from switchyard_rq import client_rate_wait

        wait = client_rate_wait(principal.client, rate)
        if wait > 0:
            raise Problem(
                429,
                "rate-limited",
                f"client {principal.client!r} is over its rate of {rate}",
                headers=_retry_after(wait),
                retry_after=round(wait, 3),
            )

    # -- actions -----------------------------------------------------------------------------

    async def _action(self, request: Request, send_: Send, name: str) -> int:
        principal = self._principal(request)
        if name not in self.registry:
            suggestions = [s for s in self.catalog.suggestions(name) if principal.may(s)]
            hint = f" (did you mean: {', '.join(suggestions)}?)" if suggestions else ""
            raise Problem(
                404, "unknown-action", f"unknown action {name!r}{hint}", suggestions=suggestions
            )
        principal.require(name)
        self._take_rate(principal)
        body = await request.read(self.max_body)
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            raise Problem(400, "malformed-json", f"the body is not valid JSON: {exc}") from None
        try:
            action = self.registry.resolve(name)
        except SwitchyardError as error:
            log.error("action %s cannot load: %s", name, error)
            raise Problem(500, "action-unavailable", str(error)) from None
        policy = action.policy
        run_async = _prefers_async(request)
        gate: BreakerGate | None = None
        breaker = policy.breaker
        if breaker is not None:
            from switchyard_rq import breaker_enter

            queue = self.config.route(name, policy.queue)
            gate = breaker_enter(name, breaker, queue=queue, probe=not run_async)
            if gate.wait > 0:
                raise Problem(
                    503,
                    "breaker-open",
                    f"the circuit breaker of {name} is open after failures; retry later",
                    headers=_retry_after(gate.wait),
                    retry_after=round(gate.wait, 3),
                )
        with _continued_trace(request, name):
            if run_async:
                return await self._schedule(request, send_, name, data)
            try:
                if policy.io_bound:
                    output = await asyncio.to_thread(
                        call_action, name, data, registry=self.registry
                    )
                else:
                    output = await acall_action(name, data, registry=self.registry)
            except InvalidInputError as error:
                if gate is not None and breaker is not None:
                    from switchyard_rq import breaker_exit

                    breaker_exit(gate, breaker, ok=None)  # a probe with bad input decides nothing
                raise _invalid(error) from None
            except HandlerError as error:
                if gate is not None and breaker is not None:
                    from switchyard_rq import breaker_exit

                    breaker_exit(gate, breaker, ok=False)
                raise Problem(
                    500, "action-failed", str(error), error_type=error.error_type
                ) from None
            except InvalidOutputError as error:
                raise Problem(500, "invalid-output", str(error)) from None
            if gate is not None and breaker is not None:
                from switchyard_rq import breaker_exit

                breaker_exit(gate, breaker, ok=True)
        await send(send_, 200, output.model_dump_json().encode(), [_JSON])
        return 200

    async def _schedule(self, request: Request, send_: Send, name: str, data: Any) -> int:
        from switchyard_rq import CachedHandle, Call, PayloadTooLargeError

        key = request.headers.get("idempotency-key") or None
        try:
            traced = "traceparent" in request.headers
            handle = await self.writer.schedule(Call(name, data, key=key), traced=traced)
        except InvalidInputError as error:
            raise _invalid(error) from None
        except PayloadTooLargeError as error:
            raise Problem(413, "too-large", str(error)) from None
        if isinstance(handle, CachedHandle):  # a cached result: no job, the answer now
            output = handle.result()
            await send(send_, 200, output.model_dump_json().encode(), [_JSON])
            return 200
        url = f"/v1/jobs/{handle.id}"
        await send(
            send_,
            202,
            dumps({"id": handle.id, "action": name, "status": "queued", "url": url}),
            [_JSON, (b"location", url.encode()), (b"preference-applied", b"respond-async")],
        )
        return 202

    # -- jobs --------------------------------------------------------------------------------

    def job_for(self, principal: Principal, job_id: str) -> tuple[JobHandle, dict[str, Any]]:
        """A job the caller may see (its action in their scopes): its handle and description."""
        from switchyard_rq import JobHandle, JobNotFoundError, describe_job

        if not _JOB_ID.match(job_id):
            raise Problem(404, "unknown-job", f"no job {job_id!r}")
        handle = JobHandle(job_id, registry=self.registry)
        try:
            info = describe_job(handle)
        except JobNotFoundError:
            raise Problem(
                404, "unknown-job", f"no job {job_id!r} (wrong id, or it expired)"
            ) from None
        principal.require(info["action"])
        return handle, info

    async def _job(self, request: Request, send_: Send, job_id: str) -> int:
        principal = self._principal(request)
        handle, info = self.job_for(principal, job_id)
        if request.method == "GET":
            await json_response(send_, 200, info)
            return 200
        running = info["status"] == "started"
        if not handle.cancel():
            raise Problem(
                409,
                "not-cancelable",
                f"job {job_id} is {handle.status}: it has ended, there is nothing to cancel",
                status_now=handle.status,
            )
        if running:  # asked to stop: its worker tells it within a second
            await json_response(send_, 202, {"id": job_id, "status": "started", "cancel": True})
            return 202
        await json_response(send_, 200, {"id": job_id, "status": "canceled"})
        return 200


def _warm() -> None:
    """Import the transport (redis-py is a few hundred milliseconds) before a request needs it."""
    try:
        import switchyard_rq  # noqa: F401
    except Exception:  # pragma: no cover - the request that needs it reports the problem
        log.exception("cannot import the transport")


def _redis_unavailable() -> type[Exception]:
    """RedisUnavailableError when the transport is loaded (no request reached Redis without
    loading it), else an exception nothing raises."""
    import sys

    module = sys.modules.get("switchyard_rq")
    if module is None:
        return _Never
    found: type[Exception] = module.RedisUnavailableError
    return found


class _Never(Exception):
    """Raised by nothing."""


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise Problem(
            405,
            "method-not-allowed",
            f"{method} is not allowed here (allowed: {', '.join(allowed)})",
            headers=[(b"allow", ", ".join(allowed).encode())],
        )


def _invalid(error: InvalidInputError) -> Problem:
    fields = [{"field": e.loc, "message": e.message, "type": e.type} for e in error.errors]
    return Problem(422, "invalid-input", str(error), errors=fields)


def create_app() -> Gateway:
    """The application as a server process builds it: settings from the environment (the
    command line passes its flags there), the default registry."""
    return Gateway(Settings.load())
