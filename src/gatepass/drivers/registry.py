"""One connection per URL, shared by every store opened on it.

A deployment names one URL for sessions, refresh tokens, revocation and
throttling; each of those stores used to open its own Redis client, pool or
SQLite thread on it.  Here the first store opened on a URL creates the
connection and later ones share it; each store holds one reference and the
last ``release`` closes it.

Connections (asyncpg pools, Redis clients, asyncio locks) belong to the event
loop they were made on, so the registry is kept per running loop: a second
loop (a test, a CLI command) gets connections of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar
from weakref import WeakKeyDictionary

#: A store's DDL: statements, each ``CREATE … IF NOT EXISTS``.
Schema = tuple[str, ...]


@dataclass
class Stats:
    """What a connection sent: a hook for round-trip budget tests.

    ``round_trips`` counts Redis commands and pipelines, PostgreSQL
    statements (BEGIN and COMMIT included) and SQLite calls on its thread.
    """

    round_trips: int = 0


class SharedConnection:
    """A connection with a reference count; the last release closes it."""

    #: The name StoreUnavailable carries ("redis", "postgres", "sqlite").
    backend = ""

    def __init__(self) -> None:
        self.stats = Stats()
        self._refs = 1
        self._forget: Callable[[], None] | None = None

    @property
    def references(self) -> int:
        return self._refs

    def acquire(self) -> None:
        """One more store uses this connection."""
        if self._refs <= 0:
            raise RuntimeError("connection already closed")
        self._refs += 1

    async def release(self) -> None:
        """A store is done with it; the last one closes it."""
        if self._refs <= 0:
            return
        self._refs -= 1
        if self._refs == 0:
            if self._forget is not None:
                self._forget()
            await self._close()

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the backend answers."""
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError


class SQLConnection(SharedConnection):
    """A SQL connection that creates the schemas its stores declare, once.

    Each store declares its DDL (``SCHEMA``) and :meth:`require`s it; the
    first statement that needs the connection runs every pending schema
    first (:meth:`create_schemas`), whichever store it comes from.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[Schema] = []
        self._created: set[Schema] = set()
        self._schema_lock = asyncio.Lock()

    def require(self, schema: Schema) -> None:
        """Create ``schema`` before the next statement, unless done already."""
        if schema and schema not in self._created and schema not in self._pending:
            self._pending.append(schema)

    async def create_schemas(self, run: Callable[[list[Schema]], Awaitable[None]]) -> None:
        """Run the pending schemas through ``run`` (one transaction), once."""
        async with self._schema_lock:
            pending = list(self._pending)
            if not pending:
                return
            await run(pending)
            self._created.update(pending)
            self._pending = [s for s in self._pending if s not in self._created]


class ConnectedStore:
    """What every store on a shared connection does the same way."""

    #: SQL stores: their tables and indexes, created on first use.
    SCHEMA: ClassVar[Schema] = ()

    def __init__(self, conn: SharedConnection) -> None:
        """Takes over one reference to ``conn`` (released by :meth:`close`)."""
        if isinstance(conn, SQLConnection):
            conn.require(self.SCHEMA)
        self._shared = conn
        self._released = False

    @property
    def stats(self) -> Stats:
        """What this store's connection sent (shared with every store on its URL)."""
        return self._shared.stats

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the backend answers."""
        await self._shared.ping()

    async def close(self) -> None:
        """Release this store's reference; idempotent."""
        if not self._released:
            self._released = True
            await self._shared.release()


C = TypeVar("C", bound=SharedConnection)

_open: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedConnection]] = (
    WeakKeyDictionary()
)


def shared(key: str, kind: type[C], make: Callable[[], C]) -> C:
    """The open connection for ``key`` (a normalised URL), or a new one from ``make``.

    The caller gets one reference and must ``release`` it.  ``key`` may hold
    credentials: it is only ever compared, never shown.
    """
    table = _open.setdefault(asyncio.get_running_loop(), {})
    found = table.get(key)
    if isinstance(found, kind) and found.references > 0:
        found.acquire()
        return found
    made = make()

    def forget() -> None:
        if table.get(key) is made:
            del table[key]

    made._forget = forget
    table[key] = made
    return made
