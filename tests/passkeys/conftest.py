"""The passkey store on its real backends: memory, SQLite (a file in
tmp_path), Redis, a real Redis Cluster, PostgreSQL, and MongoDB through the
nx-27017 wire-protocol emulator (an emulator, not a MongoDB server).

``backend.open()`` opens a second store on the same data: another server
process, or the same one after a restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gatepass.passkeys.memory import MemoryPasskeyStore
from gatepass.passkeys.store import PasskeyStore
from tests.backends import BACKENDS_WITH_MONGODB, Backend, backend_of


@pytest.fixture(params=BACKENDS_WITH_MONGODB)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def backend(
    backend_name: str, backend_service: tuple[str, str], tmp_path: Path
) -> AsyncIterator[Backend[PasskeyStore]]:
    url, prefix = backend_service
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

    async with backend_of(backend_name, open_store, prefix) as made:
        yield made


@pytest.fixture
async def store(backend: Backend[PasskeyStore]) -> PasskeyStore:
    return await backend.open()
