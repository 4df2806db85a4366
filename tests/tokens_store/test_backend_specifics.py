"""What the shared suites cannot see: Redis key layout, TTLs and round trips,
and outages of the networked stores."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from gatepass.drivers.redis import RedisConnection, redis_client
from gatepass.errors import StoreUnavailable
from gatepass.tokens.backends.postgres import PostgresRefreshStore, PostgresRevocationStore
from gatepass.tokens.backends.redis import RedisRefreshStore, RedisRevocationStore
from gatepass.tokens.backends.sqlite import SQLiteRefreshStore
from gatepass.tokens.refresh import RefreshStore, RotateOutcome
from gatepass.tokens.revocation import RevocationStore
from tests.conftest import RedisServer, free_port
from tests.tokens_store.conftest import new_family, rotate

# ---------------------------------------------------------------- Redis layout


@pytest.fixture
async def redis_stores(redis_url: str, redis_prefix: str) -> Any:
    refresh = RedisRefreshStore(RedisConnection(redis_url), prefix=redis_prefix)
    revocation = RedisRevocationStore(RedisConnection(redis_url), prefix=redis_prefix)
    yield refresh, revocation
    keys = [k async for k in refresh.client.scan_iter(match=f"{redis_prefix}*")]
    if keys:
        await refresh.client.delete(*keys)
    await revocation.client.aclose()
    await refresh.close()


@pytest.mark.redis
async def test_redis_family_is_one_key_expiring_at_its_deadline(
    redis_stores: tuple[RedisRefreshStore, RedisRevocationStore], redis_prefix: str
) -> None:
    store, _ = redis_stores
    token, family = new_family(lifetime=3600.5)
    await store.create(family)
    await rotate(store, token, now=family.created_at)
    client = store.client
    keys = sorted([k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")])
    assert keys == [store.family_key(family.family_id), store.index_key("alice")]
    assert await client.type(store.family_key(family.family_id)) == b"hash"
    deadline_ms = int(family.absolute_expires_at * 1000)
    for key in keys:
        # Rotation never extends the family (SECURITY 15), nor its index.
        assert abs(await client.pexpiretime(key) - deadline_ms) <= 1
    # Only hashes are stored, never a token.
    dump = repr(await client.hgetall(store.family_key(family.family_id)))
    assert token.split(".")[1] not in dump


@pytest.mark.redis
async def test_redis_deny_entry_expires_with_the_token(
    redis_stores: tuple[RedisRefreshStore, RedisRevocationStore],
) -> None:
    _, store = redis_stores
    until = time.time() + 900.25
    await store.deny("j1", "alice", until=until)
    await store.allow("j2", "alice", until=until)
    for key in (store.entry_key("deny", "j1", "alice"), store.entry_key("allow", "j2", "alice")):
        assert abs(await store.client.pexpiretime(key) - until * 1000) <= 1
    await store.bump_generation("alice")
    assert await store.client.pexpiretime(store.generation_key("alice")) == -1  # never expires


@pytest.mark.parametrize("user_id", ["alice", "a{b}c", "}", "{", "", "x" * 300])
def test_redis_check_keys_share_one_cluster_slot(user_id: str) -> None:
    store = RedisRevocationStore(RedisConnection("redis://127.0.0.1:1/0"))
    if not user_id:
        with pytest.raises(ValueError, match="empty user id"):
            store.generation_key(user_id)
        return
    slots = {
        key_slot(store.entry_key("deny", "jti-1", user_id).encode()),
        key_slot(store.entry_key("allow", "jti-2", user_id).encode()),
        key_slot(store.generation_key(user_id).encode()),
    }
    assert len(slots) == 1


def test_redis_revocation_prefix_with_braces_is_refused() -> None:
    with pytest.raises(ValueError, match="braces"):
        RedisRevocationStore(RedisConnection("redis://127.0.0.1:1/0"), prefix="app{1}:")


async def _commandstats(client: Any) -> dict[str, int]:
    info = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stats["calls"]) for name, stats in info.items()}


@pytest.mark.redis
async def test_redis_check_is_one_mget(private_redis: RedisServer) -> None:
    # A private server, so no other test's commands are counted.
    store = RedisRevocationStore.from_url(private_redis.url)
    admin = redis_client(private_redis.url)
    try:
        await store.deny("j", "alice", until=time.time() + 60)
        await store.bump_generation("alice")
        await store.ping()  # the connection handshake is done before counting
        await admin.config_resetstat()
        assert await store.check("j", "alice") == (True, 1)
        assert await store.check_allowed("j", "alice") == (False, 1)
        stats = await _commandstats(admin)
        stats.pop("config|resetstat", None)
        stats.pop("info", None)
        assert stats == {"mget": 2}
    finally:
        await admin.aclose()
        await store.close()


# ---------------------------------------------------------------- SQLite


async def test_sqlite_rotations_from_two_processes_take_turns(tmp_path: Path) -> None:
    # Two stores on one file stand for two processes.  Every statement is
    # slowed down, so that a read-decide-write that did not hold the write
    # lock from its first read would interleave with the other one's.
    stores = [await SQLiteRefreshStore.open(tmp_path / "t.db") for _ in range(2)]
    try:
        for store in stores:
            await store.db.run(lambda conn: conn.set_trace_callback(lambda _sql: time.sleep(0.002)))
        token, family = new_family()
        await stores[0].create(family)
        results = await asyncio.gather(
            *(rotate(stores[i % 2], token, now=family.created_at) for i in range(20))
        )
        outcomes = Counter(outcome for outcome, _, _ in results)
        assert outcomes == {RotateOutcome.ROTATED: 1, RotateOutcome.GRACE: 19}
    finally:
        for store in stores:
            await store.close()


# ---------------------------------------------------------------- outages


def _refresh_calls() -> list[tuple[str, Callable[[RefreshStore], Awaitable[Any]]]]:
    token, family = new_family()
    return [
        ("create", lambda s: s.create(family)),
        ("rotate", lambda s: rotate(s, token, now=time.time())),
        ("get", lambda s: s.get(family.family_id)),
        ("revoke", lambda s: s.revoke(family.family_id)),
        ("revoke_user", lambda s: s.revoke_user("alice")),
        ("list_user", lambda s: s.list_user("alice")),
        ("ping", lambda s: s.ping()),
    ]


def _revocation_calls() -> list[tuple[str, Callable[[RevocationStore], Awaitable[Any]]]]:
    return [
        ("deny", lambda s: s.deny("j", "alice", until=time.time() + 60)),
        ("is_denied", lambda s: s.is_denied("j", "alice")),
        ("allow", lambda s: s.allow("j", "alice", until=time.time() + 60)),
        ("is_allowed", lambda s: s.is_allowed("j", "alice")),
        ("disallow", lambda s: s.disallow("j", "alice")),
        ("generation", lambda s: s.generation("alice")),
        ("bump_generation", lambda s: s.bump_generation("alice")),
        ("check", lambda s: s.check("j", "alice")),
        ("check_allowed", lambda s: s.check_allowed("j", "alice")),
        ("ping", lambda s: s.ping()),
    ]


async def _assert_unavailable(store: Any, calls: list[Any], name: str) -> None:
    for method, call in calls:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            await asyncio.wait_for(call(store), timeout=10)
        elapsed = time.monotonic() - started
        assert elapsed < 3, f"{method} took {elapsed:.1f}s to fail"
        assert info.value.store == name, method


@pytest.mark.parametrize("name", ["redis", "postgres"])
async def test_unreachable_server_raises_store_unavailable(name: str) -> None:
    port = free_port()
    refresh: RefreshStore
    revocation: RevocationStore
    if name == "redis":
        refresh = RedisRefreshStore.from_url(f"redis://127.0.0.1:{port}/0")
        revocation = RedisRevocationStore.from_url(f"redis://127.0.0.1:{port}/0")
    else:
        dsn = f"postgresql://postgres@127.0.0.1:{port}/test"
        refresh = PostgresRefreshStore.from_dsn(dsn)
        revocation = PostgresRevocationStore.from_dsn(dsn)
    try:
        await _assert_unavailable(refresh, _refresh_calls(), name)
        await _assert_unavailable(revocation, _revocation_calls(), name)
    finally:
        await refresh.close()
        await revocation.close()


@pytest.mark.redis
async def test_redis_outage_mid_life_then_recovery(private_redis: RedisServer) -> None:
    refresh = RedisRefreshStore.from_url(private_redis.url)
    revocation = RedisRevocationStore.from_url(private_redis.url)
    try:
        token, family = new_family()
        await refresh.create(family)
        private_redis.stop()
        with pytest.raises(StoreUnavailable):
            await rotate(refresh, token, now=family.created_at)
        with pytest.raises(StoreUnavailable):
            # Fails closed: a check that cannot run never reads as "not denied".
            await revocation.check(secrets.token_hex(8), "alice")
        private_redis.start()  # a fresh, empty server (no persistence)
        assert (await rotate(refresh, token, now=family.created_at))[0] is RotateOutcome.UNKNOWN
        assert await revocation.check("j", "alice") == (False, 0)
    finally:
        await refresh.close()
        await revocation.close()
