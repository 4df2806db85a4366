"""The round-trip counters that later budget tests rely on, checked against reality."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import pytest

from gatepass.drivers import open_revocation_store, open_session_store
from gatepass.drivers.redis import RedisConnection
from gatepass.stores.redis_cache import CachingRedisSessionStore
from gatepass.tokens.backends.redis import RedisRevocationStore
from gatepass.tokens.backends.redis_cache import CachingRedisRevocationStore
from gatepass.tokens.revocation import family_marker
from tests.conftest import RedisServer
from tests.stores.conftest import make_record


async def redis_calls(server: RedisServer) -> int:
    """The data commands the server itself counted (INFO commandstats); a
    probe's connection set-up (HELLO, SELECT, CLIENT) and health PINGs aside."""
    probe = RedisConnection(server.url)
    try:
        stats = await probe.client.info("commandstats")
        data = ("cmdstat_mget", "cmdstat_get", "cmdstat_set", "cmdstat_evalsha", "cmdstat_eval")
        return sum(int(v["calls"]) for k, v in stats.items() if k in data)
    finally:
        await probe.release()


@pytest.mark.redis
async def test_redis_counter_matches_the_server(private_redis: RedisServer) -> None:
    store = RedisRevocationStore(RedisConnection(private_redis.url))
    try:
        fid = secrets.token_urlsafe(16)
        await store.deny(family_marker(fid), "u", until=time.time() + 60)
        before, server_before = store.conn.stats.round_trips, await redis_calls(private_redis)
        assert await store.check("j", "u", family_id=fid) == (True, 0)
        # One round trip: one MGET for the jti, the generation and the family.
        assert store.conn.stats.round_trips - before == 1
        assert await redis_calls(private_redis) - server_before == 1
        # A pipeline is one round trip however many commands it carries.
        before = store.conn.stats.round_trips
        async with store.client.pipeline(transaction=False) as pipe:
            for i in range(5):
                pipe.get(f"k{i}")
            await pipe.execute()
        assert store.conn.stats.round_trips - before == 1
    finally:
        await store.close()


async def cache_up(check: object) -> None:
    deadline = time.monotonic() + 5
    while not getattr(check, "cache_active"):  # noqa: B009
        assert time.monotonic() < deadline, "the invalidation stream never came up"
        await asyncio.sleep(0.01)


@pytest.mark.redis
async def test_cached_reads_make_no_round_trip(private_redis: RedisServer) -> None:
    sessions = await open_session_store(private_redis.url)
    revocation = await open_revocation_store(private_redis.url)
    assert isinstance(sessions, CachingRedisSessionStore)
    assert isinstance(revocation, CachingRedisRevocationStore)
    try:
        record = make_record()
        await sessions.create(record)
        await sessions.get(record.key)
        await revocation.check("j", record.user_id, family_id="f")
        await cache_up(sessions)
        await cache_up(revocation)
        assert await sessions.get(record.key) == record  # now cached
        await revocation.check("j", record.user_id, family_id="f")
        stats = sessions.conn.stats
        before = stats.round_trips
        for _ in range(10):
            assert await sessions.get(record.key) == record
            assert await revocation.check("j", record.user_id, family_id="f") == (False, 0)
        assert stats.round_trips == before
    finally:
        await sessions.delete(record.key)
        await sessions.close()
        await revocation.close()


@pytest.mark.postgres
async def test_postgres_check_is_one_statement(postgres_url: str) -> None:
    store = await open_revocation_store(postgres_url)
    try:
        await store.ping()  # bootstrap the schema first
        pool = store.pool  # type: ignore[attr-defined]
        before = pool.stats.round_trips
        assert await store.check("j", "u", family_id="f") == (False, 0)
        assert pool.stats.round_trips - before == 1
        # A transaction's BEGIN and COMMIT are round trips too.
        before = pool.stats.round_trips
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT 1")
        assert pool.stats.round_trips - before == 3
    finally:
        await store.close()


async def test_sqlite_check_is_one_call(tmp_path: Path) -> None:
    store = await open_revocation_store(f"sqlite:///{tmp_path}/t.db")
    try:
        db = store.db  # type: ignore[attr-defined]
        before = db.stats.round_trips
        assert await store.check("j", "u", family_id="f") == (False, 0)
        assert db.stats.round_trips - before == 1
    finally:
        await store.close()
