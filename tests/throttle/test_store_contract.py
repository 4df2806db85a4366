"""One contract, every throttle store, each against its real backend."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gatepass.drivers.mongodb import MongoConnection
from gatepass.errors import StoreUnavailable
from gatepass.throttle.memory import MemoryThrottleStore
from gatepass.throttle.mongodb import MongoThrottleStore
from gatepass.throttle.postgres import PostgresThrottleStore
from gatepass.throttle.redis import RedisThrottleStore
from gatepass.throttle.sqlite import SQLiteThrottleStore
from gatepass.throttle.store import Hit, ThrottleStore
from tests.conftest import RedisServer, free_port
from tests.throttle.conftest import BACKENDS

W = 900.0


def assert_hit(hit: Hit, failures: int, expires_at: float) -> None:
    assert hit.failures == failures
    assert hit.expires_at == pytest.approx(expires_at, abs=0.002)


def new_key() -> str:
    """Shaped like the policy's keys: SHA-256 hex."""
    return hashlib.sha256(secrets.token_bytes(16)).hexdigest()


def test_every_backend_satisfies_the_protocol() -> None:
    for cls in (MemoryThrottleStore, SQLiteThrottleStore, RedisThrottleStore,
                PostgresThrottleStore):  # fmt: skip
        assert issubclass(cls, ThrottleStore), cls


async def test_first_hit_starts_a_window(store: ThrottleStore) -> None:
    now = time.time()
    hit = await store.hit(new_key(), window=W, now=now)
    assert hit.failures == 1
    assert hit.expires_at == pytest.approx(now + W, abs=0.002)
    assert isinstance(hit, Hit)


async def test_fifty_concurrent_hits_each_get_a_distinct_count(store: ThrottleStore) -> None:
    key, now = new_key(), time.time()
    hits = await asyncio.gather(*(store.hit(key, window=W, now=now) for _ in range(50)))
    assert sorted(h.failures for h in hits) == list(range(1, 51))
    # Every hit saw the same window: the first one's.
    assert len({round(h.expires_at, 3) for h in hits}) == 1


async def test_keys_are_independent(store: ThrottleStore) -> None:
    a, b, now = new_key(), new_key(), time.time()
    for _ in range(3):
        await store.hit(a, window=W, now=now)
    assert (await store.hit(b, window=W, now=now)).failures == 1
    assert (await store.hit(a, window=W, now=now)).failures == 4


async def test_counter_expires_window_after_its_first_hit(store: ThrottleStore) -> None:
    key, start = new_key(), time.time()
    await store.hit(key, window=60, now=start)
    # Later hits inside the window do not move it (no extend_after)...
    hit = await store.hit(key, window=60, now=start + 59.9)
    assert_hit(hit, 2, start + 60)
    # ...and at its end the count restarts with a fresh window.
    hit = await store.hit(key, window=60, now=start + 60)
    assert_hit(hit, 1, start + 120)


async def test_extend_after_keeps_a_busy_counter_alive(store: ThrottleStore) -> None:
    key, start = new_key(), time.time()
    for i in range(3):
        hit = await store.hit(key, window=60, now=start + i * 10, extend_after=2)
    # The third hit is past the allowance: expiry moves to 60 s after it.
    assert_hit(hit, 3, start + 80)
    # Under the allowance it never moved, and it never moves backwards.
    other = new_key()
    await store.hit(other, window=60, now=start, extend_after=5)
    hit = await store.hit(other, window=60, now=start + 30, extend_after=5)
    assert hit.expires_at == pytest.approx(start + 60, abs=0.002)
    hit = await store.hit(key, window=10, now=start + 21, extend_after=2)
    assert_hit(hit, 4, start + 80)
    # extend_window: how far past the hit the extension reaches.
    hit = await store.hit(key, window=60, now=start + 22, extend_after=2, extend_window=100)
    assert_hit(hit, 5, start + 122)


async def test_deadlines_rise_never_fall_and_lapse(store: ThrottleStore) -> None:
    a, b, missing, now = new_key(), new_key(), new_key(), time.time()
    await store.set_deadline(a, until=now + 30, now=now)
    await store.set_deadline(a, until=now + 10, now=now)  # lower: ignored
    await store.set_deadline(b, until=now + 5, now=now)
    got = await store.deadlines([missing, a, b], now=now)
    assert got == [0.0, pytest.approx(now + 30, abs=0.002), pytest.approx(now + 5, abs=0.002)]
    # Past a deadline it reads as none (stores may keep whole milliseconds).
    assert await store.deadlines([a, b], now=now + 30.002) == [0.0, 0.0]
    assert await store.deadlines([], now=now) == []


async def test_a_deadline_and_a_counter_share_a_key(store: ThrottleStore) -> None:
    key, now = new_key(), time.time()
    await store.hit(key, window=W, now=now)
    await store.set_deadline(key, until=now + 4, now=now)
    assert (await store.hit(key, window=W, now=now)).failures == 2
    assert await store.deadlines([key], now=now) == [pytest.approx(now + 4, abs=0.002)]


