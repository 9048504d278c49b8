"""Packed commands over one pooled connection: the hot paths' one round trip, minus the client's
per-argument overhead (redis-py's packer costs more than the rest of a trivial job)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

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


def roundtrip(client: redis.Redis, commands: list[bytes], *, retry: bool = False) -> list[Any]:
    """Send ``commands`` (packed) in one write, read one reply each. An error reply becomes the
    exception object in its place (as a pipeline's ``raise_on_error=False``). With ``retry``, a
    connection error drops the connection and the call is tried again within the client's retry
    budget (the same one that bounds connecting: one layer of retries, see _wire/connection.py),
    then propagates; refused credentials propagate at once."""
    policy = client.connection_pool.connection_kwargs.get("retry") if retry else None
    if policy is None:
        return _once(client, commands)
    return policy.call_with_retry(lambda: _once(client, commands), lambda error: None)  # type: ignore[no-any-return]


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
