"""Cached action results in Redis: switchyard's ``ResultCache`` for every process of a project.

Keys (``K`` is ``action:version:sha256-of-input``)::

    switchyard:cache:v:K      the result (JSON text), expiring after the action's cache ttl
    switchyard:cache:c:K      the single-flight claim: a token, expiring after the lease
    switchyard:cache:t:TAG    the result keys stored under TAG (a set)
    switchyard:cache:g:TAG    TAG's invalidation count: a result is stored only if its tags'
                              counts did not move while its handler ran

Storing and invalidating are Lua scripts, so neither sees half of the other. On a Redis Cluster
the keys of one result and its tags may live in different slots: this is for a single server
(or Sentinel).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import redis

from switchyard_rq._wire.scripts import Script

__all__ = ["RedisResultCache", "result_cache"]

PREFIX: Final = "switchyard:cache:"

# KEYS: value, then each tag's set, then each tag's generation.  ARGV: value, ttl ms, generation
# token (counts joined by ','), number of tags, the result key.  1: stored, 0: a tag moved.
_PUT: Final = Script("""
local n = tonumber(ARGV[4])
local counts = {}
for i = 1, n do counts[i] = redis.call('GET', KEYS[1 + n + i]) or '0' end
if table.concat(counts, ',') ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 1, n do
  redis.call('SADD', KEYS[1 + i], ARGV[5])
  if redis.call('PTTL', KEYS[1 + i]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1 + i], ARGV[2])
  end
end
return 1
""")

# KEYS: each tag's set, then each tag's generation.  ARGV: the value key prefix.  The number of
# results dropped.
_INVALIDATE: Final = Script("""
local n = #KEYS / 2
local dropped = 0
for i = 1, n do
  redis.call('INCR', KEYS[n + i])
  for _, key in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    dropped = dropped + redis.call('DEL', ARGV[1] .. key)
  end
  redis.call('DEL', KEYS[i])
end
return dropped
""")

# KEYS: the claim.  ARGV: our token.  Deletes the claim only if it is still ours.
_RELEASE: Final = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")


class RedisResultCache:
    """A ``switchyard.ResultCache`` on one Redis (see the module's docs)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        raw = self.client.get(PREFIX + "v:" + key)
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def claim(self, key: str, lease: float) -> bool:
        token = os.urandom(8).hex()
        if not self.client.set(PREFIX + "c:" + key, token, nx=True, px=max(int(lease * 1000), 1)):
            return False
        with self._lock:
            self._tokens[key] = token
        return True

    def claimed(self, key: str) -> bool:
        return bool(self.client.exists(PREFIX + "c:" + key))

    def release(self, key: str) -> None:
        with self._lock:
            token = self._tokens.pop(key, None)
        if token is not None:
            _RELEASE(self.client, [PREFIX + "c:" + key], [token])

    def generation(self, tags: Sequence[str]) -> str:
        if not tags:
            return ""
        counts = self.client.mget([PREFIX + "g:" + tag for tag in tags])
        return ",".join(
            (c.decode() if isinstance(c, bytes) else str(c)) if c else "0" for c in counts
        )

    def put(self, key: str, value: str, ttl: float, tags: Sequence[str], generation: str) -> bool:
        keys = [
            PREFIX + "v:" + key,
            *(PREFIX + "t:" + tag for tag in tags),
            *(PREFIX + "g:" + tag for tag in tags),
        ]
        args = [value, max(int(ttl * 1000), 1), generation, len(tags), key]
        return bool(_PUT(self.client, keys, args))

    def invalidate(self, tags: Sequence[str]) -> int:
        if not tags:
            return 0
        keys = [*(PREFIX + "t:" + tag for tag in tags), *(PREFIX + "g:" + tag for tag in tags)]
        return int(_INVALIDATE(self.client, keys, [PREFIX + "v:"]))


def result_cache() -> RedisResultCache | None:
    """The extension ``cache``: the Redis cache when a Redis is configured
    (``SWITCHYARD_REDIS_URL`` or ``redis-url``) or the project's embedded one already runs;
    None otherwise (switchyard then keeps results in the process's memory: a plain
    ``switchyard call`` starts no server for a cache)."""
    from switchyard_rq._config import current_config
    from switchyard_rq._wire.connection import get_connection
    from switchyard_rq._wire.embedded import embedded_url, socket_path

    url = os.environ.get("SWITCHYARD_REDIS_URL", "").strip()
    config = current_config()
    url = url or (config.redis_url or "")
    if not url:
        root = config.root or Path.cwd()
        from switchyard_rq._wire.embedded import _ping

        if not _ping(socket_path(root)):
            return None
        url = embedded_url(root)
    return RedisResultCache(get_connection(url))