async def test_clear_forgets_counter_and_deadline(store: ThrottleStore) -> None:
    key, keep, now = new_key(), new_key(), time.time()
    for k in (key, keep):
        await store.hit(k, window=W, now=now)
        await store.set_deadline(k, until=now + 60, now=now)
    await store.clear(key)
    await store.clear(new_key())  # unknown: no error
    assert await store.deadlines([key, keep], now=now) == [0.0, pytest.approx(now + 60, abs=0.002)]
    assert (await store.hit(key, window=W, now=now)).failures == 1
    assert (await store.hit(keep, window=W, now=now)).failures == 2


async def test_purge_removes_only_what_is_over(store: ThrottleStore, backend_name: str) -> None:
    now = time.time()
    counter, blocked, gone = new_key(), new_key(), new_key()
    await store.hit(counter, window=100, now=now)
    await store.hit(blocked, window=10, now=now)
    await store.set_deadline(blocked, until=now + 100, now=now)
    await store.hit(gone, window=10, now=now)
    removed = await store.purge_expired(now + 50)
    assert removed == (0 if backend_name.startswith("redis") else 1)
    assert (await store.hit(counter, window=100, now=now + 50)).failures == 2
    assert await store.deadlines([blocked], now=now + 50) == [pytest.approx(now + 100, abs=0.002)]
    await store.ping()


# Memory is in-process by design; the others must share state.
@pytest.mark.parametrize("backend_name", [b for b in BACKENDS if b != "memory"])
async def test_state_is_shared_between_instances(
    backend_name: str, backend_service: tuple[str, str], tmp_path: Path
) -> None:
    # What makes throttling hold across server processes.
    url, prefix = backend_service

    async def make() -> ThrottleStore:
        if backend_name == "sqlite":
            return await SQLiteThrottleStore.open(tmp_path / "shared.db")
        if backend_name.startswith("redis"):
            return RedisThrottleStore.from_url(url, prefix=prefix)
        if backend_name == "mongodb":
            # A client each: two server processes.
            return MongoThrottleStore(MongoConnection(url))
        return PostgresThrottleStore.from_dsn(url)

    one, two = await make(), await make()
    try:
        key, now = new_key(), time.time()
        hits = await asyncio.gather(
            *(s.hit(key, window=W, now=now) for s in (one, two) for _ in range(10))
        )
        assert sorted(h.failures for h in hits) == list(range(1, 21))
        await one.set_deadline(key, until=now + 9, now=now)
        assert await two.deadlines([key], now=now) == [pytest.approx(now + 9, abs=0.002)]
        await two.clear(key)
    finally:
        await one.close()
        await two.close()


# ---------------------------------------------------------------- Redis specifics


@pytest.mark.redis
async def test_redis_keys_expire_by_themselves(redis_url: str, redis_prefix: str) -> None:
    store = RedisThrottleStore.from_url(redis_url, prefix=redis_prefix)
    try:
        key, now = new_key(), time.time()
        await store.hit(key, window=0.3, now=now)
        await store.set_deadline(key, until=now + 0.5, now=now)
        ttl = await store.client.pttl(store.redis_key(key))
        assert 250 <= ttl <= 502  # the later of counter and deadline (whole ms)
        await asyncio.sleep(0.6)
        assert await store.client.exists(store.redis_key(key)) == 0
        # A long counter gets a long TTL.
        await store.hit(key, window=W, now=time.time())
        assert await store.client.pttl(store.redis_key(key)) > (W - 5) * 1000
    finally:
        await store.client.delete(store.redis_key(key))
        await store.close()


# ---------------------------------------------------------------- outages


def _every_call() -> list[tuple[str, Callable[[ThrottleStore], Awaitable[Any]]]]:
    key, now = new_key(), time.time()
    return [
        ("hit", lambda s: s.hit(key, window=W, now=now)),
        ("set_deadline", lambda s: s.set_deadline(key, until=now + 1, now=now)),
        ("deadlines", lambda s: s.deadlines([key], now=now)),
        ("clear", lambda s: s.clear(key)),
        ("ping", lambda s: s.ping()),
    ]


async def _assert_unavailable(store: ThrottleStore, name: str) -> None:
    for method, call in _every_call():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            await asyncio.wait_for(call(store), timeout=10)
        assert time.monotonic() - started < 3, method
        assert info.value.store == name


@pytest.mark.parametrize("name", ["redis", "postgres"])
async def test_unreachable_server_raises_store_unavailable_quickly(name: str) -> None:
    port = free_port()
    store: ThrottleStore
    if name == "redis":
        store = RedisThrottleStore.from_url(f"redis://127.0.0.1:{port}/0")
    else:
        store = PostgresThrottleStore.from_dsn(f"postgresql://postgres@127.0.0.1:{port}/test")
    try:
        await _assert_unavailable(store, name)
    finally:
        await store.close()


async def test_unusable_sqlite_file_raises_store_unavailable(tmp_path: Path) -> None:
    # A directory where the database file should be: sqlite cannot open it.
    with pytest.raises(StoreUnavailable):
        await SQLiteThrottleStore.open(tmp_path)


@pytest.mark.redis
async def test_redis_going_down_mid_use(private_redis: RedisServer) -> None:
    store = RedisThrottleStore.from_url(private_redis.url)
    try:
        key, now = new_key(), time.time()
        assert (await store.hit(key, window=W, now=now)).failures == 1
        private_redis.stop()
        await _assert_unavailable(store, "redis")
    finally:
        await store.close()
