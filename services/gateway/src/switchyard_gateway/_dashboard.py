"""The dashboard at ``/ui``: server-rendered pages of what ``switchyard top`` and ``switchyard
jobs`` show (the same functions compute it: ``read_snapshot``/``stats_view``, ``failed_jobs``,
``describe_job``), with retry, bulk retry and cancel. No JavaScript build: each page refreshes
its main section every 2 s with a few lines of inline script; usable on a phone.

Behind the gateway's auth: a browser signs in once with an API key or JWT (``/ui/login``), kept
in an HttpOnly, SameSite=Strict cookie; forms that change something also check ``Origin``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

from switchyard_rq import (
    StatsSnapshot,
    failed_jobs,
    get_connection,
    read_snapshot,
    redact_url,
    redis_url,
    stats_view,
)

from ._auth import COOKIE, DASHBOARD, AuthError, Principal
from ._http import Problem, Request, Send, send
from ._pages import PAGES, layout

if TYPE_CHECKING:
    from ._app import Gateway

__all__ = ["Dashboard"]

_WINDOW: Final = 10.0  # rates over the last ~10 s, as top's
_FORM_LIMIT: Final = 64 * 1024
_HTML: Final = (b"content-type", b"text/html; charset=utf-8")


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 10:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.1f} s"
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def _age(seconds: float) -> str:
    return "-" if seconds <= 0 else _ms(seconds)


def _table(headers: list[str], rows: list[list[str]], empty: str, numeric: int = 1) -> str:
    """A table; cells are HTML already (escaped by the caller); columns after the first
    ``numeric`` are right-aligned."""
    if not rows:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(
        f'<th class="{"num" if i >= numeric else ""}">{escape(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i >= numeric else ""}" '
            f'data-label="{escape(headers[i])}">{c}</td>'
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


class Dashboard:
    """The pages; keeps the last ~10 s of snapshots to compute rates (per server process)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._history: deque[StatsSnapshot] = deque()
        self._renderers: dict[str, Callable[[Request, Principal], str]] = {
            "/ui": self._overview,
            "/ui/queues": self._queues,
            "/ui/workers": self._workers,
            "/ui/actions": self._actions,
            "/ui/failed": self._failed,
        }

    # -- entry -------------------------------------------------------------------------------

    async def serve(self, request: Request, send_: Send) -> int:
        path = request.path.rstrip("/") or "/ui"
        if path == "/ui/login":
            return await self._login(request, send_)
        if path == "/ui/logout":
            return await self._redirect(send_, "/ui/login", clear=True)
        try:
            principal = self._principal(request)
        except AuthError as error:
            if request.method == "GET" and error.status == 401:
                return await self._redirect(send_, "/ui/login?" + urlencode({"next": path}))
            raise
        principal.require_dashboard()
        if request.method == "POST":
            self._check_origin(request)
            return await self._post(request, send_, principal, path)
        if request.method != "GET":
            raise Problem(405, "method-not-allowed", f"{request.method} is not allowed here")
        partial = "partial" in request.query()
        if path.startswith("/ui/jobs/"):
            return await self._page(
                send_,
                request,
                "Job",
                self._job(principal, path.removeprefix("/ui/jobs/"), request),
                partial,
            )
        if path == "/ui/jobs":
            job_id = request.query().get("id", [""])[0].strip()
            return await self._redirect(send_, "/ui/jobs/" + quote(job_id, safe="{}"))
        for url, title, _ in PAGES:
            if path == url:
                render = self._renderers[url]
                return await self._page(send_, request, title, render(request, principal), partial)
        raise Problem(404, "not-found", f"no dashboard page {path}")

    def _principal(self, request: Request) -> Principal:
        gateway = self.gateway
        if not gateway.auth.enabled:
            return gateway.auth.anonymous(request.client)
        return gateway._principal(request, ui=True)

    def _check_origin(self, request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise Problem(403, "forbidden", f"a form from {origin} may not act on this dashboard")

    async def _page(
        self, send_: Send, request: Request, title: str, main: str, partial: bool
    ) -> int:
        if partial:
            body = main
        else:
            signed_in = self.gateway.auth.enabled
            body = layout(title, request.path, main, signed_in=signed_in)
        await send(send_, 200, body.encode(), [_HTML, (b"cache-control", b"no-store")])
        return 200

    async def _redirect(
        self,
        send_: Send,
        location: str,
        *,
        clear: bool = False,
        cookie: str | None = None,
        secure: bool = False,
    ) -> int:
        headers = [(b"location", location.encode())]
        if clear:
            headers.append(
                (
                    b"set-cookie",
                    f"{COOKIE}=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict".encode(),
                )
            )
        if cookie is not None:
            flags = "Path=/ui; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
            headers.append((b"set-cookie", f"{COOKIE}={cookie}; {flags}".encode()))
        await send(send_, 303, b"", headers)
        return 303

    # -- sign-in -----------------------------------------------------------------------------

    async def _login(self, request: Request, send_: Send) -> int:
        error = ""
        target = request.query().get("next", ["/ui"])[0]
        if not target.startswith("/ui"):
            target = "/ui"
        if request.method == "POST":
            self._check_origin(request)
            form = await request.form(_FORM_LIMIT)
            token = form.get("key", [""])[0].strip()
            target = form.get("next", [target])[0]
            if not target.startswith("/ui"):
                target = "/ui"
            try:
                principal = self.gateway.auth.authenticate(None, token, None)
                principal.require_dashboard()
            except AuthError as exc:
                error = exc.message
            else:
                if any(c in token for c in ';, "\\'):  # pragma: no cover - never in keys or JWTs
                    error = "that credential cannot be kept in a cookie"
                else:
                    secure = request.scheme == "https"
                    return await self._redirect(send_, target, cookie=token, secure=secure)
        main = f"""
<section class="card login">
  <h2>Sign in</h2>
  <p>An API key or JWT whose scopes include <code>{DASHBOARD}</code>.</p>
  {f'<p class="error" role="alert">{escape(error)}</p>' if error else ""}
  <form method="post" action="/ui/login">
    <input type="hidden" name="next" value="{escape(target)}">
    <label>Key or token <input name="key" type="password" autocomplete="off" required></label>
    <button type="submit">Sign in</button>
  </form>
</section>"""
        status = 401 if error else 200
        await send(
            send_, status, layout("Sign in", "/ui/login", main, live=False).encode(), [_HTML]
        )
        return status

    # -- data --------------------------------------------------------------------------------

    def _view(self) -> dict[str, Any]:
        connection = get_connection()
        snap = read_snapshot(connection)
        history = self._history
        history.append(snap)
        while len(history) > 2 and snap.time - history[1].time >= _WINDOW:
            history.popleft()
        return stats_view(history[0], snap, redact_url(redis_url()))

    # -- pages -------------------------------------------------------------------------------

    def _overview(self, request: Request, principal: Principal) -> str:
        view = self._view()
        w = view["workers"]
        depth = sum(q["depth"] for q in view["queues"])
        flight = sum(q["in_flight"] for q in view["queues"])
        failed = sum(a["failed"] for a in view["actions"])
        cards = [
            ("Queued", str(depth), "/ui/queues"),
            ("In flight", str(flight), "/ui/queues"),
            ("Worker processes", str(w["processes"]), "/ui/workers"),
            ("Failed (counted)", str(failed), "/ui/failed"),
        ]
        tiles = "".join(
            f'<a class="tile" href="{url}"><span class="n">{escape(n)}</span>'
            f"<span>{escape(t)}</span></a>"
            for t, n, url in cards
        )
        lookup = """
<form class="lookup" method="get" action="/ui/jobs">
  <label>Job id <input name="id" required autocomplete="off"></label>
  <button type="submit">Open</button>
</form>"""
        return (
            f'<section class="tiles">{tiles}</section>{lookup}'
            f"<h2>Queues</h2>{self._queues_table(view)}"
            f"<h2>Busiest actions</h2>{self._actions_table(view, 10)}"
            f'<p class="meta">Redis {escape(view["redis"])}; rates over {view["window"]:.1f} s</p>'
        )

    def _queues(self, request: Request, principal: Principal) -> str:
        view = self._view()
        return f"<h2>Queues</h2>{self._queues_table(view)}" + self._flow_table(view)

    def _queues_table(self, view: dict[str, Any]) -> str:
        rows = [
            [
                escape(q["queue"]),
                str(q["depth"]),
                _age(q["oldest_age"]),
                str(q["in_flight"]),
                str(q["scheduled"]),
                f"{q['rate_in']:.1f}",
                f"{q['rate_out']:.1f}",
            ]
            for q in view["queues"]
        ]
        headers = ["Queue", "Depth", "Oldest", "In flight", "Scheduled", "In/s", "Out/s"]
        if any(q.get("node") for q in view["queues"]):  # on a Redis Cluster: each queue's node
            headers.append("Node")
            for row, q in zip(rows, view["queues"], strict=True):
                row.append(escape(q.get("node") or ""))
        return _table(headers, rows, "No queues yet.")

    def _actions(self, request: Request, principal: Principal) -> str:
        view = self._view()
        return f"<h2>Actions</h2>{self._actions_table(view, None)}" + self._flow_table(view)

    def _actions_table(self, view: dict[str, Any], limit: int | None) -> str:
        busiest = sorted(view["actions"], key=lambda a: (-a["rate"], a["action"]))[:limit]
        rows = []
        for a in busiest:
            err = a["error_rate"] * 100
            rows.append(
                [
                    escape(a["action"]),
                    escape(a["queue"]),
                    f"{a['rate']:.1f}",
                    _ms(a["p50"]),
                    _ms(a["p95"]),
                    _ms(a["p99"]),
                    f'<span class="{"bad" if err else ""}">{err:.1f}%</span>',
                    str(a["succeeded"]),
                    str(a["failed"]),
                ]
            )
        return _table(
            ["Action", "Queue", "Runs/s", "p50", "p95", "p99", "Errors", "OK", "Failed"],
            rows,
            "No job statistics yet: they appear once workers have run jobs.",
            numeric=2,
        )

    def _flow_table(self, view: dict[str, Any]) -> str:
        rows = []
        for f in view["flow"]:
            state = f"{f['in_use']}/{f['limit']}" if f["kind"] == "concurrency" else f["state"]
            if f["state"] == "open":
                state = f'<span class="bad">{escape(state)}</span>'
            probe = f"{f['probe_in']:.0f} s" if f["probe_in"] is not None else ""
            rows.append([escape(f["name"]), escape(f["kind"]), state, str(f["waiting"]), probe])
        if not rows:
            return ""
        return "<h2>Flow control</h2>" + _table(
            ["Limit", "Kind", "State", "Waiting", "Probe in"], rows, "", numeric=2
        )

    def _workers(self, request: Request, principal: Principal) -> str:
        view = self._view()
        w = view["workers"]
        summary = (
            f'<p class="meta">{w["pools"]} pool(s), {w["processes"]} processes, {w["busy"]} busy, '
            f"{w['recycled']} recycled, {w['consumers']} consumers publishing stats</p>"
        )
        rows = []
        for pool in view["pools"]:
            extra = ", ".join(
                f"{escape(str(k))} {escape(_number(v))}"
                for k, v in pool.items()
                if k not in ("name", "processes", "busy", "recycled")
            )
            rows.append(
                [
                    escape(pool["name"]),
                    str(int(pool.get("processes", 0))),
                    str(int(pool.get("busy", 0))),
                    str(int(pool.get("recycled", 0))),
                    extra,
                ]
            )
        table = _table(
            ["Pool", "Processes", "Busy", "Recycled", "More"],
            rows,
            "No worker pools publishing.",
            1,
        )
        return f"<h2>Workers</h2>{summary}{table}"

    def _failed(self, request: Request, principal: Principal) -> str:
        query = request.query()
        notice = ""
        if "retried" in query:
            notice = (
                f'<p class="notice" role="status">Retried {escape(query["retried"][0])} job(s).</p>'
            )
        rows = [row for row in failed_jobs(limit=200) if principal.may(row["action"])]
        if not rows:
            return f'<h2>Failed jobs</h2>{notice}<p class="empty">No failed jobs.</p>'
        items = []
        for row in rows:
            error = row["error"] or {}
            job_id = escape(row["id"])
            items.append(
                f'<li class="job"><label><input type="checkbox" name="id" value="{job_id}"> '
                f'<a href="/ui/jobs/{job_id}">{job_id[:12]}</a></label> '
                f'<span class="action">{escape(row["action"])}</span> '
                f'<span class="queue">{escape(row["queue"])}</span>'
                f'<div class="error">{escape(str(error.get("type", "")))}: '
                f"{escape(str(error.get('message', '')))}</div>"
                f'<button type="submit" name="one" value="{job_id}">Retry</button></li>'
            )
        return (
            f"<h2>Failed jobs</h2>{notice}"
            '<form method="post" action="/ui/failed/retry" class="failed">'
            '<div class="bulk">'
            '<button type="submit" name="selected" value="1">Retry selected</button> '
            '<button type="submit" name="all" value="1">Retry all</button></div>'
            f'<ul class="jobs">{"".join(items)}</ul></form>'
        )

    def _job(self, principal: Principal, job_id: str, request: Request) -> str:
        handle, info = self.gateway.job_for(principal, job_id)
        query = request.query()
        notice = ""
        if "done" in query:
            notice = f'<p class="notice" role="status">{escape(query["done"][0])}</p>'
        rows = "".join(
            f"<tr><th>{escape(k)}</th><td><code>{escape(_show(v))}</code></td></tr>"
            for k, v in info.items()
        )
        actions = ""
        quoted = escape(handle.id)
        if info["status"] in ("queued", "scheduled", "deferred"):
            actions += (
                f'<form method="post" action="/ui/jobs/{quoted}/cancel">'
                '<button type="submit" class="danger">Cancel job</button></form>'
            )
        if info["status"] in ("failed", "canceled"):
            actions += (
                f'<form method="post" action="/ui/jobs/{quoted}/retry">'
                '<button type="submit">Retry job</button></form>'
            )
        return (
            f"<h2>Job {quoted}</h2>{notice}"
            f'<div class="scroll"><table class="kv">{rows}</table></div>'
            f'<div class="actions">{actions}</div>'
        )

    # -- changes -----------------------------------------------------------------------------

    async def _post(self, request: Request, send_: Send, principal: Principal, path: str) -> int:
        form = await request.form(_FORM_LIMIT)
        if path == "/ui/failed/retry":
            if form.get("all"):  # every failed job the caller may see
                rows = failed_jobs(limit=10_000)
                ids = [row["id"] for row in rows if principal.may(row["action"])]
            elif form.get("one"):
                ids = form["one"][:1]
            else:
                ids = form.get("id", [])
            done = 0
            for job_id in ids:
                handle, _ = self.gateway.job_for(principal, job_id)
                done += handle.requeue()
            return await self._redirect(send_, "/ui/failed?" + urlencode({"retried": done}))
        if path.startswith("/ui/jobs/") and path.endswith(("/cancel", "/retry")):
            job_id, _, verb = path.removeprefix("/ui/jobs/").rpartition("/")
            handle, _info = self.gateway.job_for(principal, job_id)
            if verb == "cancel":
                message = (
                    "Canceled." if handle.cancel() else f"Not canceled: it is {handle.status}."
                )
            else:
                message = (
                    "Requeued." if handle.requeue() else f"Not requeued: it is {handle.status}."
                )
            target = f"/ui/jobs/{quote(job_id, safe='{}')}?" + urlencode({"done": message})
            return await self._redirect(send_, target)
        raise Problem(404, "not-found", f"nothing to post to at {path}")


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, indent=1)
    return str(value)
