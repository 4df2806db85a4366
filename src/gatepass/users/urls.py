"""Open a user store from a URL.

``memory://``; ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``
(three slashes then the path, as SQLAlchemy spells it; no query string); ``postgresql://`` or
``postgres://`` followed by anything asyncpg accepts.  Nothing is connected
here: the SQL stores create their table on first use, so a server can start
while its database is down and recover when it comes back.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from gatepass.errors import ConfigurationError
from gatepass.stores._postgres import PostgresPool
from gatepass.stores._sqlite import SQLiteDatabase
from gatepass.users.memory import MemoryUserStore
from gatepass.users.model import UserStore
from gatepass.users.postgres import PostgresUserStore
from gatepass.users.sqlite import SQLiteUserStore

_SQLITE_PREFIX = "sqlite:///"


async def open_user_store(url: str) -> UserStore:
    """The store named by ``url``; it owns (and closes) its connection."""
    scheme = url.partition(":")[0].lower()
    if scheme == "memory" and url.lower() == "memory://":
        return MemoryUserStore()
    if scheme == "sqlite" and url.startswith(_SQLITE_PREFIX):
        path = unquote(url[len(_SQLITE_PREFIX) :])
        if path and "?" not in path and "#" not in path:
            return SQLiteUserStore(SQLiteDatabase(path), close_db=True)
    if scheme in ("postgresql", "postgres") and url[len(scheme) :].startswith("://"):
        return PostgresUserStore(PostgresPool(url), close_pool=True)
    raise ConfigurationError(f"Unsupported user store URL: {_without_secrets(url)}")


def _without_secrets(url: str) -> str:
    """Scheme, host and port only: userinfo, path, query and fragment can all
    hold a secret (``?password=``, or a password read as a path after a typo)."""
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme.isascii() or not scheme.isalnum():
        return "(no scheme://)"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        host = "?"
    return f"{scheme}://{host}"
