"""A master dies and its replica takes over: the stores answer StoreUnavailable
while the slot has no master (a 503, never a 500 or an anonymous request),
then work again on the promoted replica with the data written before; the
local session cache stays exact through it."""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from redis.crc import key_slot

from gatepass.drivers.redis import RedisConnection
from gatepass.errors import StoreUnavailable
from gatepass.sessions.record import SessionRecord
from gatepass.stores.redis import RedisSessionStore
from gatepass.stores.redis_cache import CachingRedisSessionStore
from gatepass.throttle.redis import RedisThrottleStore
from gatepass.tokens.backends.redis import RedisRevocationStore
from tests.cluster.server import RedisCluster, cli, require_redis_binaries
from tests.stores.conftest import make_record

pytestmark = [pytest.mark.redis, pytest.mark.slow]

T = TypeVar("T")


@pytest.fixture
def replicated_cluster() -> Iterator[RedisCluster]:
    """Three masters, each with one replica: a cluster this test may break."""
    require_redis_binaries()
    with tempfile.TemporaryDirectory(prefix="gatepass-failover-") as directory:
        cluster = RedisCluster(Path(directory), masters=3, replicas=1)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


def _master_port_of(cluster: RedisCluster, slot: int, seen_by: int | None = None) -> int:
    """The master of ``slot`` in the view of node ``seen_by`` (default: the first alive)."""
    alive = seen_by or next(port for port in cluster.ports if port in cluster.processes)
    for line in cli(alive, "CLUSTER", "NODES").splitlines():
        fields = line.split()
        if "master" not in fields[2] or "fail" in fields[2]:
            continue
        for part in fields[8:]:
            lo, _, hi = part.partition("-")
            if lo.isdigit() and int(lo) <= slot <= int(hi or lo):
                return int(fields[1].split("@")[0].rpartition(":")[2])
    raise AssertionError(f"no master serves slot {slot}")


def _wait_promoted(cluster: RedisCluster, slot: int, victim: int, timeout: float = 30) -> int:
    """Every live node names the same new master for ``slot``.

    The client can be served by the promoted replica before the promotion
    has reached every other node's view (gossip, slower under load): asking
    one node right away may still find no master, or the old one.
    """
    deadline = time.monotonic() + 30
    while True:
        views: dict[int, int | str] = {}
        for port in [p for p in cluster.ports if p in cluster.processes]:
            try:
                views[port] = _master_port_of(cluster, slot, seen_by=port)
            except AssertionError as no_master:
                views[port] = str(no_master)
        masters = set(views.values())
        if len(masters) == 1 and victim not in masters:
            [master] = masters
            assert isinstance(master, int), views
            return master
        assert time.monotonic() < deadline, f"the nodes never agreed on a new master: {views}"
        time.sleep(0.05)


def _replication(port: int) -> dict[str, str]:
    return dict(
        line.split(":", 1) for line in cli(port, "INFO", "replication").splitlines() if ":" in line
    )


def _wait_replicated(cluster: RedisCluster, timeout: float = 30) -> None:
    """Every master's replicas have acknowledged all that was written before the call.

    The goal is each master's offset taken once, now: the master's offset
    keeps moving on its own (it pings its replicas) and a replica acknowledges
    once a second, so waiting for the two to be *equal* chased a moving
    target, one master after the other (seconds, and past any deadline under
    load).
    """
    goals = {
        port: int(info["master_repl_offset"])
        for port in cluster.ports
        if (info := _replication(port)).get("role") == "master"
    }
    deadline = time.monotonic() + 30
    for port, goal in goals.items():
        while True:
            info = _replication(port)
            replicas = [
                dict(pair.split("=", 1) for pair in value.split(","))
                for key, value in info.items()
                if key.startswith("slave") and key[5:].isdigit()
            ]
            # Each master has one replica, and it must have all of the stream.
            if replicas and all(
                r.get("state") == "online" and int(r["offset"]) >= goal for r in replicas
            ):
                break
            assert time.monotonic() < deadline, f"replicas of {port} never caught up: {info}"
            time.sleep(0.05)


