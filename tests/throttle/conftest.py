"""Throttle stores on their real backends, and a clock the tests move by hand."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gatepass.throttle.memory import MemoryThrottleStore
from gatepass.throttle.mongodb import MongoThrottleStore
from gatepass.throttle.postgres import PostgresThrottleStore
from gatepass.throttle.redis import RedisThrottleStore
from gatepass.throttle.sqlite import SQLiteThrottleStore
from gatepass.throttle.store import ThrottleStore

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    # A real 3-master Redis Cluster (tests/cluster/server.py).
    pytest.param("redis-cluster", marks=[pytest.mark.redis, pytest.mark.slow]),
    pytest.param("postgres", marks=pytest.mark.postgres),
    # The MongoDB store against the nx-27017 wire-protocol emulator (not a
    # real MongoDB server: none installs here; see docs/storage.md).
    pytest.param("mongodb", marks=pytest.mark.mongodb),
]


class FakeClock:
    """Starts at the real time: Redis still garbage-collects by its own clock."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def store(
    backend_name: str, backend_service: tuple[str, str], tmp_path: Path
) -> AsyncIterator[ThrottleStore]:
    url, prefix = backend_service
    made: ThrottleStore
    if backend_name == "memory":
        made = MemoryThrottleStore()
    elif backend_name == "sqlite":
        made = await SQLiteThrottleStore.open(tmp_path / "throttle.db")
    elif backend_name in ("redis", "redis-cluster"):
        made = RedisThrottleStore.from_url(url, prefix=prefix)
    elif backend_name == "mongodb":
        made = MongoThrottleStore.from_url(url)
    else:
        made = PostgresThrottleStore.from_dsn(url)
    try:
        yield made
    finally:
        if isinstance(made, RedisThrottleStore):
            keys = [k async for k in made.client.scan_iter(match=f"{made.prefix}*")]
            if keys:
                await made.client.delete(*keys)
        await made.close()
