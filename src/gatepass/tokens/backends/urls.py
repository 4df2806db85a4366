"""Build the refresh and revocation stores from a URL.

The same URLs as :func:`gatepass.stores.urls.open_session_store` (memory://,
sqlite:///PATH, redis://, rediss://, redis+cluster://, rediss+cluster://,
postgresql://, postgres://), so one
setting can serve sessions, refresh tokens and revocation alike.  Networked
stores connect on first use: a server starts while Redis or PostgreSQL is
down and answers 503 until it is back.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from gatepass.errors import ConfigurationError
from gatepass.stores.urls import _REDIS_SCHEMES, _sqlite_path, redact_url, redis_url_and_prefix
from gatepass.tokens.backends.memory import MemoryRefreshStore, MemoryRevocationStore
from gatepass.tokens.backends.postgres import PostgresRefreshStore, PostgresRevocationStore
from gatepass.tokens.backends.redis import RedisRefreshStore
from gatepass.tokens.backends.redis_cache import CachingRedisRevocationStore
from gatepass.tokens.backends.sqlite import SQLiteRefreshStore, SQLiteRevocationStore
from gatepass.tokens.refresh import RefreshStore
from gatepass.tokens.revocation import RevocationStore

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,19}")
_SUPPORTED = (
    "memory://, sqlite:///PATH, redis://, rediss://, redis+cluster://, rediss+cluster://, "
    "postgresql:// or postgres://"
)


def _scheme(url: str, what: str) -> str:
    if not url:
        raise ConfigurationError(f"No {what} URL given; use {_SUPPORTED}.")
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def _shown(url: str, scheme: str) -> str:
    # redact_url keeps the path, and a value with no scheme is all path: a
    # password pasted into the setting would be echoed.  Such a value is
    # named by its scheme alone.
    if scheme and _SCHEME.fullmatch(scheme) and url.lower().startswith(f"{scheme}://"):
        return repr(redact_url(url))
    return "without a recognisable scheme"


def _invalid(url: str, scheme: str, what: str, exc: ValueError) -> ConfigurationError:
    # Driver URL parsers may quote the URL, password included: say it ourselves.
    return ConfigurationError(f"Invalid {what} URL {_shown(url, scheme)}: {type(exc).__name__}.")


def _unsupported(url: str, scheme: str, what: str) -> ConfigurationError:
    return ConfigurationError(f"Unsupported {what} URL {_shown(url, scheme)}; use {_SUPPORTED}.")


async def open_refresh_store(url: str) -> RefreshStore:
    """The refresh store a URL names; ConfigurationError for anything else."""
    what = "refresh token store"
    scheme = _scheme(url, what)
    try:
        if scheme == "memory":
            return MemoryRefreshStore()
        if scheme == "sqlite":
            return await SQLiteRefreshStore.open(_sqlite_path(url))
        if scheme in _REDIS_SCHEMES:
            plain_url, prefix = redis_url_and_prefix(url)
            return RedisRefreshStore.from_url(plain_url, prefix=prefix)
        if scheme in {"postgresql", "postgres"}:
            return PostgresRefreshStore.from_dsn(url)
    except ValueError as exc:
        raise _invalid(url, scheme, what, exc) from None
    raise _unsupported(url, scheme, what)


async def open_revocation_store(url: str) -> RevocationStore:
    """The revocation store a URL names; ConfigurationError for anything else."""
    what = "revocation store"
    scheme = _scheme(url, what)
    try:
        if scheme == "memory":
            return MemoryRevocationStore()
        if scheme == "sqlite":
            return await SQLiteRevocationStore.open(_sqlite_path(url))
        if scheme in _REDIS_SCHEMES:
            plain_url, prefix = redis_url_and_prefix(url)
            # With the coherent local cache: a revocation check per request
            # is a dict lookup until something changes in Redis.
            return CachingRedisRevocationStore.from_url(plain_url, prefix=prefix)
        if scheme in {"postgresql", "postgres"}:
            return PostgresRevocationStore.from_dsn(url)
    except ValueError as exc:
        raise _invalid(url, scheme, what, exc) from None
    raise _unsupported(url, scheme, what)
