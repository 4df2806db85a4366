"""PostgreSQL: one lazily created asyncpg pool per DSN, shared by every store.

The pool is created on first use rather than at start-up, so a server that
starts while PostgreSQL is down answers 503 and recovers by itself when the
database comes back, without a restart.  Connection failures become
:class:`~gatepass.errors.StoreUnavailable` here and nowhere else.

Each store declares its DDL (:attr:`PostgresStore.SCHEMA`); the pool runs
every declared schema once, on the first connection that needs it, under an
advisory lock: ``CREATE … IF NOT EXISTS`` is not safe against itself (two
processes starting together can both pass the check and one then fails on
the catalog's unique index), so every gatepass process takes turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, ClassVar, Self

import asyncpg

from gatepass.drivers.registry import SharedConnection, shared
from gatepass.errors import StoreUnavailable

#: Errors that mean "the database cannot be reached", as opposed to a bug.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.InternalClientError,  # a connection the server ended mid-operation (asyncpg#1069)
)

#: Serialises gatepass DDL across processes ("gatepass" in ASCII; outside the
#: int4 range of the per-user hashtext() locks the session store takes).
SCHEMA_LOCK = 0x6761746570617373

#: A store's DDL: statements, each ``CREATE … IF NOT EXISTS``.
Schema = tuple[str, ...]


class PostgresPool(SharedConnection):
    backend = "postgres"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10,
                 timeout: float = 5.0) -> None:  # fmt: skip
        super().__init__()
        self.dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._pending: list[Schema] = []
        self._created: set[Schema] = set()

    def require(self, schema: Schema) -> None:
        """Create ``schema`` on the next connection, unless done already."""
        if schema not in self._created and schema not in self._pending:
            self._pending.append(schema)

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    timeout=self._timeout,
                    command_timeout=self._timeout,
                    init=self._count_queries,
                )
            return self._pool

    async def _count_queries(self, conn: asyncpg.Connection) -> None:
        def count(_query: Any) -> None:
            self.stats.round_trips += 1

        conn.add_query_logger(count)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, the declared schemas created; failures raise
        StoreUnavailable."""
        try:
            pool = await self._get_pool()
            async with pool.acquire(timeout=self._timeout) as conn:
                if self._pending:
                    await self._create_schemas(conn)
                yield conn
        except CONNECTION_ERRORS as exc:
            raise StoreUnavailable("PostgreSQL is unavailable.", store="postgres") from exc

    async def _create_schemas(self, conn: asyncpg.Connection) -> None:
        async with self._lock:
            pending = list(self._pending)
            if not pending:
                return
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                for schema in pending:
                    for statement in schema:
                        await conn.execute(statement)
            self._created.update(pending)
            self._pending = [s for s in self._pending if s not in self._created]

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")

    async def _close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def open_pool(dsn: str) -> PostgresPool:
    """The shared pool for ``dsn``; nothing connects until first use."""
    scheme, sep, rest = dsn.partition("://")
    # postgres:// and postgresql:// name the same server.
    key = f"postgresql{sep}{rest}" if scheme.lower() in ("postgres", "postgresql") else dsn
    return shared(f"postgres:{key}", PostgresPool, lambda: PostgresPool(dsn))


def count(status: str) -> int:
    """Rows affected, from asyncpg's command tag (e.g. ``"UPDATE 3"``)."""
    return int(status.rsplit(" ", 1)[1])


class PostgresStore:
    """What every PostgreSQL store shares: its pool, schema, ping and close."""

    #: The store's tables and indexes, created on first use.
    SCHEMA: ClassVar[Schema] = ()

    def __init__(self, pool: PostgresPool) -> None:
        """Takes over one reference to ``pool`` (released by :meth:`close`)."""
        pool.require(self.SCHEMA)
        self.pool = pool
        self._released = False

    @classmethod
    def from_dsn(cls, dsn: str, **options: Any) -> Self:
        """A store on the shared pool for ``dsn``; nothing connects until first use."""
        return cls(open_pool(dsn), **options)

    def _connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return self.pool.connection()

    async def ping(self) -> None:
        await self.pool.ping()

    async def close(self) -> None:
        if not self._released:
            self._released = True
            await self.pool.release()
