"""The factor store on its real backends.

As in tests/tokens_store/conftest.py: one fixture parametrised over memory,
SQLite (a file in tmp_path), Redis, a real Redis Cluster, PostgreSQL and
MongoDB (the nx-27017 emulator).
``backend.open()`` opens a further store on the same data: another server
process, or the same one after a restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gatepass.drivers.mongodb import MongoConnection
from gatepass.drivers.postgres import PostgresPool
from gatepass.drivers.redis import RedisConnection
from gatepass.mfa.memory import MemoryFactorStore
from gatepass.mfa.mongodb import MongoFactorStore
from gatepass.mfa.postgres import PostgresFactorStore
from gatepass.mfa.redis import RedisFactorStore
from gatepass.mfa.sql import SQLiteFactorStore
from gatepass.mfa.store import FactorStore
from tests.backends import BACKENDS_WITH_MONGODB, Backend, backend_of


@pytest.fixture(params=BACKENDS_WITH_MONGODB)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def backend(
    backend_name: str, backend_service: tuple[str, str], tmp_path: Path
) -> AsyncIterator[Backend[FactorStore]]:
    url, prefix = backend_service
    open_store: Callable[[], Awaitable[FactorStore]]
    if backend_name == "memory":
        memory = MemoryFactorStore()

        async def open_store() -> FactorStore:
            return memory

    elif backend_name == "sqlite":

        async def open_store() -> FactorStore:
            return await SQLiteFactorStore.open(tmp_path / "factors.db")

    elif backend_name.startswith("redis"):

        async def open_store() -> FactorStore:
            return RedisFactorStore(RedisConnection(url), prefix=prefix)

    elif backend_name == "mongodb":
        # A new client each time: another server process on the same data.

        async def open_store() -> FactorStore:
            return MongoFactorStore(MongoConnection(url))

    else:

        async def open_store() -> FactorStore:
            return PostgresFactorStore(PostgresPool(url))

    async with backend_of(backend_name, open_store, prefix) as made:
        yield made


@pytest.fixture
async def store(backend: Backend[FactorStore]) -> FactorStore:
    return await backend.open()