async def test_master_failover(replicated_cluster: RedisCluster) -> None:
    url = replicated_cluster.url
    prefix = f"gpfo:{secrets.token_hex(4)}:"
    sessions = RedisSessionStore.from_url(url, prefix=prefix)
    revocations = RedisRevocationStore.from_url(url, prefix=prefix)
    throttle = RedisThrottleStore.from_url(url, prefix=prefix)
    try:
        record = make_record("olga")
        await sessions.create(record)
        jti = secrets.token_hex(8)
        await revocations.deny(jti, "olga", until=time.time() + 600)
        await revocations.bump_generation("olga")
        # Replication is asynchronous: let the replicas catch up first.
        _wait_replicated(replicated_cluster)

        slot = int(cli(replicated_cluster.ports[0], "CLUSTER", "KEYSLOT",
                       revocations.generation_key("olga")))  # fmt: skip
        victim = _master_port_of(replicated_cluster, slot)
        replicated_cluster.stop_node(victim)

        unavailable = 0
        recovered = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                answer = await revocations.check(jti, "olga")
                got = await sessions.get(record.key)
                await throttle.hit("olga", window=60, now=time.time())
            except StoreUnavailable:
                unavailable += 1  # the only failure allowed: a 503
                await asyncio.sleep(0.1)
                continue
            if unavailable:
                # Served by the promoted replica, with the data from before.
                assert answer == (True, 1)
                assert got == record
                recovered = True
                break
            await asyncio.sleep(0.05)
        assert unavailable, "the failover was never noticed"
        assert recovered, "the stores did not recover after the failover"
        assert _wait_promoted(replicated_cluster, slot, victim) != victim
        assert await revocations.bump_generation("olga") == 2
        assert len(await sessions.list_user("olga")) == 1
    finally:
        for store in (sessions, revocations, throttle):
            await store.close()


def _replica_of(cluster: RedisCluster, master: int) -> int:
    """The replica of ``master``, as the replicas themselves say (a master's
    CLUSTER NODES can lag behind)."""
    return next(
        port
        for port in cluster.ports
        if port in cluster.processes
        and (info := _replication(port)).get("role") == "slave"
        and int(info["master_port"]) == master
    )


