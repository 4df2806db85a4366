"""Redis server-assisted client-side caching: the invalidation stream.

One dedicated connection runs ``CLIENT TRACKING ON REDIRECT <own id> BCAST
PREFIX …`` and subscribes to ``__redis__:invalidate``; Redis then pushes the
name of every key under those prefixes that is written, deleted, expired or
evicted, by any client of any instance.  Local caches register a callback
and drop what the push names.

The contract with those caches:

* ``healthy`` is True only while pushes are known to flow; every change of
  state calls the callback with None ("forget everything"), because
  invalidations may have been missed while the stream was down or not yet up;
* a silent connection is assumed dead after one ping interval without an
  answer (a clean Redis shutdown is noticed at once; a network partition
  within about two ping intervals);
* ``generation`` increases with every push and state change, so a cache can
  refuse to store a value read while an invalidation arrived.

**Redis Cluster**: tracking is per node (each node pushes only about the
keys written on itself, to a connection on itself), and slots move between
nodes on resharding and failover.  So on a cluster client the stream opens
one tracking connection on *every* node the slot map names, replicas
included (a replica pushes for the writes it receives by replication, so a
promoted replica was already being listened to), and:

* it is healthy only once every node's connection is subscribed and the slot
  map read after subscribing is the one read before (nothing moved while
  connecting);
* any connection that drops or goes silent, or a slot map that changes
  (checked every ping interval on a control connection: failover,
  resharding, a node added or gone), makes it unhealthy (flush) and starts
  it over on the new map;
* ``healthy`` is also False while the client knows a node that is not
  listened to (it followed a MOVED to a node added since the last check):
  a read from a node the stream does not hear is never cached nor served.
  The check every ping interval then refreshes the client's view (a dead
  master it had no reason to contact is dropped from it) and starts over
  if the node is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import redis.exceptions as rexc
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection

from gatepass.drivers.redis import RedisClient

logger = logging.getLogger("gatepass.drivers.redis_tracking")

_CHANNEL = b"__redis__:invalidate"

#: Called with the invalidated key names, or None for "everything".
OnInvalidate = Callable[[list[bytes] | None], None]

#: A cluster's slot map as CLUSTER SLOTS gives it: per range of slots, the
#: addresses of its master and replicas.
SlotMap = tuple[tuple[int, int, tuple[tuple[str, int], ...]], ...]


class TopologyChanged(rexc.RedisError):
    """The cluster's slot map is not the one the stream listens to."""


