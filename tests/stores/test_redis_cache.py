"""The coherent local cache in front of Redis: fast, and never stale.

Every test here runs two "instances" (two stores with their own clients and
caches) against one real Redis, the way several servers share it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gatepass.drivers.redis import RedisConnection, redis_client
from gatepass.errors import StoreUnavailable
from gatepass.sessions.store import UNKNOWN
from gatepass.stores.redis_cache import CachingRedisSessionStore
from tests.conftest import RedisServer
from tests.stores.conftest import make_record

pytestmark = pytest.mark.redis


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def pair(private_redis: RedisServer) -> AsyncIterator[tuple[CachingRedisSessionStore, ...]]:
    a = CachingRedisSessionStore(RedisConnection(private_redis.url))
    b = CachingRedisSessionStore(RedisConnection(private_redis.url))
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def _warm(store: CachingRedisSessionStore, key: str) -> None:
    await store.get(key)

    async def active() -> bool:
        await store.get(key)
        return store.cache_active

    await _eventually(active)
    await store.get(key)


async def _gets_sent(server: RedisServer) -> int:
    probe = redis_client(server.url)
    try:
        stats = await probe.info("commandstats")
        return int(stats.get("cmdstat_get", {}).get("calls", 0))
    finally:
        await probe.aclose()


async def test_repeat_reads_are_served_locally(
    pair: tuple[CachingRedisSessionStore, ...], private_redis: RedisServer
) -> None:
    a, _ = pair
    record = make_record()
    await a.create(record)
    await _warm(a, record.key)
    before = await _gets_sent(private_redis)
    for _ in range(200):
        assert await a.get(record.key) == record
        assert a.cached(record.key) == record
    assert await _gets_sent(private_redis) - before == 0


@pytest.mark.parametrize(
    "write",
    [
        "delete",
        "delete_user",
        "set_roles",
        "touch",
        "replace",
    ],
)
async def test_a_write_on_one_instance_reaches_the_others_cache(
    pair: tuple[CachingRedisSessionStore, ...], write: str
) -> None:
    a, b = pair
    record = make_record()
    await a.create(record)
    await _warm(a, record.key)
    assert await a.get(record.key) == record

    if write == "delete":
        await b.delete(record.key)
        expected = None
    elif write == "delete_user":
        await b.delete_user(record.user_id)
        expected = None
    elif write == "set_roles":
        await b.set_roles(record.user_id, ("admin",))
        expected = "roles"
    elif write == "touch":
        await b.touch(record.key, last_seen_at=record.last_seen_at + 5,
                      expires_at=record.expires_at + 5)  # fmt: skip
        expected = "touched"
    else:
        await b.replace(record.key, make_record().key, last_seen_at=record.last_seen_at,
                        expires_at=record.expires_at)  # fmt: skip
        expected = None

    async def seen() -> bool:
        current = await a.get(record.key)
        if expected is None:
            return current is None
        if expected == "roles":
            return current is not None and current.roles == ("admin",)
        return current is not None and current.last_seen_at == record.last_seen_at + 5

    # The push from Redis arrives within milliseconds; one event-loop pass is
    # usually enough, the bound only absorbs a busy machine.
    await _eventually(seen, within=1.0)
    assert a.cached(record.key) in (UNKNOWN, await a.get(record.key))
    assert a.cached(record.key) != record


async def test_expiry_in_redis_reaches_the_cache(
    pair: tuple[CachingRedisSessionStore, ...],
) -> None:
    a, _ = pair
    record = make_record()
    await a.create(record)
    await _warm(a, record.key)
    await a.client.pexpire(a.session_key(record.key), 50)

    async def gone() -> bool:
        return await a.get(record.key) is None

    await _eventually(gone, within=1.0)


async def test_outage_bypasses_and_empties_the_cache(
    pair: tuple[CachingRedisSessionStore, ...], private_redis: RedisServer
) -> None:
    a, _ = pair
    record = make_record()
    await a.create(record)
    await _warm(a, record.key)
    private_redis.stop()

    async def bypassed() -> bool:
        return not a.cache_active

    await _eventually(bypassed)
    assert a.cached(record.key) is UNKNOWN  # never the copy held before the outage
    with pytest.raises(StoreUnavailable):
        await a.get(record.key)
    # Redis comes back empty (it keeps nothing on disk): the cached copy of
    # the lost session must not resurface.
    private_redis.start()

    async def recovered() -> bool:
        try:
            await a.get(record.key)
        except StoreUnavailable:
            return False
        return a.cache_active

    await _eventually(recovered, within=10)
    assert await a.get(record.key) is None