async def _until_available(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``'s answer, once the cluster serves again (503s meanwhile)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return await call()
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the cluster never served again"
            await asyncio.sleep(0.1)


async def _cached(store: CachingRedisSessionStore, record: SessionRecord) -> None:
    """Read ``record`` until a read costs no round trip (then it is cached)."""
    deadline = time.monotonic() + 30
    while True:
        before = store.conn.stats.round_trips
        assert await _until_available(lambda: store.get(record.key)) == record
        if store.cache_active and store.conn.stats.round_trips == before:
            return
        assert time.monotonic() < deadline, "the session was never cached"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("how", ["manual", "crash"])
async def test_session_cache_stays_exact_through_a_failover(
    replicated_cluster: RedisCluster, how: str
) -> None:
    """The master of a cached session's slot hands over to its replica (CLUSTER
    FAILOVER: the old master lives on as a replica) or dies: a logout through
    another client right after is seen by the cache, which then serves again
    on the new slot map."""
    url = replicated_cluster.url
    prefix = f"gpfc:{secrets.token_hex(4)}:"
    one = CachingRedisSessionStore(RedisConnection(url), prefix=prefix)
    two = RedisSessionStore(RedisConnection(url), prefix=prefix)
    try:
        record, spare = make_record("pia"), make_record("pia")
        await two.create(record)
        await two.create(spare)
        _wait_replicated(replicated_cluster)
        await _cached(one, record)

        slot = int(cli(replicated_cluster.ports[0], "CLUSTER", "KEYSLOT",
                       two.session_key(record.key)))  # fmt: skip
        victim = _master_port_of(replicated_cluster, slot)
        if how == "manual":
            replica = _replica_of(replicated_cluster, victim)
            cli(replica, "CLUSTER", "FAILOVER")
            deadline = time.monotonic() + 30
            while _replication(replica).get("role") != "master":
                assert time.monotonic() < deadline, "the replica was never promoted"
                await asyncio.sleep(0.05)
        else:
            replicated_cluster.stop_node(victim)

        # Logged out through another client as soon as the cluster lets it.
        assert await _until_available(lambda: two.delete(record.key)) == record
        await asyncio.sleep(0.05)  # the push reaches this instance's loop
        assert await _until_available(lambda: one.get(record.key)) is None
        # And the cache serves again, on the new slot map.
        await _cached(one, spare)
    finally:
        await one.close()
        await two.close()


async def test_session_cache_recovers_when_the_dead_master_is_never_read(
    replicated_cluster: RedisCluster,
) -> None:
    """A master dies while this client has no reason to talk to it (its
    sessions live on other masters): the client still names the dead node,
    and the cache must not stay bypassed for ever on that account."""
    url = replicated_cluster.url
    prefix = f"gpfd:{secrets.token_hex(4)}:"
    one = CachingRedisSessionStore(RedisConnection(url), prefix=prefix)
    try:
        record = make_record("quin")
        await one.create(record)
        await _cached(one, record)
        slot = int(cli(replicated_cluster.ports[0], "CLUSTER", "KEYSLOT",
                       one.session_key(record.key)))  # fmt: skip
        owner = _master_port_of(replicated_cluster, slot)
        victim = next(
            port
            for port in replicated_cluster.ports
            if port != owner and _replication(port).get("role") == "master"
        )
        replica = _replica_of(replicated_cluster, victim)
        replicated_cluster.stop_node(victim)
        deadline = time.monotonic() + 30
        while _replication(replica).get("role") != "master" or "cluster_state:ok" not in cli(
            replica, "CLUSTER", "INFO"
        ):
            assert time.monotonic() < deadline, "the replica was never promoted"
            await asyncio.sleep(0.1)
        # Only the untouched master is read from here on.
        await _cached(one, record)
    finally:
        await one.close()


@pytest.fixture
def private_cluster() -> Iterator[RedisCluster]:
    """Three masters of this test's own, whose slots it may move."""
    require_redis_binaries()
    with tempfile.TemporaryDirectory(prefix="gatepass-reshard-") as directory:
        cluster = RedisCluster(Path(directory), masters=3)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


def _node_id(port: int) -> str:
    return cli(port, "CLUSTER", "MYID").strip()


def _move_slot(cluster: RedisCluster, slot: int, source: int, target: int) -> None:
    """Move one slot and its keys, as ``redis-cli --cluster reshard`` does."""
    source_id, target_id = _node_id(source), _node_id(target)
    cli(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
    cli(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
    keys = cli(source, "CLUSTER", "GETKEYSINSLOT", str(slot), "1000").split()
    if keys:
        cli(source, "MIGRATE", "127.0.0.1", str(target), "", "0", "5000", "KEYS", *keys)
    for port in cluster.ports:
        cli(port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)


async def test_session_cache_stays_exact_through_resharding(
    private_cluster: RedisCluster,
) -> None:
    """A cached session's slot moves to another master: the move itself, and
    a logout through another client on the new owner right after, are seen;
    the cache then serves again on the new slot map."""
    url = private_cluster.url
    prefix = f"gprs:{secrets.token_hex(4)}:"
    one = CachingRedisSessionStore(RedisConnection(url), prefix=prefix)
    two = RedisSessionStore(RedisConnection(url), prefix=prefix)
    try:
        record = make_record("rhea")
        await two.create(record)
        await _cached(one, record)
        key = two.session_key(record.key)
        slot = int(cli(private_cluster.ports[0], "CLUSTER", "KEYSLOT", key))
        source = _master_port_of(private_cluster, slot)
        target = next(port for port in private_cluster.ports if port != source)
        _move_slot(private_cluster, slot, source, target)
        assert _master_port_of(private_cluster, slot, seen_by=target) == target

        assert await two.delete(record.key) == record  # on the new owner, via MOVED
        await asyncio.sleep(0.05)  # the push reaches this instance's loop
        assert await one.get(record.key) is None
        # The cache serves again, now reading from the new owner.
        fresh = make_record("rhea")
        while key_slot(two.session_key(fresh.key).encode()) != slot:
            fresh = make_record("rhea")  # a session in the slot that moved
        await two.create(fresh)
        await _cached(one, fresh)
    finally:
        await one.close()
        await two.close()
