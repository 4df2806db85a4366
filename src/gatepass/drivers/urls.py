"""Reading a store URL: which backend, which address, which key prefix.

=========================================  ==========================================
``memory://``                              in-process, for development and tests
``sqlite:///relative.db``                  a file relative to the working directory
``sqlite:////var/lib/app/gatepass.db``     an absolute path (four slashes)
``redis://host:6379/0``, ``rediss://…``    Redis (``rediss`` is TLS); ``?prefix=app:``
                                           sets the key prefix (default ``gatepass:``)
``redis+cluster://h1:7000,h2:7000/``       Redis Cluster, any seed nodes (also
                                           ``rediss+cluster://``)
``postgresql://…``, ``postgres://…``       PostgreSQL (any libpq-style DSN)
``mongodb://host:27017/db``                MongoDB (also ``mongodb+srv://``); the
                                           database defaults to ``gatepass``
=========================================  ==========================================

Pure: no driver is imported here, so the core imports without the optional
ones, and nothing in a URL reaches an error message except through
:func:`~gatepass.drivers.redact.redact`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from gatepass.errors import ConfigurationError

Backend = Literal["memory", "sqlite", "redis", "postgres", "mongodb"]

_BACKENDS: dict[str, Backend] = {
    "memory": "memory",
    "sqlite": "sqlite",
    "redis": "redis",
    "rediss": "redis",
    "redis+cluster": "redis",
    "rediss+cluster": "redis",
    "postgresql": "postgres",
    "postgres": "postgres",
    "mongodb": "mongodb",
    "mongodb+srv": "mongodb",
}

#: How each backend's URLs are spelled, for messages.
SPELLINGS: dict[Backend, str] = {
    "memory": "memory://",
    "sqlite": "sqlite:///PATH",
    "redis": "redis://, rediss://, redis+cluster://, rediss+cluster://",
    "postgres": "postgresql:// or postgres://",
    "mongodb": "mongodb:// or mongodb+srv://",
}

DEFAULT_PREFIX = "gatepass:"
_PREFIX = re.compile(r"[A-Za-z0-9_:.\-]{1,64}")


@dataclass(frozen=True, slots=True)
class Target:
    """What a URL names.  ``address`` may hold credentials: never show it."""

    backend: Backend
    #: memory: ""; sqlite: the file path; redis: the URL without ``prefix``;
    #: postgres, mongodb: the URL as given.
    address: str
    #: The Redis key prefix (other backends: the default, unused).
    prefix: str = DEFAULT_PREFIX


def backend_of(url: str) -> Backend | None:
    """The backend a URL's ``scheme://`` names, if any; never raises."""
    scheme, sep, _ = url.partition("://")
    return _BACKENDS.get(scheme.lower()) if sep else None


def parse(url: str) -> Target | None:
    """The backend and address of ``url``; None for an unknown scheme.

    Raises ValueError for a known scheme with a malformed rest (the caller
    words it, redacted).
    """
    backend = backend_of(url)
    if backend is None:
        return None
    if backend == "memory":
        if url.lower() != "memory://":
            raise ValueError("memory:// takes nothing after the scheme")
        return Target("memory", "")
    if backend == "sqlite":
        return Target("sqlite", _sqlite_path(url))
    if backend == "redis":
        plain, prefix = split_prefix(url)
        return Target("redis", plain, prefix)
    if backend == "mongodb":
        return Target("mongodb", url)
    return Target("postgres", url)


def _sqlite_path(url: str) -> str:
    parts = urlsplit(url)
    # sqlite:///a.db -> "/a.db" -> "a.db";  sqlite:////abs.db -> "//abs.db" -> "/abs.db"
    if parts.netloc or parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError("use sqlite:///relative.db or sqlite:////absolute/path.db")
    path = unquote(parts.path)
    if not path.startswith("/") or len(path) < 2:
        raise ValueError("use sqlite:///relative.db or sqlite:////absolute/path.db")
    return path[1:]


def split_prefix(url: str, default: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """Split an optional ``prefix`` query parameter off a Redis URL.

    ``redis://host:6379/0?prefix=myapp:`` keeps this deployment's keys apart
    from others sharing the server; redis-py would reject the parameter, so
    it is removed before the URL reaches it (and stores with different
    prefixes share one client).
    """
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [v for k, v in pairs if k == "prefix"]
    if len(prefixes) > 1 or (prefixes and not _PREFIX.fullmatch(prefixes[0])):
        raise ConfigurationError("The Redis URL's prefix must be 1-64 of [A-Za-z0-9_:.-].")
    rest = urlencode([(k, v) for k, v in pairs if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), (prefixes[0] if prefixes else default)
