"""scrypt password hashes in a self-describing string: ``scrypt$n=..,r=..,p=..$<salt>$<hash>``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import Final

SCHEME: Final = "scrypt"
SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
# Bounds a stored hash must respect before we spend CPU and memory on it.
MIN_LOG2_N: Final = 1
MAX_LOG2_N: Final = 20
MAX_R: Final = 32
MAX_P: Final = 16
MAX_MEMORY_BYTES: Final = 256 * 1024 * 1024  # what scrypt may allocate: 128 * n * r bytes

_FORMAT: Final = re.compile(
    r"^scrypt\$n=(?P<n>[0-9]{1,8}),r=(?P<r>[0-9]{1,3}),p=(?P<p>[0-9]{1,3})"
    r"\$(?P<salt>[A-Za-z0-9+/]{8,88})\$(?P<key>[A-Za-z0-9+/]{16,88})$"
)


@dataclass(frozen=True, slots=True)
class ScryptHash:
    """A parsed password hash: the scrypt cost parameters, the salt and the derived key."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def encode(self) -> str:
        return f"{SCHEME}$n={self.n},r={self.r},p={self.p}${_b64(self.salt)}${_b64(self.key)}"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def check_cost(n: int, r: int, p: int) -> None:
    """Raise ValueError unless n is a power of two in range and r, p are in range."""
    if n < 2 or n & (n - 1) or not MIN_LOG2_N <= n.bit_length() - 1 <= MAX_LOG2_N:
        raise ValueError(f"n must be a power of two between 2 and 2**{MAX_LOG2_N}, got {n}")
    if not 1 <= r <= MAX_R:
        raise ValueError(f"r must be between 1 and {MAX_R}, got {r}")
    if not 1 <= p <= MAX_P:
        raise ValueError(f"p must be between 1 and {MAX_P}, got {p}")
    if 128 * n * r > MAX_MEMORY_BYTES:
        raise ValueError(f"n * r needs more than {MAX_MEMORY_BYTES // 2**20} MiB; lower n or r")


def parse(encoded: str) -> ScryptHash:
    """Parse an encoded hash; ValueError says what is wrong with it (never echoing it)."""
    match = _FORMAT.match(encoded)
    if match is None:
        raise ValueError(
            "malformed password hash: expected"
            " 'scrypt$n=<N>,r=<R>,p=<P>$<salt base64>$<key base64>'"
        )
    n, r, p = int(match["n"]), int(match["r"]), int(match["p"])
    check_cost(n, r, p)
    try:
        salt, key = _unb64(match["salt"]), _unb64(match["key"])
    except ValueError as exc:
        raise ValueError("malformed password hash: salt or key is not valid base64") from exc
    return ScryptHash(n=n, r=r, p=p, salt=salt, key=key)


def _derive(password: str, *, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # scrypt needs about 128 * r * (n + p + 2) bytes; give it that plus a little room.
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length
    )


def hash_password(password: str, *, n: int, r: int, p: int) -> ScryptHash:
    check_cost(n, r, p)
    salt = os.urandom(SALT_BYTES)
    key = _derive(password, salt=salt, n=n, r=r, p=p, length=KEY_BYTES)
    return ScryptHash(n=n, r=r, p=p, salt=salt, key=key)


def verify_password(password: str, stored: ScryptHash) -> bool:
    candidate = _derive(
        password, salt=stored.salt, n=stored.n, r=stored.r, p=stored.p, length=len(stored.key)
    )
    return hmac.compare_digest(candidate, stored.key)