class InvalidationStream:
    def __init__(
        self,
        client: RedisClient,
        prefixes: Sequence[bytes],
        on_invalidate: OnInvalidate,
        *,
        ping_interval: float = 1.0,
        name: str = "cache",
    ) -> None:
        self.client = client
        self.prefixes = list(prefixes)
        self.on_invalidate = on_invalidate
        self.ping_interval = ping_interval
        self.name = name
        self.generation = 0
        self._healthy = False
        self._cluster = isinstance(client, RedisCluster)
        #: On a cluster, the names ("host:port") of the nodes listened to.
        self._listened: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def supported(self) -> bool:
        """True: a single server and a cluster (one connection per node) alike."""
        return True

    @property
    def healthy(self) -> bool:
        """Whether pushes are known to flow for every key the client can read."""
        if not self._healthy:
            return False
        if self._cluster:
            assert isinstance(self.client, RedisCluster)
            return self.client.nodes_manager.nodes_cache.keys() <= self._listened
        return True

    def ensure_started(self) -> None:
        """Start listening (lazily: it needs the running loop)."""
        if self._task is None and not self._closed:
            listen = self._listen_cluster if self._cluster else self._listen
            self._task = asyncio.create_task(listen(), name=f"gatepass-tracking-{self.name}")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _set_healthy(self, healthy: bool) -> None:
        self.generation += 1
        self.on_invalidate(None)
        self._healthy = healthy

    async def _listen(self) -> None:
        backoff = 0.05
        while not self._closed:
            conn: AbstractConnection | None = None
            try:
                conn = await self._subscribe()
                self._set_healthy(True)
                backoff = 0.05
                await self._pump(conn)
            except (TimeoutError, rexc.RedisError, OSError) as exc:
                if self.healthy:
                    logger.warning("%s disabled: invalidation stream lost (%s)",
                                   self.name, type(exc).__name__)  # fmt: skip
            finally:
                self._set_healthy(False)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.disconnect()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _subscribe(self) -> AbstractConnection:
        assert not isinstance(self.client, RedisCluster)
        pool = self.client.connection_pool
        return await self._subscribe_with(pool.connection_class, pool.connection_kwargs)

    async def _subscribe_with(
        self, connection_class: Any, connection_kwargs: dict[str, Any]
    ) -> AbstractConnection:
        # RESP2: pushes arrive as ordinary pub/sub messages on this connection.
        conn = await _connect(connection_class, connection_kwargs)
        try:
            await conn.send_command("CLIENT", "ID")
            client_id = await conn.read_response()
            args: list[bytes | str | int] = [
                "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST",
            ]  # fmt: skip
            for prefix in self.prefixes:
                args += ["PREFIX", prefix]
            await conn.send_command(*args)
            if await conn.read_response() != b"OK":
                raise rexc.ConnectionError("CLIENT TRACKING was refused")
            await conn.send_command("SUBSCRIBE", _CHANNEL)
            await conn.read_response()
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.disconnect()
            raise
        return conn

    async def _pump(self, conn: AbstractConnection) -> None:
        awaiting_pong = False
        while not self._closed:
            message = await conn.read_response(timeout=self.ping_interval)
            if message is None:
                if awaiting_pong:
                    # Silent through a whole ping interval: assume the worst.
                    raise TimeoutError
                await conn.send_command("PING")
                awaiting_pong = True
                continue
            awaiting_pong = False
            if isinstance(message, list) and len(message) == 3 and message[1] == _CHANNEL:
                self.generation += 1
                self.on_invalidate(message[2])

    # ------------------------------------------------------------ Redis Cluster

    async def _listen_cluster(self) -> None:
        assert isinstance(self.client, RedisCluster)
        backoff = 0.05
        while not self._closed:
            control: AbstractConnection | None = None
            conns: list[AbstractConnection] = []
            try:
                control, template = await self._control_connection()
                slots = await _slot_map(control, self.ping_interval)
                for host, port in _addresses(slots):
                    kwargs = {**template.connection_kwargs, "host": host, "port": port}
                    conns.append(await self._subscribe_with(template.connection_class, kwargs))
                # Nothing may have moved while the connections were made.
                if await _slot_map(control, self.ping_interval) != slots:
                    raise TopologyChanged
                self._listened = frozenset(f"{h}:{p}" for h, p in _addresses(slots))
                self._set_healthy(True)
                backoff = 0.05
                await self._pump_cluster(control, conns, slots)
            except (TimeoutError, rexc.RedisError, rexc.RedisClusterException, OSError) as exc:
                if self._healthy:
                    logger.warning("%s disabled: invalidation stream lost (%s)",
                                   self.name, type(exc).__name__)  # fmt: skip
            finally:
                self._set_healthy(False)
                self._listened = frozenset()
                for conn in [*conns, *([control] if control is not None else [])]:
                    with contextlib.suppress(Exception):
                        await conn.disconnect()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _control_connection(self) -> tuple[AbstractConnection, ClusterNode]:
        """A plain connection to a node that answers, for CLUSTER SLOTS, and
        that node (whose settings the other connections copy)."""
        assert isinstance(self.client, RedisCluster)
        if self.client._initialize:
            await self.client.initialize()
        failure: BaseException = TopologyChanged("no cluster node known")
        for node in self.client.get_nodes():
            try:
                return await _connect(node.connection_class, node.connection_kwargs), node
            except (TimeoutError, rexc.RedisError, OSError) as exc:
                failure = exc
        raise failure

    async def _pump_cluster(
        self, control: AbstractConnection, conns: list[AbstractConnection], slots: SlotMap
    ) -> None:
        """Until any node's stream fails or the slot map changes (then raise)."""
        tasks = [asyncio.create_task(self._pump(conn)) for conn in conns]
        tasks.append(asyncio.create_task(self._watch_slots(control, slots)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch_slots(self, control: AbstractConnection, slots: SlotMap) -> None:
        assert isinstance(self.client, RedisCluster)
        while not self._closed:
            await asyncio.sleep(self.ping_interval)
            if await _slot_map(control, self.ping_interval) != slots:
                raise TopologyChanged
            if not self.client.nodes_manager.nodes_cache.keys() <= self._listened:
                # The client names a node not listened to: one it followed a
                # MOVED to (new), or one gone from the slot map that it had
                # no reason to contact since (a dead master).  Refresh its
                # view; a node still there means the map moved on.
                await self.client.nodes_manager.initialize()
                if not self.client.nodes_manager.nodes_cache.keys() <= self._listened:
                    raise TopologyChanged


async def _connect(connection_class: Any, connection_kwargs: dict[str, Any]) -> AbstractConnection:
    conn: AbstractConnection = connection_class(**{**connection_kwargs, "protocol": 2})
    await conn.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    return conn


async def _slot_map(conn: AbstractConnection, wait: float) -> SlotMap:
    """CLUSTER SLOTS, as comparable tuples: per range, the master's address
    then its replicas' in order (node ids and extra fields left out)."""
    await conn.send_command("CLUSTER", "SLOTS")
    reply = await conn.read_response(timeout=wait)
    if not isinstance(reply, list):
        raise TopologyChanged("CLUSTER SLOTS gave no slot map")
    own_host = str(getattr(conn, "host", ""))
    ranges = []
    for entry in reply:
        start, end, *nodes = entry
        addresses = tuple(
            ((node[0].decode() if isinstance(node[0], bytes) else str(node[0])) or own_host,
             int(node[1]))
            for node in nodes
        )  # fmt: skip
        ranges.append((int(start), int(end), (addresses[0], *sorted(addresses[1:]))))
    return tuple(sorted(ranges))


def _addresses(slots: SlotMap) -> list[tuple[str, int]]:
    """Every node of the slot map, masters and replicas, once each."""
    return sorted({address for _start, _end, nodes in slots for address in nodes})
