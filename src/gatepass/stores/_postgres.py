"""A lazily created asyncpg pool whose failures become StoreUnavailable.

The pool is created on first use rather than at start-up, so a server that
starts while PostgreSQL is down answers 503 and recovers by itself when the
database comes back, without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

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


class PostgresPool:
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10,
                 timeout: float = 5.0) -> None:  # fmt: skip
        self.dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

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
                )
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; connection failures raise StoreUnavailable."""
        try:
            pool = await self._get_pool()
            async with pool.acquire(timeout=self._timeout) as conn:
                yield conn
        except CONNECTION_ERRORS as exc:
            raise StoreUnavailable("PostgreSQL is unavailable.", store="postgres") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
