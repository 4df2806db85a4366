"""The local revocation cache: served from memory, exact across instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gatepass.drivers.redis import RedisConnection, redis_client
from gatepass.errors import StoreUnavailable
from gatepass.tokens.backends.redis_cache import CachingRedisRevocationStore
from tests.conftest import RedisServer

pytestmark = pytest.mark.redis


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def pair(
    private_redis: RedisServer,
) -> AsyncIterator[tuple[CachingRedisRevocationStore, CachingRedisRevocationStore]]:
    a = CachingRedisRevocationStore(RedisConnection(private_redis.url))
    b = CachingRedisRevocationStore(RedisConnection(private_redis.url))
    try:
        for store in (a, b):
            await store.check("warm", "u")

            async def active(store: CachingRedisRevocationStore = store) -> bool:
                await store.check("warm", "u")
                return store.cache_active

            await eventually(active)
        yield a, b
    finally:
        await a.close()
        await b.close()


async def mget_calls(server: RedisServer, command: str = "mget") -> int:
    probe = redis_client(server.url)
    try:
        stats = await probe.info("commandstats")
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
    finally:
        await probe.aclose()


async def test_repeat_checks_are_answered_locally(
    pair: tuple[CachingRedisRevocationStore, ...], private_redis: RedisServer
) -> None:
    a, _ = pair
    assert await a.check("jti-1", "user-1") == (False, 0)
    before = await mget_calls(private_redis)
    for _ in range(200):
        assert await a.check("jti-1", "user-1") == (False, 0)
    assert await mget_calls(private_redis) == before


async def test_repeat_generation_reads_are_answered_locally(
    pair: tuple[CachingRedisRevocationStore, ...], private_redis: RedisServer
) -> None:
    # What every refresh asks after its rotation.
    a, _ = pair
    assert await a.generation("user-g") == 0
    before = await mget_calls(private_redis, "get")
    for _ in range(200):
        assert await a.generation("user-g") == 0
    assert await mget_calls(private_redis, "get") == before


async def test_a_revocation_on_one_instance_reaches_the_other(
    pair: tuple[CachingRedisRevocationStore, ...],
) -> None:
    a, b = pair
    assert await a.check("jti-1", "user-1") == (False, 0)
    await b.deny("jti-1", "user-1", until=time.time() + 3600)

    async def denied() -> bool:
        return (await a.check("jti-1", "user-1"))[0]

    await eventually(denied, within=1.0)


async def test_a_generation_bump_on_one_instance_reaches_the_other(
    pair: tuple[CachingRedisRevocationStore, ...],
) -> None:
    a, b = pair
    assert await a.check("jti-2", "user-2") == (False, 0)
    assert await a.check("jti-3", "user-2") == (False, 0)
    assert await a.generation("user-2") == 0
    await b.bump_generation("user-2")

    async def bumped() -> bool:
        return await a.check("jti-2", "user-2") == (False, 1) == await a.check("jti-3", "user-2")

    await eventually(bumped, within=1.0)

    async def read_alone() -> bool:
        return await a.generation("user-2") == 1

    await eventually(read_alone, within=1.0)
    # And a second bump, now that 1 is the cached value.
    await b.bump_generation("user-2")

    async def twice() -> bool:
        return await a.generation("user-2") == 2

    await eventually(twice, within=1.0)


async def test_own_writes_are_seen_at_once(
    pair: tuple[CachingRedisRevocationStore, ...],
) -> None:
    a, _ = pair
    assert await a.check("jti-4", "user-4") == (False, 0)
    await a.deny("jti-4", "user-4", until=10**10)
    assert (await a.check("jti-4", "user-4"))[0] is True  # no waiting for the push
    assert await a.generation("user-4") == 0
    await a.bump_generation("user-4")
    assert (await a.check("jti-4", "user-4"))[1] == 1
    assert await a.generation("user-4") == 1


async def test_outage_is_never_answered_from_the_cache(
    pair: tuple[CachingRedisRevocationStore, ...], private_redis: RedisServer
) -> None:
    a, _ = pair
    assert await a.check("jti-5", "user-5") == (False, 0)
    assert await a.generation("user-5") == 0
    assert await a.generation("user-5") == 0  # cached
    private_redis.stop()

    async def bypassed() -> bool:
        return not a.cache_active

    await eventually(bypassed)
    with pytest.raises(StoreUnavailable):
        await a.check("jti-5", "user-5")
    with pytest.raises(StoreUnavailable):
        await a.generation("user-5")
