"""The round-trip counters that later budget tests rely on, checked against reality."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gatepass.drivers import open_revocation_store, open_session_store
from gatepass.drivers.redis import RedisConnection
from gatepass.stores.redis_cache import CachingRedisSessionStore
from gatepass.tokens.backends.redis import RedisRevocationStore
from gatepass.tokens.backends.redis_cache import CachingRedisRevocationStore
from gatepass.tokens.revocation import family_marker
from tests.conftest import RedisServer
from tests.server.conftest import PASSWORD, make_client, register
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


# ------------------------------------------------ whole requests, per store


def _trips(client: TestClient) -> int:
    parts = client.app.state.gatepass.components  # type: ignore[attr-defined]
    count: int = parts.sessions.store.stats.round_trips
    return count


def _count(client: TestClient, headers: dict[str, str]) -> int:
    """The round trips of one successful GET /auth/verify."""
    before = _trips(client)
    assert client.get("/auth/verify", headers=headers).status_code == 200
    return _trips(client) - before


def _credentials(
    client: TestClient, email: str = "ada@example.com"
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """A session cookie and two Bearer tokens of one account, as headers."""
    body = {"email": email, "password": PASSWORD}
    assert client.post("/auth/login", json=body).status_code == 200
    cookie = {"cookie": f"__Host-gatepass={client.cookies['__Host-gatepass']}"}
    client.cookies = httpx.Cookies()
    tokens = [client.post("/auth/token", json=body).json()["access_token"] for _ in range(2)]
    return cookie, *({"authorization": f"Bearer {token}"} for token in tokens)  # type: ignore[return-value]


def _until_cached(client: TestClient, headers: dict[str, str]) -> None:
    """Repeat the request until it costs nothing (the streams start on first use)."""
    deadline = time.monotonic() + 10
    while _count(client, headers) != 0:
        assert time.monotonic() < deadline, "the request never became free"
        time.sleep(0.02)


@pytest.mark.postgres
def test_postgres_request_budgets(tmp_path: Path, postgres_url: str) -> None:
    """Everything on PostgreSQL (accounts, sessions, tokens; one counter for
    the one pool): cached GETs make no round trip; a token this instance
    has not seen costs its revocation check only; a fresh instance pays the
    session or revocation read plus the account read."""
    with make_client(tmp_path, database_url=postgres_url) as client:
        register(client)
        register(client, "bob@example.com")
        cookie, bearer, unseen = _credentials(client)
        _, warm, _ = _credentials(client, "bob@example.com")
        _until_cached(client, cookie)
        _until_cached(client, bearer)
        for _ in range(5):
            assert _count(client, cookie) == 0
            assert _count(client, bearer) == 0
        assert _count(client, unseen) == 1  # the revocation check; the account is cached
    with make_client(tmp_path, database_url=postgres_url) as fresh:
        # Another account's request first: the pool's connections and
        # schema checks are not what is measured.
        _count(fresh, warm)
        assert _count(fresh, cookie) <= 2  # the session, the account
        assert _count(fresh, bearer) <= 1  # the revocation check; the account is cached now


@pytest.mark.redis
@pytest.mark.slow
def test_redis_cluster_request_budgets(tmp_path: Path, redis_cluster_url: str) -> None:
    """Sessions and tokens on a Redis Cluster (accounts in SQLite): cached
    GETs make no round trip (per-node tracking); an unseen token costs one,
    and so does each first request of a fresh instance."""
    url = f"{redis_cluster_url}?prefix=gprt:{secrets.token_hex(4)}:"
    with make_client(tmp_path, session_store_url=url) as client:
        register(client)
        register(client, "bob@example.com")
        cookie, bearer, unseen = _credentials(client)
        _, warm, _ = _credentials(client, "bob@example.com")
        _until_cached(client, cookie)
        _until_cached(client, bearer)
        for _ in range(5):
            assert _count(client, cookie) == 0
            assert _count(client, bearer) == 0
        assert _count(client, unseen) == 1
    with make_client(tmp_path, session_store_url=url) as fresh:
        _count(fresh, warm)
        assert _count(fresh, cookie) <= 1  # the session
        assert _count(fresh, bearer) <= 1  # the revocation check


@pytest.mark.mongodb
def test_mongodb_request_budgets(tmp_path: Path, mongodb_url: str) -> None:
    """Everything on MongoDB (the nx-27017 emulator; no local cache there, see
    docs/storage.md): every GET reads the session or the token's revocation
    entry, and the account."""
    with make_client(tmp_path, database_url=mongodb_url) as client:
        register(client)
        cookie, bearer, unseen = _credentials(client)
        _count(client, cookie)  # indexes created on first use are not measured
        _count(client, bearer)
        for _ in range(3):
            assert _count(client, cookie) <= 2
            assert _count(client, bearer) <= 2
        assert _count(client, unseen) <= 2
