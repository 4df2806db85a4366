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
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Self

import asyncpg

from gatepass.drivers.pg_changes import PgChangeStream
from gatepass.drivers.registry import ConnectedStore, Schema, SQLConnection, shared
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

class PostgresPool(SQLConnection):
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
        #: Keeps the local caches exact (see drivers/pg_changes.py).
        self.changes = PgChangeStream(dsn)

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
                    reset=_keep_session,
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
            # Refused while connecting (the pool opens connections lazily):
            # the database does not exist (yet, or any more), the role or
            # password is wrong, too many clients.  The store cannot serve;
            # it is no bug here.
            pool = await self._get_pool()
            conn = await pool.acquire(timeout=self._timeout)
        except (asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
            raise StoreUnavailable("PostgreSQL is unavailable.", store="postgres") from exc
        try:
            if self._pending:
                await self.create_schemas(lambda schemas: _run_ddl(conn, schemas))
            yield conn
        except CONNECTION_ERRORS as exc:
            raise StoreUnavailable("PostgreSQL is unavailable.", store="postgres") from exc
        finally:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await pool.release(conn)

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")

    async def _close(self) -> None:
        await self.changes.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _run_ddl(conn: asyncpg.Connection, schemas: list[Schema]) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        for schema in schemas:
            for statement in schema:
                await conn.execute(statement)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a connection without asyncpg's reset query.

    The default runs ``RESET ALL; UNLISTEN *; …`` on every release: one more
    round trip per store call.  asyncpg still rolls back a transaction left
    open; beyond that the stores leave no session state behind (no SET, no
    LISTEN, no cursor outside a transaction, advisory locks only
    transaction-scoped), so there is nothing to reset.
    """
    del conn


def open_pool(dsn: str) -> PostgresPool:
    """The shared pool for ``dsn``; nothing connects until first use."""
    scheme, sep, rest = dsn.partition("://")
    # postgres:// and postgresql:// name the same server.
    key = f"postgresql{sep}{rest}" if scheme.lower() in ("postgres", "postgresql") else dsn
    return shared(f"postgres:{key}", PostgresPool, lambda: PostgresPool(dsn))


def count(status: str) -> int:
    """Rows affected, from asyncpg's command tag (e.g. ``"UPDATE 3"``)."""
    return int(status.rsplit(" ", 1)[1])


class PostgresStore(ConnectedStore):
    """What every PostgreSQL store shares: its pool, schema, ping and close."""

    def __init__(self, pool: PostgresPool) -> None:
        super().__init__(pool)
        self.pool = pool

    @classmethod
    def from_dsn(cls, dsn: str, **options: Any) -> Self:
        """A store on the shared pool for ``dsn``; nothing connects until first use."""
        return cls(open_pool(dsn), **options)

    def _connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return self.pool.connection()
