"""Build a session store from a URL, the one string a deployment configures.

=========================================  ==========================================
``memory://``                              in-process, for development and tests
``sqlite:///relative.db``                  a file relative to the working directory
``sqlite:////var/lib/app/sessions.db``     an absolute path (four slashes)
``redis://host:6379/0``, ``rediss://…``    Redis (``rediss`` is TLS)
``redis+cluster://h1:7000,h2:7000/``       Redis Cluster, any seed nodes (also
                                           ``rediss+cluster://``); no local cache
``postgresql://…``, ``postgres://…``       PostgreSQL (any libpq-style DSN)
=========================================  ==========================================

Networked stores connect on first use, so a server can start while Redis or
PostgreSQL is down: requests get 503 until it comes back, with no restart.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gatepass.errors import ConfigurationError
from gatepass.sessions.store import SessionStore
from gatepass.stores.memory import MemorySessionStore
from gatepass.stores.postgres import PostgresSessionStore
from gatepass.stores.redis import CLUSTER_SCHEMES
from gatepass.stores.redis_cache import CachingRedisSessionStore
from gatepass.stores.sqlite import SQLiteSessionStore

_SUPPORTED = (
    "memory://, sqlite:///PATH, redis://, rediss://, redis+cluster://, rediss+cluster://, "
    "postgresql:// or postgres://"
)

#: Every scheme served by the Redis stores (single server or cluster).
_REDIS_SCHEMES = frozenset({"redis", "rediss"}) | CLUSTER_SCHEMES


def redact_url(url: str) -> str:
    """The URL without credentials, query or fragment, safe for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return f"{url.partition(':')[0]}://..."
    host = parts.netloc.rpartition("@")[2]
    # "scheme:user:secret@host" has no netloc and puts everything in the path.
    path = "/..." if "@" in parts.path else parts.path
    # Not urlunsplit: it would turn sqlite:////abs into sqlite://abs.
    separator = "://" if url[len(parts.scheme) :].startswith("://") else ":"
    return f"{parts.scheme}{separator}{host}{path}"


async def open_session_store(url: str) -> SessionStore:
    """The session store a URL names; raises ConfigurationError for anything else."""
    if not url:
        raise ConfigurationError(f"No session store URL given; use {_SUPPORTED}.")
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    try:
        if scheme == "memory":
            return MemorySessionStore()
        if scheme == "sqlite":
            return await SQLiteSessionStore.open(_sqlite_path(url))
        if scheme in _REDIS_SCHEMES:
            # With the coherent local cache: one Redis read per session per
            # renewal interval instead of one per request (bypassed on a
            # cluster, see gatepass.stores.redis_tracking).
            plain_url, prefix = redis_url_and_prefix(url)
            return CachingRedisSessionStore.from_url(plain_url, prefix=prefix)
        if scheme in {"postgresql", "postgres"}:
            return PostgresSessionStore.from_dsn(url)
    except ValueError as exc:
        # Driver URL parsers may quote the URL, password included: say it ourselves.
        raise ConfigurationError(
            f"Invalid session store URL {redact_url(url)!r}: {type(exc).__name__}."
        ) from None
    raise ConfigurationError(
        f"Unsupported session store URL {redact_url(url)!r}; use {_SUPPORTED}."
    )


def redis_url_and_prefix(url: str, default: str = "gatepass:") -> tuple[str, str]:
    """Split an optional ``prefix`` query parameter off a Redis URL.

    ``redis://host:6379/0?prefix=myapp:`` keeps this deployment's keys apart
    from others sharing the server; redis-py would reject the parameter, so
    it is removed before the URL reaches it.
    """
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [v for k, v in pairs if k == "prefix"]
    if len(prefixes) > 1 or (prefixes and not _PREFIX.fullmatch(prefixes[0])):
        raise ConfigurationError("The Redis URL's prefix must be 1-64 of [A-Za-z0-9_:.-].")
    rest = urlencode([(k, v) for k, v in pairs if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), (prefixes[0] if prefixes else default)


_PREFIX = re.compile(r"[A-Za-z0-9_:.\-]{1,64}")


def _sqlite_path(url: str) -> str:
    parts = urlsplit(url)
    # sqlite:///a.db -> "/a.db" -> "a.db";  sqlite:////abs.db -> "//abs.db" -> "/abs.db"
    if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
        raise ConfigurationError(
            f"Invalid SQLite URL {redact_url(url)!r}: use sqlite:///relative.db "
            "or sqlite:////absolute/path.db."
        )
    return parts.path[1:]
