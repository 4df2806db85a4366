"""A master dies and its replica takes over: the stores answer StoreUnavailable
while the slot has no master (a 503, never a 500 or an anonymous request),
then work again on the promoted replica with the data written before."""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatepass.errors import StoreUnavailable
from gatepass.stores.redis import RedisSessionStore
from gatepass.throttle.redis import RedisThrottleStore
from gatepass.tokens.backends.redis import RedisRevocationStore
from tests.cluster.server import RedisCluster, cli, require_redis_binaries
from tests.stores.conftest import make_record

pytestmark = [pytest.mark.redis, pytest.mark.slow]


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
    deadline = time.monotonic() + timeout
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
    deadline = time.monotonic() + timeout
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
