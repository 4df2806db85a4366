"""Session stores on their real backends, plus helpers for outage tests."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gatepass.drivers.redis import RedisConnection
from gatepass.sessions.record import SessionRecord
from gatepass.sessions.store import SessionStore
from gatepass.stores.memory import MemorySessionStore
from gatepass.stores.mongodb import MongoSessionStore
from gatepass.stores.postgres import PostgresSessionStore
from gatepass.stores.redis import RedisSessionStore
from gatepass.stores.redis_cache import CachingRedisSessionStore
from gatepass.stores.sqlite import SQLiteSessionStore

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    # The Redis store behind its local cache: every read the suite repeats
    # (see read_twice) is then served from process memory.
    pytest.param("redis-cached", marks=pytest.mark.redis),
    # A real 3-master Redis Cluster (tests/cluster/server.py); the caching
    # store must bypass its cache there.
    pytest.param("redis-cluster", marks=[pytest.mark.redis, pytest.mark.slow]),
    pytest.param("redis-cluster-cached", marks=[pytest.mark.redis, pytest.mark.slow]),
    pytest.param("postgres", marks=pytest.mark.postgres),
    # The MongoDB store against the nx-27017 wire-protocol emulator (not a
    # real MongoDB server: none installs here; see docs/storage.md).
    pytest.param("mongodb", marks=pytest.mark.mongodb),
]


def new_key() -> str:
    """A key shaped like the real ones: SHA-256 hex of a random token."""
    return hashlib.sha256(secrets.token_bytes(32)).hexdigest()


def make_record(user_id: str = "alice", *, created_at: float | None = None,
                **overrides: Any) -> SessionRecord:  # fmt: skip
    # Real wall-clock times: Redis expires keys by its own clock.
    now = time.time() if created_at is None else created_at
    fields: dict[str, Any] = {
        "key": new_key(),
        "user_id": user_id,
        "roles": ("user",),
        "created_at": now,
        "last_seen_at": now,
        "expires_at": now + 1800,
        "absolute_expires_at": now + 8 * 3600,
        "idle_timeout": 1800,
        "remember": False,
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "data": {},
    }
    fields.update(overrides)
    return SessionRecord(**fields)


@dataclass
class Backend:
    name: str
    store: SessionStore

    @property
    def is_redis(self) -> bool:
        return isinstance(self.store, RedisSessionStore)

    @property
    def redis(self) -> RedisSessionStore:
        assert isinstance(self.store, RedisSessionStore)
        return self.store


async def read_twice(store: SessionStore, key: str) -> SessionRecord | None:
    """Read a session twice, so that a caching store holds it.

    On the caching store the second read is served from the cache, so a
    read after a later write shows whether the write reached the cache.
    """
    first = await store.get(key)
    assert await store.get(key) == first
    if isinstance(store, CachingRedisSessionStore) and first is not None:
        assert key in store._entries, "the cache did not take the session"
    return first


async def _cache_started(store: CachingRedisSessionStore) -> None:
    # The invalidation listener starts on the first get; until it is up the
    # store bypasses its cache, and the suite would not exercise it.
    deadline = time.monotonic() + 5
    while not store.cache_active:
        assert time.monotonic() < deadline, "the cache's invalidation stream never came up"
        await store.get(new_key())
        await asyncio.sleep(0.01)


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def backend(
    backend_name: str, backend_service: tuple[str, str], tmp_path: Path
) -> AsyncIterator[Backend]:
    url, prefix = backend_service
    store: SessionStore
    if backend_name == "memory":
        store = MemorySessionStore()
    elif backend_name == "sqlite":
        store = await SQLiteSessionStore.open(tmp_path / "sessions.db")
    elif backend_name in ("redis", "redis-cluster"):
        store = RedisSessionStore(RedisConnection(url), prefix=prefix)
    elif backend_name in ("redis-cached", "redis-cluster-cached"):
        store = CachingRedisSessionStore(RedisConnection(url), prefix=prefix)
    elif backend_name == "mongodb":
        store = MongoSessionStore.from_url(url)
    else:
        store = PostgresSessionStore.from_dsn(url)
    try:
        if isinstance(store, CachingRedisSessionStore):
            await _cache_started(store)
        yield Backend(backend_name, store)
    finally:
        if isinstance(store, RedisSessionStore):
            # Leave nothing behind on the shared server.
            keys = [k async for k in store.client.scan_iter(match=f"{store.prefix}*")]
            if keys:
                await store.client.delete(*keys)
        await store.close()


@pytest.fixture
def store(backend: Backend) -> SessionStore:
    return backend.store
