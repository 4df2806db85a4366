"""Refresh and revocation stores on their real backends.

As in tests/stores/conftest.py: one fixture parametrised over memory, SQLite
(a file in tmp_path), Redis and PostgreSQL (real servers, see
tests/conftest.py).  A :class:`Backend` can open further stores on the same
data, which stand for a second server process or a restart.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gatepass.drivers.mongodb import MongoConnection
from gatepass.drivers.postgres import PostgresPool
from gatepass.drivers.redis import RedisConnection
from gatepass.tokens import refresh
from gatepass.tokens.backends.memory import MemoryRefreshStore, MemoryRevocationStore
from gatepass.tokens.backends.mongodb import MongoRefreshStore, MongoRevocationStore
from gatepass.tokens.backends.postgres import PostgresRefreshStore, PostgresRevocationStore
from gatepass.tokens.backends.redis import RedisRefreshStore, RedisRevocationStore
from gatepass.tokens.backends.redis_cache import CachingRedisRevocationStore
from gatepass.tokens.backends.sqlite import SQLiteRefreshStore, SQLiteRevocationStore
from gatepass.tokens.refresh import Family, RefreshStore, RotateOutcome
from gatepass.tokens.revocation import RevocationStore

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cached", marks=pytest.mark.redis),
    # A real 3-master Redis Cluster (tests/cluster/server.py); the caching
    # revocation store must bypass its cache there.
    pytest.param("redis-cluster", marks=[pytest.mark.redis, pytest.mark.slow]),
    pytest.param("redis-cluster-cached", marks=[pytest.mark.redis, pytest.mark.slow]),
    pytest.param("postgres", marks=pytest.mark.postgres),
    # The MongoDB store against the nx-27017 wire-protocol emulator (not a
    # real MongoDB server: none installs here; see docs/storage.md).
    pytest.param("mongodb", marks=pytest.mark.mongodb),
]

#: Stores whose state outlives the process (restart tests run only there).
PERSISTENT = [p for p in BACKENDS if p != "memory"]

SERVER_KEY = b"k" * 32


class Clock:
    """The clock of the memory and SQL revocation stores (Redis uses its own)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def new_family(
    user_id: str = "alice", *, now: float | None = None, lifetime: float = 3600.0,
    data: dict[str, object] | None = None, generation: int = 0,
) -> tuple[str, Family]:  # fmt: skip
    """A first token and its family.  Real wall-clock times by default:
    Redis expires families by its own clock."""
    now = time.time() if now is None else now
    token = refresh.new_token(b"k" * 32)
    family_id = refresh.family_id_of(token)
    assert family_id is not None
    family = Family(
        family_id=family_id,
        user_id=user_id,
        created_at=now,
        absolute_expires_at=now + lifetime,
        current_hash=refresh.token_hash(token),
        generation=generation,
        data={} if data is None else data,
    )
    return token, family


async def rotate(
    store: RefreshStore, token: str, *, now: float, grace: float = 10.0
) -> tuple[RotateOutcome, Family | None, str]:
    """What the refresh service does: derive the successor, ask the store."""
    nxt = refresh.successor(token, SERVER_KEY)
    family_id = refresh.family_id_of(token)
    assert family_id is not None
    outcome, family = await store.rotate(
        family_id, refresh.token_hash(token), refresh.token_hash(nxt), now=now, grace=grace
    )
    return outcome, family, nxt


@dataclass
class Backend:
    name: str
    clock: Clock
    _open_refresh: Callable[[], Awaitable[RefreshStore]]
    _open_revocation: Callable[[], Awaitable[RevocationStore]]
    opened: list[RefreshStore | RevocationStore] = field(default_factory=list)

    @property
    def persistent(self) -> bool:
        return self.name != "memory"

    async def open_refresh(self) -> RefreshStore:
        """A new store on the same data (memory: the same store)."""
        store = await self._open_refresh()
        self.opened.append(store)
        return store

    async def open_revocation(self) -> RevocationStore:
        store = await self._open_revocation()
        self.opened.append(store)
        return store


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def backend(
    backend_name: str, backend_service: tuple[str, str], tmp_path: Path
) -> AsyncIterator[Backend]:
    url, prefix = backend_service
    clock = Clock()
    open_refresh: Callable[[], Awaitable[Any]]
    open_revocation: Callable[[], Awaitable[Any]]
    if backend_name == "memory":
        memory_refresh, memory_revocation = MemoryRefreshStore(), MemoryRevocationStore(clock=clock)

        async def open_refresh() -> Any:
            return memory_refresh

        async def open_revocation() -> Any:
            return memory_revocation

    elif backend_name == "sqlite":
        path = tmp_path / "tokens.db"

        async def open_refresh() -> Any:
            return await SQLiteRefreshStore.open(path)

        async def open_revocation() -> Any:
            return await SQLiteRevocationStore.open(path, clock=clock)

    elif backend_name.startswith("redis"):
        revocation_class = (
            CachingRedisRevocationStore
            if backend_name.endswith("-cached")
            else RedisRevocationStore
        )

        async def open_refresh() -> Any:
            return RedisRefreshStore(RedisConnection(url), prefix=prefix)

        async def open_revocation() -> Any:
            return revocation_class(RedisConnection(url), prefix=prefix)

    elif backend_name == "mongodb":
        # A new client each time: another server process on the same data.

        async def open_refresh() -> Any:
            return MongoRefreshStore(MongoConnection(url))

        async def open_revocation() -> Any:
            return MongoRevocationStore(MongoConnection(url), clock=clock)

    else:

        async def open_refresh() -> Any:
            return PostgresRefreshStore(PostgresPool(url, max_size=10))

        async def open_revocation() -> Any:
            return PostgresRevocationStore(PostgresPool(url), clock=clock)

    b = Backend(backend_name, clock, open_refresh, open_revocation)
    try:
        yield b
    finally:
        for store in b.opened:
            if isinstance(store, RedisRefreshStore | RedisRevocationStore):
                # Leave nothing behind on the shared server.
                keys = [k async for k in store.client.scan_iter(match=f"{prefix}*")]
                if keys:
                    await store.client.delete(*keys)
            await store.close()


@pytest.fixture
async def refresh_store(backend: Backend) -> RefreshStore:
    return await backend.open_refresh()


@pytest.fixture
async def revocation_store(backend: Backend) -> RevocationStore:
    return await backend.open_revocation()
