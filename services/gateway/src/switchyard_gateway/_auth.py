"""Who is calling, and what they may do: API keys (stored as SHA-256 hashes) and JWTs (HS256 with
a shared secret, RS256 with the keys of a JWKS file), scopes as action globs.

A key is a long random token, so one SHA-256 is the right hash (a slow password hash would only
cost every request time; nothing short enough to guess is ever a key): the gateway keeps a
table of hash -> client and looks the presented key's hash up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Final, final

if TYPE_CHECKING:
    from switchyard import Rate

    from ._settings import JwtSettings, Settings

__all__ = ["AuthError", "Authenticator", "Principal", "hash_key", "new_key"]

#: the scope that opens the dashboard (/ui)
DASHBOARD: Final = "dashboard"
#: the cookie the dashboard's sign-in sets (the key or token itself, HttpOnly, SameSite=Strict)
COOKIE: Final = "switchyard_gateway"


def new_key() -> str:
    """A new API key: 32 random bytes, URL-safe."""
    return "sy_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """What the settings store for ``key``: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class AuthError(Exception):
    """A request that may not go on: ``status`` 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@final
@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: ``client`` (an API key's client, a JWT's ``sub``, or the peer's address when
    auth is off), the action globs it may use (``*`` when auth is off), its own rate if any."""

    client: str
    scopes: tuple[str, ...]
    rate: Rate | None = None
    how: str = "key"

    def may(self, action: str) -> bool:
        """Whether this caller may call ``action`` (and see and cancel its jobs)."""
        return any(fnmatchcase(action, scope) for scope in self.scopes)

    def require(self, action: str) -> None:
        if not self.may(action):
            raise AuthError(403, f"client {self.client!r} has no scope for action {action!r}")

    def require_dashboard(self) -> None:
        if DASHBOARD not in self.scopes and "*" not in self.scopes:
            raise AuthError(403, f"client {self.client!r} lacks the scope {DASHBOARD!r}")


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@final
class Authenticator:
    """Checks a request's credentials against the settings; builds no state per request."""

    __slots__ = ("_by_hash", "_jwks", "_jwt", "enabled")

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.auth_on
        self._by_hash = {k.hash: Principal(k.client, k.scopes, k.rate) for k in settings.keys}
        self._jwt: JwtSettings = settings.jwt
        self._jwks: dict[str, Any] | None = None

    def anonymous(self, peer: str) -> Principal:
        return Principal(peer, ("*",), None, "anonymous")

    def authenticate(
        self, authorization: str | None, api_key: str | None, cookie: str | None
    ) -> Principal:
        """The caller of a request with these headers (``Authorization``, ``X-API-Key``, the
        dashboard's cookie); AuthError(401) when none is valid."""
        token = None
        if authorization:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise AuthError(401, "the Authorization header must be 'Bearer <API key or JWT>'")
            token = value.strip()
        elif api_key:
            token = api_key.strip()
        elif cookie:
            token = cookie
        if not token:
            raise AuthError(
                401, "credentials required: 'Authorization: Bearer <API key or JWT>' or X-API-Key"
            )
        if token.count(".") == 2:
            return self._jwt_principal(token)
        found = self._by_hash.get(hash_key(token))
        if found is None:
            raise AuthError(401, "unknown API key")
        return found

    # -- JWT ---------------------------------------------------------------------------------

    def _jwt_principal(self, token: str) -> Principal:
        settings = self._jwt
        if not settings.enabled:
            raise AuthError(401, "JWTs are not accepted here (no secret or JWKS configured)")
        head_text, body_text, signature_text = token.split(".")
        try:
            header = json.loads(_b64(head_text))
            claims = json.loads(_b64(body_text))
            signature = _b64(signature_text)
        except (ValueError, UnicodeDecodeError):
            raise AuthError(401, "malformed JWT") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise AuthError(401, "malformed JWT")
        signed = f"{head_text}.{body_text}".encode()
        alg = header.get("alg")
        if alg == "HS256" and settings.secret is not None:
            expected = hmac.new(settings.secret, signed, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, signature):
                raise AuthError(401, "JWT signature does not verify")
        elif alg == "RS256" and settings.jwks is not None:
            self._verify_rs256(header.get("kid"), signed, signature)
        else:
            accepted = [a for a, on in (("HS256", settings.secret), ("RS256", settings.jwks)) if on]
            raise AuthError(401, f"JWT alg {alg!r} not accepted (accepted: {', '.join(accepted)})")
        self._check_claims(claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthError(401, "JWT has no 'sub' claim (the client's id)")
        raw = claims.get(settings.scope_claim, "")
        if isinstance(raw, str):
            scopes = tuple(raw.split())
        elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
            scopes = tuple(raw)
        else:
            raise AuthError(401, f"JWT claim {settings.scope_claim!r} must be a string or a list")
        return Principal(subject, scopes, None, "jwt")

    def _check_claims(self, claims: dict[str, Any]) -> None:
        settings = self._jwt
        now = time.time()
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, int | float) or now > exp + settings.leeway):
            raise AuthError(401, "JWT expired")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int | float) or now < nbf - settings.leeway):
            raise AuthError(401, "JWT not valid yet (nbf)")
        if settings.issuer is not None and claims.get("iss") != settings.issuer:
            raise AuthError(401, f"JWT issuer must be {settings.issuer!r}")
        if settings.audience is not None:
            aud = claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            if settings.audience not in audiences:
                raise AuthError(401, f"JWT audience must include {settings.audience!r}")

    def _verify_rs256(self, kid: object, signed: bytes, signature: bytes) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        keys = self._load_jwks()
        if kid is None and len(keys) == 1:
            key = next(iter(keys.values()))
        elif isinstance(kid, str) and kid in keys:
            key = keys[kid]
        else:
            raise AuthError(401, f"JWT key id {kid!r} is not in the JWKS")
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise AuthError(401, "JWT signature does not verify") from None

    def _load_jwks(self) -> dict[str, Any]:
        if self._jwks is None:
            from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

            assert self._jwt.jwks is not None
            document = json.loads(self._jwt.jwks.read_text(encoding="utf-8"))
            found: dict[str, Any] = {}
            for number, jwk in enumerate(document.get("keys", [])):
                if jwk.get("kty") != "RSA":
                    continue
                n = int.from_bytes(_b64(jwk["n"]), "big")
                e = int.from_bytes(_b64(jwk["e"]), "big")
                found[str(jwk.get("kid", number))] = RSAPublicNumbers(e, n).public_key()
            self._jwks = found
        return self._jwks
