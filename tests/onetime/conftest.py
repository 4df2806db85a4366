"""One-time token stores on their real backends.

As in tests/tokens_store/conftest.py: one fixture parametrised over memory,
SQLite (a file in tmp_path), Redis, a real Redis Cluster, PostgreSQL and
MongoDB (the nx-27017 emulator).
``open()`` gives a further store on the same data: a second server process,
or the same one after a restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gatepass.drivers.mongodb import MongoConnection
from gatepass.drivers.postgres import PostgresPool
from gatepass.drivers.redis import RedisConnection
from gatepass.onetime.memory import MemoryOneTimeTokenStore
from gatepass.onetime.mongodb import MongoOneTimeTokenStore
from gatepass.onetime.postgres import PostgresOneTimeTokenStore
from gatepass.onetime.redis import RedisOneTimeTokenStore
from gatepass.onetime.sqlite import SQLiteOneTimeTokenStore
from gatepass.onetime.store import OneTimeTokenStore

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", marks=[pytest.mark.redis, pytest.mark.slow]),
    pytest.param("postgres", marks=pytest.mark.postgres),
    # Against the nx-27017 wire-protocol emulator, not a real MongoDB server
    # (none installs here; see docs/storage.md).
    pytest.param("mongodb", marks=pytest.mark.mongodb),
]


@dataclass
class Backend:
    name: str
    _open: Callable[[], Awaitable[OneTimeTokenStore]]
    opened: list[OneTimeTokenStore] = field(default_factory=list)

    @property
    def persistent(self) -> bool:
        return self.name != "memory"

    async def open(self) -> OneTimeTokenStore:
        store = await self._open()
        self.opened.append(store)
        return store


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def service(backend_name: str, request: pytest.FixtureRequest) -> tuple[str, str]:
    if backend_name == "redis-cluster":
        return request.getfixturevalue("redis_cluster_url"), request.getfixturevalue(
            "redis_prefix"
        )
    if backend_name == "redis":
        return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    if backend_name == "postgres":
        return request.getfixturevalue("postgres_url"), ""
    if backend_name == "mongodb":
        return request.getfixturevalue("mongodb_url"), ""
    return "", ""


@pytest.fixture
async def backend(
    backend_name: str, service: tuple[str, str], tmp_path: Path
) -> AsyncIterator[Backend]:
    url, prefix = service
    open_store: Callable[[], Awaitable[OneTimeTokenStore]]
    if backend_name == "memory":
        shared = MemoryOneTimeTokenStore()

        async def open_store() -> OneTimeTokenStore:
            return shared

    elif backend_name == "sqlite":

        async def open_store() -> OneTimeTokenStore:
            return await SQLiteOneTimeTokenStore.open(tmp_path / "tokens.db")

    elif backend_name.startswith("redis"):

        async def open_store() -> OneTimeTokenStore:
            return RedisOneTimeTokenStore(RedisConnection(url), prefix=prefix)

    elif backend_name == "mongodb":
        # A new client each time: another server process on the same data.

        async def open_store() -> OneTimeTokenStore:
            return MongoOneTimeTokenStore(MongoConnection(url))

    else:

        async def open_store() -> OneTimeTokenStore:
            return PostgresOneTimeTokenStore(PostgresPool(url, max_size=10))

    b = Backend(backend_name, open_store)
    try:
        yield b
    finally:
        for store in b.opened:
            if isinstance(store, RedisOneTimeTokenStore):
                keys = [k async for k in store.client.scan_iter(match=f"{prefix}*")]
                for key in keys:  # one at a time: keys sit on several cluster nodes
                    await store.client.delete(key)
            await store.close()


@pytest.fixture
async def store(backend: Backend) -> OneTimeTokenStore:
    return await backend.open()
