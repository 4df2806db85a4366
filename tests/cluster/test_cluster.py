"""The Redis stores against a real Redis Cluster (three masters on loopback).

The store contract suites run on the cluster too (their ``redis-cluster``
backends); these tests cover what only a cluster has: the URL form, where
keys land (``CLUSTER KEYSLOT`` and the node that owns the slot), the local
caches standing aside, and outages.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from gatepass.drivers.redis import RedisConnection, redis_client
from gatepass.errors import ConfigurationError, StoreUnavailable
from gatepass.stores.redis import RedisSessionStore
from gatepass.stores.redis_cache import CachingRedisSessionStore
from gatepass.stores.urls import open_session_store
from gatepass.throttle.redis import RedisThrottleStore
from gatepass.throttle.urls import open_throttle_store
from gatepass.tokens.backends.redis import RedisRefreshStore, RedisRevocationStore
from gatepass.tokens.backends.redis_cache import CachingRedisRevocationStore
from gatepass.tokens.backends.urls import open_refresh_store, open_revocation_store
from tests.cluster.server import free_cluster_port
from tests.stores.conftest import make_record
from tests.tokens_store.conftest import new_family

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def prefix() -> str:
    return f"gpcl:{secrets.token_hex(6)}:"


@pytest.fixture
async def cluster_conn(redis_cluster_url: str, prefix: str) -> AsyncIterator[RedisConnection]:
    """A connection the tests' stores borrow; removes this test's keys afterwards."""
    conn = RedisConnection(redis_cluster_url)
    yield conn
    keys = [k async for k in conn.client.scan_iter(match=f"{prefix}*")]
    if keys:
        await conn.client.delete(*keys)
    await conn.release()


@pytest.fixture
def cluster(cluster_conn: RedisConnection) -> RedisCluster:
    """The raw cluster client, for inspection."""
    assert isinstance(cluster_conn.client, RedisCluster)
    return cluster_conn.client


async def slot_of(client: RedisCluster, key: str) -> int:
    slot: int = await client.cluster_keyslot(key)
    return slot


async def owner_holds(client: RedisCluster, key: str) -> bool:
    """Whether the master that owns the key's slot answers for it directly
    (a plain connection to that node: no MOVED, the key is really there)."""
    node = client.get_node_from_key(key)
    assert node is not None
    direct = aioredis.Redis(host=node.host, port=node.port)
    try:
        return bool(await direct.exists(key))
    finally:
        await direct.aclose()


# ---------------------------------------------------------------- URLs


async def test_every_opener_takes_a_cluster_url(redis_cluster_url: str, prefix: str) -> None:
    url = f"{redis_cluster_url}?prefix={prefix}"
    stores = [
        await open_session_store(url),
        await open_throttle_store(url),
        await open_refresh_store(url),
        await open_revocation_store(url),
    ]
    try:
        for store in stores:
            assert isinstance(store.client, RedisCluster)  # type: ignore[attr-defined]
            assert store.prefix == prefix  # type: ignore[attr-defined]
            await store.ping()
        session = stores[0]
        assert isinstance(session, CachingRedisSessionStore)
        record = make_record("carol")
        await session.create(record)
        assert await session.get(record.key) == record
        assert not session.cache_active  # bypassed on a cluster
    finally:
        client = stores[0].client  # type: ignore[attr-defined]
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        for store in stores:
            await store.close()


async def test_any_one_seed_node_finds_the_whole_cluster(
    redis_cluster_url: str, prefix: str
) -> None:
    first_seed = redis_cluster_url.split(",")[0] + "/"
    conn = RedisConnection(first_seed)
    client = conn.client
    assert isinstance(client, RedisCluster)
    store = RedisSessionStore(conn, prefix=prefix)
    try:
        records = [make_record("dave") for _ in range(12)]
        for record in records:
            await store.create(record)
        assert len(await store.list_user("dave")) == 12
        assert len(client.get_primaries()) == 3
        assert await store.delete_user("dave") == 12
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://127.0.0.1:7000/1",  # only database 0
        "redis+cluster://127.0.0.1:7000/?db=2",
        "redis+cluster://127.0.0.1:notaport/",
        "redis+cluster://127.0.0.1:99999/",
        "redis+cluster:///",
    ],
)
async def test_bad_cluster_urls_are_configuration_errors(url: str) -> None:
    for opener in (open_session_store, open_throttle_store, open_refresh_store):
        with pytest.raises(ConfigurationError):
            await opener(url)


def test_cluster_url_credentials_and_tls() -> None:
    client = redis_client("rediss+cluster://user:s%40cret@10.0.0.1:7000,[::1]:7001/")
    assert isinstance(client, RedisCluster)
    kwargs = client.connection_kwargs
    assert kwargs["username"] == "user" and kwargs["password"] == "s@cret"
    assert "ssl" in str(kwargs.get("connection_class", "")).lower()
    seeds = sorted((n.host, n.port) for n in client.nodes_manager.startup_nodes.values())
    assert seeds == [("10.0.0.1", 7000), ("::1", 7001)]


# ---------------------------------------------------------------- key layout


async def test_session_keys_land_where_the_docstring_says(
    cluster: RedisCluster, cluster_conn: RedisConnection, prefix: str
) -> None:
    # "No hash tags": each session key and the index hash on their whole
    # name, so one user's sessions spread over the masters (the pipelines in
    # list_user / delete_user / set_roles really are split per node).
    store = RedisSessionStore(cluster_conn, prefix=prefix)
    records = [make_record("erin") for _ in range(24)]
    for record in records:
        await store.create(record)
    keys = [store.session_key(r.key) for r in records] + [store.index_key("erin")]
    assert not any("{" in k or "}" in k for k in keys)
    nodes = {cluster.get_node_from_key(k).name for k in keys}  # type: ignore[union-attr]
    assert len(nodes) == 3
    for key in keys:
        assert await owner_holds(cluster, key)
    assert await store.set_roles("erin", ("admin",)) == 24
    assert all(r.roles == ("admin",) for r in await store.list_user("erin"))
    assert await store.delete_user("erin") == 24


async def test_revocation_keys_of_a_user_share_one_slot(
    cluster: RedisCluster, cluster_conn: RedisConnection, prefix: str
) -> None:
    store = RedisRevocationStore(cluster_conn, prefix=prefix)
    until = time.time() + 600
    slots_by_user: dict[str, int] = {}
    for user in ("frank", "a{b}c", "}{", "%7B", "ユーザー", *(f"u{i}" for i in range(20))):
        jtis = [secrets.token_hex(8) for _ in range(5)]
        for jti in jtis:
            await store.deny(jti, user, until=until)
            await store.allow(jti, user, until=until)
        await store.bump_generation(user)
        keys = [store.generation_key(user)]
        keys += [store.entry_key(kind, j, user) for j in jtis for kind in ("deny", "allow")]
        slots = {await slot_of(cluster, k) for k in keys}
        assert len(slots) == 1, f"{user!r}: keys of one user in slots {slots}"
        for key in keys:
            assert await owner_holds(cluster, key)
        # check is one MGET: it would be refused across slots.
        assert await store.check(jtis[0], user) == (True, 1)
        assert await store.check_allowed(jtis[1], user) == (True, 1)
        slots_by_user[user] = slots.pop()
    # Users spread over the cluster rather than all sharing a slot.
    assert len(set(slots_by_user.values())) > 10


async def test_refresh_family_and_index_keys(
    cluster: RedisCluster, cluster_conn: RedisConnection, prefix: str
) -> None:
    store = RedisRefreshStore(cluster_conn, prefix=prefix)
    families = [new_family("gina")[1] for _ in range(12)]
    for family in families:
        await store.create(family)
    keys = [store.family_key(f.family_id) for f in families] + [store.index_key("gina")]
    assert len({cluster.get_node_from_key(k).name for k in keys}) > 1  # type: ignore[union-attr]
    for key in keys:
        assert await owner_holds(cluster, key)
    assert await store.revoke_user("gina") == 12
    assert all(f.revoked for f in await store.list_user("gina"))


async def test_throttle_keys_hash_alone(
    cluster: RedisCluster, cluster_conn: RedisConnection, prefix: str
) -> None:
    store = RedisThrottleStore(cluster_conn, prefix=prefix)
    now = time.time()
    names = [secrets.token_hex(8) for _ in range(12)]
    for name in names:
        await store.hit(name, window=60, now=now)
        await store.set_deadline(name, until=now + 30, now=now)
        assert await owner_holds(cluster, store.redis_key(name))
    assert await store.deadlines(names, now=now) == [pytest.approx(now + 30, abs=0.002)] * 12


# ---------------------------------------------------------------- local caches stand aside


async def test_session_cache_is_bypassed_and_never_stale(
    redis_cluster_url: str, prefix: str, cluster: RedisCluster
) -> None:
    one = CachingRedisSessionStore(RedisConnection(redis_cluster_url), prefix=prefix)
    two = RedisSessionStore(RedisConnection(redis_cluster_url), prefix=prefix)
    try:
        record = make_record("hank")
        await two.create(record)
        for _ in range(3):
            assert await one.get(record.key) == record
        assert not one.cache_active and not one._entries
        await two.delete(record.key)  # another instance logs the user out
        assert await one.get(record.key) is None
    finally:
        await one.close()
        await two.close()


async def test_revocation_cache_is_bypassed_and_never_stale(
    redis_cluster_url: str, prefix: str, cluster: RedisCluster
) -> None:
    one = CachingRedisRevocationStore(RedisConnection(redis_cluster_url), prefix=prefix)
    two = RedisRevocationStore(RedisConnection(redis_cluster_url), prefix=prefix)
    try:
        jti = secrets.token_hex(8)
        for _ in range(3):
            assert await one.check(jti, "ivy") == (False, 0)
        assert not one.cache_active and not one._answers
        await two.deny(jti, "ivy", until=time.time() + 60)
        await two.bump_generation("ivy")
        assert await one.check(jti, "ivy") == (True, 1)
    finally:
        await one.close()
        await two.close()


# ---------------------------------------------------------------- outages


async def test_unreachable_cluster_is_store_unavailable() -> None:
    taken: set[int] = set()
    ports = [free_cluster_port(taken) for _ in range(2)]
    url = f"redis+cluster://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/"
    stores = [
        RedisSessionStore.from_url(url),
        RedisThrottleStore.from_url(url),
        RedisRefreshStore.from_url(url),
        RedisRevocationStore.from_url(url),
    ]
    try:
        for store in stores:
            with pytest.raises(StoreUnavailable):
                await store.ping()
        with pytest.raises(StoreUnavailable):
            await stores[0].get("0" * 64)  # type: ignore[attr-defined]
        with pytest.raises(StoreUnavailable):
            await stores[3].check("j", "u")  # type: ignore[attr-defined]
    finally:
        for store in stores:
            await store.close()
