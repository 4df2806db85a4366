"""The passkey store on its real backends: memory, SQLite (a file in
tmp_path), Redis, a real Redis Cluster, PostgreSQL, and MongoDB through the
nx-27017 wire-protocol emulator (an emulator, not a MongoDB server).

``open_again`` opens a second store on the same data: another server
process, or the same one after a restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gatepass.passkeys.memory import MemoryPasskeyStore
from gatepass.passkeys.store import PasskeyStore

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", marks=[pytest.mark.redis, pytest.mark.slow]),
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mongodb", marks=pytest.mark.mongodb),
]


@dataclass
class Backend:
    name: str
    _open: Callable[[], Awaitable[PasskeyStore]]
    opened: list[PasskeyStore] = field(default_factory=list)

    @property
    def persistent(self) -> bool:
        return self.name != "memory"

    async def open_again(self) -> PasskeyStore:
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
        return request.getfixturevalue("redis_cluster_url"), request.getfixturevalue("redis_prefix")
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
    open_store: Callable[[], Awaitable[PasskeyStore]]
    if backend_name == "memory":
        memory = MemoryPasskeyStore()

        async def open_store() -> PasskeyStore:
            return memory

    elif backend_name == "sqlite":
        from gatepass.passkeys.sql import SQLitePasskeyStore

        async def open_store() -> PasskeyStore:
            return await SQLitePasskeyStore.open(tmp_path / "passkeys.db")

    elif backend_name.startswith("redis"):
        from gatepass.drivers.redis import RedisConnection
        from gatepass.passkeys.redis import RedisPasskeyStore

        async def open_store() -> PasskeyStore:
            return RedisPasskeyStore(RedisConnection(url), prefix=prefix)

    elif backend_name == "mongodb":
        from gatepass.passkeys.mongodb import MongoPasskeyStore

        async def open_store() -> PasskeyStore:
            return MongoPasskeyStore.from_url(url)

    else:
        from gatepass.drivers.postgres import PostgresPool
        from gatepass.passkeys.postgres import PostgresPasskeyStore

        async def open_store() -> PasskeyStore:
            return PostgresPasskeyStore(PostgresPool(url))

    b = Backend(backend_name, open_store)
    try:
        yield b
    finally:
        for store in b.opened:
            client = getattr(store, "client", None)
            if backend_name.startswith("redis") and client is not None:
                keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
                for key in keys:  # one by one: a cluster refuses cross-slot DEL
                    await client.delete(key)
            await store.close()


@pytest.fixture
async def store(backend: Backend) -> PasskeyStore:
    return await backend.open_again()
