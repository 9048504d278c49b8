"""A remote cache over Bazel's HTTP cache protocol, in front of the local cache folder.

One local cache entry (the artifacts of one key and its ``entry.json``) is, on the server:

- each artifact, and the entry's description (``yard-entry.json``), in the content-addressable
  store: ``PUT /cas/<sha256 of the content>``;
- an ``ActionResult`` (see ``_acproto``) listing them by name and digest under the key:
  ``PUT /ac/<key>``, written last, so a reader never finds a record before its files.

Any server of that protocol works: nginx with WebDAV ``PUT``, bazel-remote, and others.

Every download is checked: each file's size and SHA-256 must match the record, the description
must name this key and exactly these files. A record that fails is refused with a warning and
the work is done here (and uploaded again, replacing the bad entry). A server that cannot be
reached, answers with an error or times out is dropped for the rest of the run after one
warning: yard then works from the local cache only, and never fails because of the remote.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import ssl
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from . import _acproto
from ._cache import BuildCache, Entry
from ._cacheconf import ENV_READ_ONLY, ENV_TOKEN, RemoteSettings

DESCRIPTION: Final = "yard-entry.json"
FORMAT: Final = "yard-remote 1"
MAX_RECORD: Final = 1 << 20
"""An action-cache record larger than this is not one of yard's."""
FETCH_THREADS: Final = 8
UPLOAD_THREADS: Final = 4


class _Unreachable(Exception):
    """The server did not answer (refused, reset, timed out, or a 5xx)."""


class _Refused(Exception):
    """An entry failed verification; the message says how."""


