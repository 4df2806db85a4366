"""The one opener: a store URL and a kind of store in, a store out.

Every kind of store (sessions, refresh families, revocation, throttling,
users, external identities) is opened here, through one scheme dispatch and
one connection per URL (:mod:`gatepass.drivers.registry`): a deployment that
names one Redis URL for sessions, tokens and throttling opens one client.

Backends are imported only when a URL names them, so the core runs without
the optional drivers; a missing one is a ConfigurationError that says which
extra to install.  Networked stores connect on first use: a server can start
while Redis, PostgreSQL or MongoDB is down and answer 503 until it is back.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gatepass.drivers.redact import redact
from gatepass.drivers.urls import SPELLINGS, Backend, parse
from gatepass.errors import ConfigurationError

if TYPE_CHECKING:
    from gatepass.mfa.store import FactorStore
    from gatepass.oauth.identities import IdentityStore
    from gatepass.onetime.store import OneTimeTokenStore
    from gatepass.passkeys.store import PasskeyStore
    from gatepass.sessions.store import SessionStore
    from gatepass.throttle.store import ThrottleStore
    from gatepass.tokens.refresh import RefreshStore
    from gatepass.tokens.revocation import RevocationStore
    from gatepass.users.model import UserStore

#: Per kind of store, the class serving each backend ("module:Class").
#: Adding a store for a new feature is one more row (see docs/storage.md).
STORES: dict[str, dict[Backend, str]] = {
    "session store": {
        "memory": "gatepass.stores.memory:MemorySessionStore",
        "sqlite": "gatepass.stores.sqlite:CachingSQLiteSessionStore",
        # With the coherent local cache (bypassed on a cluster).
        "redis": "gatepass.stores.redis_cache:CachingRedisSessionStore",
        "postgres": "gatepass.stores.postgres:CachingPostgresSessionStore",
        "mongodb": "gatepass.stores.mongodb:MongoSessionStore",
    },
    "refresh token store": {
        "memory": "gatepass.tokens.backends.memory:MemoryRefreshStore",
        "sqlite": "gatepass.tokens.backends.sqlite:SQLiteRefreshStore",
        "redis": "gatepass.tokens.backends.redis:RedisRefreshStore",
        "postgres": "gatepass.tokens.backends.postgres:PostgresRefreshStore",
        "mongodb": "gatepass.tokens.backends.mongodb:MongoRefreshStore",
    },
    "revocation store": {
        "memory": "gatepass.tokens.backends.memory:MemoryRevocationStore",
        "sqlite": "gatepass.tokens.backends.sqlite:CachingSQLiteRevocationStore",
        "redis": "gatepass.tokens.backends.redis_cache:CachingRedisRevocationStore",
        "postgres": "gatepass.tokens.backends.postgres:CachingPostgresRevocationStore",
        "mongodb": "gatepass.tokens.backends.mongodb:MongoRevocationStore",
    },
    "throttle store": {
        "memory": "gatepass.throttle.memory:MemoryThrottleStore",
        "sqlite": "gatepass.throttle.sqlite:SQLiteThrottleStore",
        "redis": "gatepass.throttle.redis:RedisThrottleStore",
        "postgres": "gatepass.throttle.postgres:PostgresThrottleStore",
        "mongodb": "gatepass.throttle.mongodb:MongoThrottleStore",
    },
    "user store": {
        "memory": "gatepass.users.memory:MemoryUserStore",
        "sqlite": "gatepass.users.sqlite:SQLiteUserStore",
        "postgres": "gatepass.users.postgres:PostgresUserStore",
        "mongodb": "gatepass.users.mongodb:MongoUserStore",
    },
    "one-time token store": {
        "memory": "gatepass.onetime.memory:MemoryOneTimeTokenStore",
        "sqlite": "gatepass.onetime.sqlite:SQLiteOneTimeTokenStore",
        "redis": "gatepass.onetime.redis:RedisOneTimeTokenStore",
        "postgres": "gatepass.onetime.postgres:PostgresOneTimeTokenStore",
        "mongodb": "gatepass.onetime.mongodb:MongoOneTimeTokenStore",
    },
    "identity store": {
        "memory": "gatepass.oauth.identities:MemoryIdentityStore",
        "sqlite": "gatepass.oauth.identities_sql:SQLiteIdentityStore",
        "postgres": "gatepass.oauth.identities_sql:PostgresIdentityStore",
        "mongodb": "gatepass.oauth.identities_mongo:MongoIdentityStore",
    },
    "factor store": {
        "memory": "gatepass.mfa.memory:MemoryFactorStore",
        "sqlite": "gatepass.mfa.sql:SQLiteFactorStore",
        "redis": "gatepass.mfa.redis:RedisFactorStore",
        "postgres": "gatepass.mfa.postgres:PostgresFactorStore",
        "mongodb": "gatepass.mfa.mongodb:MongoFactorStore",
    },
    "passkey store": {
        "memory": "gatepass.passkeys.memory:MemoryPasskeyStore",
        "sqlite": "gatepass.passkeys.sql:SQLitePasskeyStore",
        "redis": "gatepass.passkeys.redis:RedisPasskeyStore",
        "postgres": "gatepass.passkeys.postgres:PostgresPasskeyStore",
        "mongodb": "gatepass.passkeys.mongodb:MongoPasskeyStore",
    },
}

#: The third-party module each backend needs, and the extra that installs it.
_DRIVERS: dict[Backend, tuple[str, str]] = {
    "redis": ("redis", "redis"),
    "postgres": ("asyncpg", "postgres"),
    "mongodb": ("pymongo", "mongodb"),
}


async def open_store(kind: str, url: str) -> Any:
    """The ``kind`` of store (a key of :data:`STORES`) that ``url`` names.

    Raises ConfigurationError, whose text shows the URL only as
    :func:`~gatepass.drivers.redact.redact` does, for anything else.
    """
    backends = STORES[kind]
    supported = ", ".join(SPELLINGS[b] for b in backends)
    if not url:
        raise ConfigurationError(f"No {kind} URL given; use {supported}.")
    try:
        target = parse(url)
    except ValueError as exc:
        raise _invalid(kind, url, exc) from None
    if target is None or target.backend not in backends:
        raise ConfigurationError(f"Unsupported {kind} URL {redact(url)!r}; use {supported}.")
    cls = _import(backends[target.backend], target.backend)
    try:
        if target.backend == "memory":
            return cls()
        if target.backend == "sqlite":
            return await cls.open(target.address)
        if target.backend == "redis":
            from gatepass.drivers.redis import open_connection

            return cls(open_connection(target.address), prefix=target.prefix)
        if target.backend == "mongodb":
            from gatepass.drivers.mongodb import open_client

            return cls(open_client(target.address))
        from gatepass.drivers.postgres import open_pool

        return cls(open_pool(target.address))
    except ValueError as exc:
        # Driver URL parsers may quote the URL, password included: say it ourselves.
        raise _invalid(kind, url, exc) from None


def _invalid(kind: str, url: str, exc: ValueError) -> ConfigurationError:
    return ConfigurationError(f"Invalid {kind} URL {redact(url)!r}: {type(exc).__name__}.")


def _import(spec: str, backend: Backend) -> Any:
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        needed = _DRIVERS.get(backend)
        if needed is None or exc.name is None or exc.name.partition(".")[0] != needed[0]:
            raise
        raise ConfigurationError(
            f"The {backend} backend needs the {needed[0]} package: "
            f"pip install 'gatepass[{needed[1]}]'."
        ) from None
    return getattr(module, name)


def _opener(kind: str) -> Callable[[str], Awaitable[Any]]:
    async def open_kind(url: str) -> Any:
        return await open_store(kind, url)

    open_kind.__name__ = open_kind.__qualname__ = f"open_{kind.split()[0].replace('-', '_')}_store"
    open_kind.__doc__ = f"The {kind} that ``url`` names (see :func:`open_store`)."
    return open_kind


# Typed entry points, one per kind; every one goes through open_store.
open_session_store: Callable[[str], Awaitable[SessionStore]] = _opener("session store")
open_refresh_store: Callable[[str], Awaitable[RefreshStore]] = _opener("refresh token store")
open_revocation_store: Callable[[str], Awaitable[RevocationStore]] = _opener("revocation store")
open_throttle_store: Callable[[str], Awaitable[ThrottleStore]] = _opener("throttle store")
open_user_store: Callable[[str], Awaitable[UserStore]] = _opener("user store")
open_one_time_token_store: Callable[[str], Awaitable[OneTimeTokenStore]] = _opener(
    "one-time token store"
)
open_identity_store: Callable[[str], Awaitable[IdentityStore]] = _opener("identity store")
open_factor_store: Callable[[str], Awaitable[FactorStore]] = _opener("factor store")
open_passkey_store: Callable[[str], Awaitable[PasskeyStore]] = _opener("passkey store")
