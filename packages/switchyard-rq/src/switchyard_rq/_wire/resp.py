"""Packed commands over one pooled connection: the hot paths' one round trip, minus the client's
per-argument overhead (redis-py's packer costs more than the rest of a trivial job)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import redis

from switchyard_rq._errors import REFUSED

__all__ = ["bulk", "pack", "pack_args", "roundtrip"]

Arg = bytes | str | int | float


def _encode(arg: Arg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, int):
        return b"%d" % arg
    return repr(float(arg)).encode()


def bulk(arg: Arg) -> bytes:
    """One argument in RESP (``$<len>`` + bytes): to pre-pack the constant part of commands."""
    data = _encode(arg)
    return b"$%d\r\n%b\r\n" % (len(data), data)


def pack(args: Iterable[Arg]) -> bytes:
    """One command in RESP: ``*<n>`` then ``$<len>`` + bytes for each argument."""
    items = list(args)
    return b"*%d\r\n%b" % (len(items), pack_args(items))


def pack_args(args: Iterable[Arg]) -> bytes:
    """Arguments in RESP without the command's ``*<n>`` header (for pre-packed parts)."""
    out = []
    for arg in args:  # _encode inlined: this runs for every argument of every job's calls
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(float(arg)).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


def roundtrip(client: redis.Redis, commands: list[bytes], *, retries: int = 0) -> list[Any]:
    """Send ``commands`` (packed) in one write, read one reply each. An error reply becomes the
    exception object in its place (as a pipeline's ``raise_on_error=False``). A connection error
    drops the connection and is retried ``retries`` times with exponential backoff (from 50 ms,
    capped at 1 s), then propagates; refused credentials propagate at once."""
    delay = 0.05
    for _ in range(retries):
        try:
            return _once(client, commands)
        except REFUSED:
            raise  # refused credentials: retrying only delays the error
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    return _once(client, commands)


def _once(client: redis.Redis, commands: list[bytes]) -> list[Any]:
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([b"".join(commands)])  # type: ignore[no-untyped-call]
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(conn)
