"""One-time token stores on their real backends.

As in tests/tokens_store/conftest.py: one fixture parametrised over memory,
SQLite (a file in tmp_path), Redis, a real Redis Cluster, PostgreSQL and
MongoDB (the nx-27017 emulator).
``open()`` gives a further store on the same data: a second server process,
or the same one after a restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
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
from tests.backends import BACKENDS_WITH_MONGODB, Backend, backend_of


@pytest.fixture(params=BACKENDS_WITH_MONGODB)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def backend(
    backend_name: str, backend_service: tuple[str, str], tmp_path: Path
) -> AsyncIterator[Backend[OneTimeTokenStore]]:
    url, prefix = backend_service
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

    async with backend_of(backend_name, open_store, prefix) as made:
        yield made


@pytest.fixture
async def store(backend: Backend[OneTimeTokenStore]) -> OneTimeTokenStore:
    return await backend.open()
