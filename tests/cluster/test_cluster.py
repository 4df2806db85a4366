"""The Redis stores against a real Redis Cluster (three masters on loopback).

The store contract suites run on the cluster too (their ``redis-cluster``
backends); these tests cover what only a cluster has: the URL form, where
keys land (``CLUSTER KEYSLOT`` and the node that owns the slot), the local
local caches kept exact by per-node tracking, and outages.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from gatepass.drivers.redis import RedisConnection, redis_client
from gatepass.errors import ConfigurationError, StoreUnavailable
from gatepass.sessions.record import SessionRecord
from gatepass.stores.redis import RedisSessionStore
from gatepass.stores.redis_cache import CachingRedisSessionStore
from gatepass.stores.urls import open_session_store
from gatepass.throttle.redis import RedisThrottleStore
from gatepass.throttle.urls import open_throttle_store
from gatepass.tokens.backends.redis import RedisRefreshStore, RedisRevocationStore
from gatepass.tokens.backends.redis_cache import CachingRedisRevocationStore
from gatepass.tokens.backends.urls import open_refresh_store, open_revocation_store
from tests.cluster.server import RedisCluster as ClusterServers
from tests.cluster.server import cli, free_cluster_port
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
    # Split by hand, not by urlsplit (which refuses several hosts with an IPv6
    # one on some 3.11 releases): the same rules still hold.
    for bad in ("/1", "/0?x=1", "?ssl_cert_reqs=none"):
        with pytest.raises(ValueError):
            redis_client(f"redis+cluster://[::1]:7000,[::1]:7001{bad}")
    with pytest.raises(ValueError):
        redis_client("redis+cluster://[::1]:port/")


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


# ---------------------------------------------------------------- local caches


async def cache_up(store: CachingRedisSessionStore | CachingRedisRevocationStore) -> None:
    """Until the store's per-node invalidation streams are all up."""
    deadline = time.monotonic() + 10
    while not store.cache_active:
        assert time.monotonic() < deadline, "the invalidation streams never came up"
        if isinstance(store, CachingRedisSessionStore):
            await store.get("0" * 64)
        else:
            await store.check("nothing-here", "nobody")
        await asyncio.sleep(0.02)


async def records_on_every_node(
    store: RedisSessionStore, cluster: RedisCluster, user: str
) -> list[SessionRecord]:
    """Sessions whose keys land on each of the cluster's masters."""
    await cluster.initialize()  # the slot map, on first use
    masters = {node.name for node in cluster.get_primaries()}
    found: dict[str, SessionRecord] = {}
    while set(found) != masters:
        record = make_record(user)
        node = cluster.get_node_from_key(store.session_key(record.key))
        assert node is not None
        if node.name not in found:
            await store.create(record)
            found[node.name] = record
    return list(found.values())


async def test_session_cache_on_a_cluster_is_exact(
    redis_cluster_url: str, prefix: str, cluster: RedisCluster
) -> None:
    """Per-node tracking: a cached session costs no round trip, and a logout
    through another client, on whichever node, is seen at the next read."""
    one = CachingRedisSessionStore(RedisConnection(redis_cluster_url), prefix=prefix)
    two = RedisSessionStore(RedisConnection(redis_cluster_url), prefix=prefix)
    try:
        records = await records_on_every_node(two, cluster, "hank")
        await cache_up(one)
        for record in records:
            assert await one.get(record.key) == record
        before = one.conn.stats.round_trips
        for record in records:
            assert await one.get(record.key) == record
        assert one.conn.stats.round_trips == before  # all cached
        for record in records:
            await two.delete(record.key)  # another instance logs the user out
        await asyncio.sleep(0.05)  # the pushes reach this instance's loop
        for record in records:
            assert await one.get(record.key) is None
    finally:
        await one.close()
        await two.close()


async def test_revocation_cache_on_a_cluster_is_exact(
    redis_cluster_url: str, prefix: str, cluster: RedisCluster
) -> None:
    one = CachingRedisRevocationStore(RedisConnection(redis_cluster_url), prefix=prefix)
    two = RedisRevocationStore(RedisConnection(redis_cluster_url), prefix=prefix)
    try:
        users = [f"ivy{i}" for i in range(6)]  # their slots spread over the masters
        jtis = {user: secrets.token_hex(8) for user in users}
        await cache_up(one)
        for user in users:
            assert await one.check(jtis[user], user) == (False, 0)
        before = one.conn.stats.round_trips
        for user in users:
            assert await one.check(jtis[user], user) == (False, 0)
        assert one.conn.stats.round_trips == before  # all cached
        for user in users:
            await two.deny(jtis[user], user, until=time.time() + 60)
            await two.bump_generation(user)
        await asyncio.sleep(0.05)
        for user in users:
            assert await one.check(jtis[user], user) == (True, 1)
    finally:
        await one.close()
        await two.close()


async def test_a_killed_node_stream_flushes_bypasses_and_recovers(
    redis_cluster: ClusterServers, redis_cluster_url: str, prefix: str, cluster: RedisCluster
) -> None:
    """CLIENT KILL of the invalidation connection on one node: the cache is
    emptied and bypassed (a logout meanwhile is seen), then comes back."""
    one = CachingRedisSessionStore(RedisConnection(redis_cluster_url), prefix=prefix)
    two = RedisSessionStore(RedisConnection(redis_cluster_url), prefix=prefix)
    try:
        records = await records_on_every_node(two, cluster, "jade")
        await cache_up(one)
        for record in records:
            assert await one.get(record.key) == record
        victim = records[0]
        node = cluster.get_node_from_key(two.session_key(victim.key))
        assert node is not None
        killed = cli(int(node.port), "CLIENT", "KILL", "TYPE", "pubsub")
        assert int(killed) >= 1
        deadline = time.monotonic() + 5
        while one.cache_active:
            assert time.monotonic() < deadline, "the lost stream was never noticed"
            await asyncio.sleep(0.005)
        assert not one._entries  # flushed
        await two.delete(victim.key)
        assert await one.get(victim.key) is None  # bypassed or refilled: never stale
        await cache_up(one)
        rest = records[1:]
        for record in rest:
            assert await one.get(record.key) == record
        before = one.conn.stats.round_trips
        for record in rest:
            assert await one.get(record.key) == record
        assert one.conn.stats.round_trips == before  # cached again
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