class RemoteCache:
    """The remote side of yard's cache, for one run.

    ``warn`` is called with one line per problem (at most one for the server being down, one
    for refused uploads, and one per refused entry).
    """

    def __init__(self, settings: RemoteSettings, *, warn: Callable[[str], None]) -> None:
        self.settings = settings
        self._warn = warn
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._uploads: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self.down = False
        self.uploading = not settings.read_only
        self.stats = {"hits": 0, "misses": 0, "refused": 0, "uploaded": 0}

    def describe(self) -> dict[str, Any]:
        """For ``--json``: where, how, and what happened."""
        return {
            "url": self.settings.shown,
            "read_only": self.settings.read_only,
            "down": self.down,
            **self.stats,
        }

    # -- reading ---------------------------------------------------------------------------

    def fetch_many(self, wanted: Mapping[str, str], cache: BuildCache) -> dict[str, Entry]:
        """Download the entries of the keys in ``wanted`` (key -> who, for messages) into
        ``cache``, in parallel; the ones found and verified, by key."""
        found: dict[str, Entry] = {}
        if not wanted or self.down:
            return found
        keys = list(wanted)
        workers = min(FETCH_THREADS, len(keys))
        with ThreadPoolExecutor(workers, thread_name_prefix="yard-remote") as pool:
            entries = pool.map(lambda k: self.fetch(k, wanted[k], cache), keys)
            for key, entry in zip(keys, entries, strict=True):
                if entry is not None:
                    found[key] = entry
        return found

    def fetch(self, key: str, who: str, cache: BuildCache) -> Entry | None:
        """The verified entry of ``key`` from the server, stored in ``cache``; None when the
        server lacks it, is down, or its entry is refused."""
        if self.down:
            return None
        try:
            status, record = self._request("GET", f"/ac/{key}", limit=MAX_RECORD)
            if status == 404:
                self._count("misses")
                return None
            if status != 200:  # not a cache of this protocol (or not at this path)
                raise _Unreachable(f"HTTP {status} {http.client.responses.get(status, '')}")
            try:
                files = _acproto.decode(record)
            except ValueError as exc:
                raise _Refused(f"its action-cache record is malformed ({exc})") from None
            blobs: dict[str, bytes] = {}
            for item in files:
                status, data = self._request("GET", f"/cas/{item.sha256}", limit=item.size)
                if status == 404:  # evicted by the server: an incomplete entry is a miss
                    self._count("misses")
                    return None
                if status != 200:
                    raise _Unreachable(f"HTTP {status} {http.client.responses.get(status, '')}")
                if len(data) != item.size or hashlib.sha256(data).hexdigest() != item.sha256:
                    raise _Refused(f"{item.path} does not match its SHA-256")
                blobs[item.path] = data
            meta = _description(blobs, key)
        except _Unreachable as exc:
            self._went_down(str(exc))
            return None
        except _Refused as exc:
            self._count("refused")
            self._warn(
                f"remote cache entry for {who} (key {key[:12]}) refused: {exc} "
                "(a tampered or truncated entry); doing the work here"
            )
            return None
        self._count("hits")
        return _store(cache, key, blobs, meta)

    # -- writing ---------------------------------------------------------------------------

    def upload(self, entry: Entry) -> None:
        """Send a local entry to the server, in the background (see :meth:`close`)."""
        if self.down or not self.uploading:
            return
        with self._lock:
            if self._uploads is None:
                self._uploads = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="yard-up")
            self._pending.append(self._uploads.submit(self._upload, entry))

    def _upload(self, entry: Entry) -> None:
        if self.down or not self.uploading:
            return
        try:
            files: list[_acproto.OutputFile] = []
            blobs: list[bytes] = []
            for name in entry.artifacts:
                blobs.append((entry.folder / name).read_bytes())
            meta = {k: v for k, v in entry.meta.items() if k not in ("stored",)}
            meta.update(format=FORMAT, key=entry.key, artifacts=list(entry.artifacts))
            names = [*entry.artifacts, DESCRIPTION]
            blobs.append(json.dumps(meta, indent=1, sort_keys=True).encode())
        except OSError:  # pruned meanwhile: nothing to share
            return
        try:
            for name, data in zip(names, blobs, strict=True):
                sha = hashlib.sha256(data).hexdigest()
                self._put(f"/cas/{sha}", data)
                files.append(_acproto.OutputFile(name, sha, len(data)))
            self._put(f"/ac/{entry.key}", _acproto.encode(files))
        except _Unreachable as exc:
            self._went_down(str(exc))
            return
        except _Refused as exc:
            with self._lock:
                first, self.uploading = self.uploading, False
            if first:
                self._warn(
                    f"remote cache {self.settings.shown} refused an upload ({exc}); not uploading "
                    f"for the rest of this run (set {ENV_READ_ONLY}=1 to only read)"
                )
            return
        self._count("uploaded")

    def _put(self, path: str, data: bytes) -> None:
        status, _ = self._request("PUT", path, body=data, limit=1 << 16)
        if status not in (200, 201, 204):
            raise _Refused(f"HTTP {status} {http.client.responses.get(status, '')}".strip())

    def close(self) -> None:
        """Wait for the uploads under way (each request bounded by the timeout), then close the
        connections."""
        with self._lock:
            pending, self._pending = self._pending, []
            pool, self._uploads = self._uploads, None
        for future in pending:
            future.result()
        if pool is not None:
            pool.shutdown()
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    # -- the wire --------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, body: bytes | None = None, limit: int
    ) -> tuple[int, bytes]:
        """One request on this thread's connection: (status, body up to ``limit`` + 1 bytes).

        A 401 or 403 on a read, any 5xx, or no answer at all raises :class:`_Unreachable`
        (the server is no use for this run); a reused connection the server closed meanwhile
        is opened again once.
        """
        settings = self.settings
        headers = {"User-Agent": "yard", **dict(settings.headers)}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        for attempt in (1, 2):
            connection, reused = self._connection()
            try:
                connection.request(method, settings.prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read(limit + 1)
                if response.will_close or len(data) > limit:
                    self._drop(connection)
                else:
                    response.read()  # drain, so the connection can serve the next request
            except (OSError, http.client.HTTPException) as exc:
                self._drop(connection)
                if reused and attempt == 1 and not isinstance(exc, TimeoutError):
                    continue
                raise _Unreachable(_reason(exc)) from None
            status = response.status
            if status >= 500:
                raise _Unreachable(f"HTTP {status} {response.reason}")
            if status in (401, 403) and method == "GET":
                hint = f"; check {ENV_TOKEN}" if status == 401 else ""
                raise _Unreachable(f"HTTP {status} {response.reason}{hint}")
            return status, data
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        found: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if found is not None:
            return found, True
        settings = self.settings
        connection: http.client.HTTPConnection
        if settings.scheme == "https":
            connection = http.client.HTTPSConnection(
                settings.host.strip("[]"),
                settings.port,
                timeout=settings.timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                settings.host.strip("[]"), settings.port, timeout=settings.timeout
            )
        self._local.connection = connection
        with self._lock:
            self._connections.append(connection)
        return connection, False

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None

    def _went_down(self, reason: str) -> None:
        with self._lock:
            first = not self.down
            self.down = True
        if first:
            self._warn(
                f"remote cache {self.settings.shown} is unavailable ({reason}); "
                "continuing with the local cache only"
            )

    def _count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text)


def _description(blobs: Mapping[str, bytes], key: str) -> dict[str, Any]:
    """The entry's description, checked against the record it came with."""
    raw = blobs.get(DESCRIPTION)
    if raw is None:
        raise _Refused(f"its record lists no {DESCRIPTION}")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise _Refused(f"{DESCRIPTION} is not JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Refused(f"{DESCRIPTION} is not a {FORMAT} description")
    if meta.get("key") != key:
        raise _Refused("its description belongs to another key")
    files = sorted(n for n in blobs if n != DESCRIPTION)
    if sorted(map(str, meta.get("artifacts") or [])) != files:
        raise _Refused("its description and its record list different files")
    return {k: v for k, v in meta.items() if k not in ("format", "key", "artifacts")}


def _store(cache: BuildCache, key: str, blobs: Mapping[str, bytes], meta: dict[str, Any]) -> Entry:
    folder = cache.root / "tmp" / f"remote-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    try:
        paths: list[Path] = []
        for name, data in blobs.items():
            if name != DESCRIPTION:
                (folder / name).write_bytes(data)
                paths.append(folder / name)
        return cache.store(key, paths, meta)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
