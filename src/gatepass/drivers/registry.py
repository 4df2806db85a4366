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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from weakref import WeakKeyDictionary


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
