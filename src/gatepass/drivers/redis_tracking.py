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

**Redis Cluster**: tracking is per node (each master pushes only about the
keys it serves, to a connection on itself), and slots move between nodes on
resharding and failover.  A correct stream would need one tracking
connection per master, all healthy, re-subscribed whenever the slot map
changes.  That is not done: on a cluster client the stream never starts and
is never ``healthy``, so the caches built on it are bypassed and every read
goes to Redis.  Correct, at the cost of the per-request round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import redis.exceptions as rexc
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection

from gatepass.drivers.redis import RedisClient

logger = logging.getLogger("gatepass.drivers.redis_tracking")

_CHANNEL = b"__redis__:invalidate"

#: Called with the invalidated key names, or None for "everything".
OnInvalidate = Callable[[list[bytes] | None], None]


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
        self.healthy = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def supported(self) -> bool:
        """False for a cluster client: the stream then never starts (docstring)."""
        return not isinstance(self.client, RedisCluster)

    def ensure_started(self) -> None:
        """Start listening (lazily: it needs the running loop)."""
        if self._task is None and not self._closed and self.supported:
            self._task = asyncio.create_task(self._listen(), name=f"gatepass-tracking-{self.name}")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _set_healthy(self, healthy: bool) -> None:
        self.generation += 1
        self.on_invalidate(None)
        self.healthy = healthy

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
        # RESP2: pushes arrive as ordinary pub/sub messages on this connection.
        kwargs = {**pool.connection_kwargs, "protocol": 2}
        conn: AbstractConnection = pool.connection_class(**kwargs)
        await conn.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        await conn.send_command("CLIENT", "ID")
        client_id = await conn.read_response()
        args: list[bytes | str | int] = ["CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST"]
        for prefix in self.prefixes:
            args += ["PREFIX", prefix]
        await conn.send_command(*args)
        if await conn.read_response() != b"OK":
            raise rexc.ConnectionError("CLIENT TRACKING was refused")
        await conn.send_command("SUBSCRIBE", _CHANNEL)
        await conn.read_response()
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
