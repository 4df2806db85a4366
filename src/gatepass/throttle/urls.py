"""Build a throttle store from the same kind of URL as the session store.

``memory://``, ``sqlite:///path.db`` (four slashes for an absolute path),
``redis://…`` / ``rediss://…``, ``redis+cluster://h1:p1,h2:p2/`` /
``rediss+cluster://…`` (Redis Cluster) and ``postgresql://…`` / ``postgres://…``.
Throttle state must be shared by every server instance, so in a deployment
with more than one process this is normally the session store's URL.
Networked stores connect on first use: a server can start while its store is
down, and logins get 503 (never an unthrottled attempt) until it is back.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gatepass.errors import ConfigurationError
from gatepass.stores.urls import _REDIS_SCHEMES, redact_url, redis_url_and_prefix
from gatepass.throttle.memory import MemoryThrottleStore
from gatepass.throttle.postgres import PostgresThrottleStore
from gatepass.throttle.redis import RedisThrottleStore
from gatepass.throttle.sqlite import SQLiteThrottleStore
from gatepass.throttle.store import ThrottleStore

_SUPPORTED = (
    "memory://, sqlite:///PATH, redis://, rediss://, redis+cluster://, rediss+cluster://, "
    "postgresql:// or postgres://"
)


async def open_throttle_store(url: str) -> ThrottleStore:
    """The throttle store a URL names; raises ConfigurationError for anything else."""
    if not url:
        raise ConfigurationError(f"No throttle store URL given; use {_SUPPORTED}.")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
    except ValueError:
        scheme = ""
    try:
        if scheme == "memory":
            return MemoryThrottleStore()
        if scheme == "sqlite":
            # sqlite:///a.db -> "a.db";  sqlite:////abs.db -> "/abs.db"
            if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
                raise ConfigurationError(
                    f"Invalid SQLite URL {redact_url(url)!r}: use sqlite:///relative.db "
                    "or sqlite:////absolute/path.db."
                )
            return await SQLiteThrottleStore.open(parts.path[1:])
        if scheme in _REDIS_SCHEMES:
            plain_url, prefix = redis_url_and_prefix(url)
            return RedisThrottleStore.from_url(plain_url, prefix=prefix)
        if scheme in {"postgresql", "postgres"}:
            return PostgresThrottleStore.from_dsn(url)
    except ValueError as exc:
        # Driver URL parsers may quote the URL, password included: say it ourselves.
        raise ConfigurationError(
            f"Invalid throttle store URL {redact_url(url)!r}: {type(exc).__name__}."
        ) from None
    raise ConfigurationError(
        f"Unsupported throttle store URL {redact_url(url)!r}; use {_SUPPORTED}."
    )
