"""Redis past one server: the URLs of a Cluster and of a Sentinel-watched master, their clients.

    redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][?OPTIONS]
    redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB][?OPTIONS]

``rediss+cluster://`` and ``rediss+sentinel://`` are the same over TLS. The hosts are seeds: any
reachable one is enough (a cluster's client learns every node from it; Sentinel's from the
sentinels). USER and PASSWORD are the data nodes' (a cluster's nodes, the Sentinel-watched
master and its replicas); OPTIONS: ``sentinel_username`` and ``sentinel_password`` (the
sentinels' own, when they require one), ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile`` and
``ssl_cert_reqs`` (none, optional, required) for TLS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, final
from urllib.parse import parse_qsl, unquote

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

__all__ = ["FORMS", "Deployment", "is_multi", "make_multi_client", "parse_deployment"]

SCHEMES: Final = {
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
FORMS: Final = (
    "redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...] or "
    "redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB] (rediss+ for TLS)"
)
_OPTIONS: Final = frozenset(
    {"sentinel_username", "sentinel_password", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile",
     "ssl_cert_reqs"}
)  # fmt: skip
_CERT_REQS: Final = ("none", "optional", "required")
_DEFAULT_PORT: Final = {"cluster": 6379, "sentinel": 26379}


@final
@dataclass(frozen=True, slots=True)
class Deployment:
    """A parsed ``redis+cluster://`` or ``redis+sentinel://`` URL."""

    kind: str  # cluster or sentinel
    tls: bool
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    service: str | None = None  # sentinel: the master's name
    db: int = 0
    options: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """The URL again, password-free (for people)."""
        scheme = ("rediss+" if self.tls else "redis+") + self.kind
        auth = f"{self.username or ''}:***@" if self.password else ""
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.nodes)
        tail = f"/{self.service}/{self.db}" if self.kind == "sentinel" else ""
        return f"{scheme}://{auth}{hosts}{tail}"


def is_multi(url: str) -> bool:
    """Whether ``url`` names a cluster or a Sentinel-watched master."""
    return url.split("://", 1)[0].lower() in SCHEMES


def _host(text: str, kind: str) -> tuple[str, int]:
    if not text:
        raise ValueError("an empty host in the host list")
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ValueError(f"no host in {text!r}")
    if not port_text:
        return host, _DEFAULT_PORT[kind]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"the port must be 1-65535, not {port_text!r} (in {text!r})")
    return host, int(port_text)


def parse_deployment(url: str) -> Deployment:
    """The deployment ``url`` names; ValueError with a short reason when it is not one."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}")
    kind, tls = SCHEMES[scheme.lower()]
    rest, _, query = rest.partition("?")
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise ValueError("a fragment (#...) has no meaning here")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
        if password is None and username is not None:
            password, username = username, None  # redis://secret@host: a password alone
    if not hosts:
        raise ValueError("no HOST:PORT")
    nodes = tuple(_host(h.strip(), kind) for h in hosts.split(","))
    service, db = None, 0
    parts = path.split("/") if slash else []
    if kind == "cluster":
        if any(parts) and parts != ["0"]:
            raise ValueError(f"a cluster has no database or path ({'/' + path!r}): only db 0")
    else:
        if not parts or not parts[0]:
            raise ValueError("no master name: add /SERVICE (the name the sentinels monitor)")
        service = unquote(parts[0])
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            raise ValueError(f"the database must be a number, as in /{service}/0, not {path!r}")
        db = int(parts[1]) if len(parts) == 2 else 0
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name not in _OPTIONS:
            raise ValueError(f"unknown option {name!r} (known: {', '.join(sorted(_OPTIONS))})")
        if name == "ssl_cert_reqs" and value not in _CERT_REQS:
            raise ValueError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, not {value!r}")
        if name.startswith("ssl_") and not tls:
            raise ValueError(f"{name} is a TLS option: use rediss+{kind}://")
        if name.startswith("sentinel_") and kind != "sentinel":
            raise ValueError(f"{name} is an option of redis+sentinel:// URLs")
        options[name] = value
    return Deployment(kind, tls, nodes, username, password, service, db, options)


def _tls_options(deployment: Deployment) -> dict[str, Any]:
    if not deployment.tls:
        return {}
    found: dict[str, Any] = {"ssl": True}
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"):
        if name in deployment.options:
            found[name] = deployment.options[name]
    return found


class _BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool (connections go to the master the sentinels name now, and leave a
    demoted one), bounded as the single server's is: a caller waits for a free connection."""


def make_multi_client(deployment: Deployment, options: dict[str, Any], retry: Retry) -> Any:
    """The client of ``deployment``: a ``redis.RedisCluster``, or a ``redis.Redis`` whose pool
    follows the Sentinel-watched master. ``options``: the pool options of a single server's
    client (``max_connections``, timeouts, health checks); ``retry``: its retry policy."""
    auth = {"username": deployment.username, "password": deployment.password}
    tls = _tls_options(deployment)
    timeouts = {
        "socket_connect_timeout": options["socket_connect_timeout"],
        "socket_keepalive": True,
        "health_check_interval": options["health_check_interval"],
    }
    if deployment.kind == "cluster":
        cluster: Any = redis.RedisCluster  # its stubs type **kwargs narrower than it takes
        node: Any = redis.cluster.ClusterNode
        return cluster(
            startup_nodes=[node(h, p) for h, p in deployment.nodes],
            max_connections=options["max_connections"],  # per node
            require_full_coverage=False,  # serve the queues whose slots are up
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 6),
            **auth,
            **tls,
            **timeouts,
        )
    sentinel_auth = {
        "username": deployment.options.get("sentinel_username"),
        "password": deployment.options.get("sentinel_password"),
    }
    sentinel: Any = Sentinel(  # type: ignore[no-untyped-call]
        list(deployment.nodes),
        sentinel_kwargs={**sentinel_auth, **tls, "socket_connect_timeout": 1.0,
                         "socket_timeout": 1.0},
    )  # fmt: skip
    return sentinel.master_for(
        deployment.service,
        connection_pool_class=_BlockingSentinelPool,
        db=deployment.db,
        max_connections=options["max_connections"],
        timeout=options["timeout"],
        retry=retry,
        retry_on_error=options["retry_on_error"],
        **auth,
        **tls,
        **timeouts,
    )
