"""A local cache in front of the Redis session store, kept coherent by Redis.

A ``redis.asyncio`` GET costs more event-loop time than a whole plain request,
so reading the session from Redis on every request caps throughput at about
half.  This cache serves repeat reads from process memory and stays exact
through Redis's server-assisted client-side caching in broadcast mode:

* one dedicated connection runs ``CLIENT TRACKING ON REDIRECT <own id> BCAST
  PREFIX <prefix>s:`` and subscribes to ``__redis__:invalidate``; Redis then
  pushes the name of every session key that is written, deleted, expired or
  evicted, by any client on any instance, and the entry is dropped;
* a read that raced with an invalidation is not cached (a generation counter
  taken before the read must be unchanged after it);
* when the invalidation connection is down, or has been silent past a ping,
  the cache is emptied and bypassed until it is back: it never serves an
  entry that may have missed an invalidation.

So a logout or revocation on one instance takes effect on the others as soon
as Redis's push reaches them, well before the next request can.  Entries also
carry the record's own deadlines: an entry is never served at or after its
``expires_at`` (when Redis drops the key, possibly before it says so), and
is refetched at least every ``max_age`` seconds regardless.

**Redis Cluster**: the cache works there too.  The invalidation stream
listens on every node of the slot map and serves only while all of them are
subscribed and the map has not changed; see
:mod:`gatepass.drivers.redis_tracking`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from gatepass.drivers.redis_tracking import InvalidationStream
from gatepass.sessions.record import SessionRecord
from gatepass.sessions.store import UNKNOWN, Unknown
from gatepass.stores.redis import RedisSessionStore, key_of


class CachingRedisSessionStore(RedisSessionStore):
    """:class:`RedisSessionStore` with a coherent in-process read cache."""

    def __init__(
        self,
        *args: Any,
        max_entries: int = 100_000,
        max_age: float = 30.0,
        ping_interval: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._entries: OrderedDict[str, tuple[SessionRecord, float]] = OrderedDict()
        self._max_entries = max_entries
        self._max_age = max_age
        self._session_prefix = f"{self.prefix}s:".encode()
        # Local writes bump this too (see _forget), on top of the stream's.
        self._local_generation = 0
        self._stream = InvalidationStream(
            self.client, [self._session_prefix], self._on_invalidate,
            ping_interval=ping_interval, name="session cache",
        )  # fmt: skip

    @property
    def cache_active(self) -> bool:
        """True while invalidations are flowing and the cache may be used."""
        return self._stream.healthy

    @property
    def _generation(self) -> tuple[int, int]:
        return self._stream.generation, self._local_generation

    def cached(self, key: str) -> SessionRecord | Unknown:
        """The cached session, exact as :meth:`get`; ``UNKNOWN`` on a miss,
        a stale entry or while invalidations are not flowing."""
        stream = self._stream
        if not stream.healthy:
            stream.ensure_started()
            return UNKNOWN
        entry = self._entries.get(key)
        if (
            entry is None
            or time.monotonic() - entry[1] >= self._max_age
            or entry[0].is_expired(time.time())
        ):
            return UNKNOWN
        self._entries.move_to_end(key)
        return entry[0]

    async def get(self, key: str) -> SessionRecord | None:
        self._stream.ensure_started()
        if not self._stream.healthy:
            return await super().get(key)
        now = time.monotonic()
        entry = self._entries.get(key)
        # Redis forgets a session at its expires_at, but announces that only
        # once it notices (on access, or when its expiry cycle samples the
        # key): until then the entry must be judged by its own deadline, on
        # the wall clock, as Redis judges the key.
        if entry is not None and now - entry[1] < self._max_age:
            if not entry[0].is_expired(time.time()):
                self._entries.move_to_end(key)
                return entry[0]
            del self._entries[key]
        generation = self._generation
        record = await super().get(key)
        # Cache only if no invalidation (or outage) happened during the read.
        # Misses are not cached: random ids must not fill the cache.
        if (
            record is not None
            and not record.is_expired(time.time())
            and self._stream.healthy
            and generation == self._generation
        ):
            self._entries[key] = (record, now)
            self._entries.move_to_end(key)
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return record

    # Writes go to Redis, which will push an invalidation.  The local entry is
    # also dropped before the write (so no read still in flight gets cached)
    # and after it (so a read that started meanwhile, and saw the old value,
    # is not served once the write has returned): this instance never waits
    # for its own push.

    async def touch(self, key: str, *, last_seen_at: float, expires_at: float) -> bool:
        self._forget(key)
        try:
            return await super().touch(key, last_seen_at=last_seen_at, expires_at=expires_at)
        finally:
            self._forget(key)

    async def update_data(self, key: str, data: dict[str, object]) -> bool:
        self._forget(key)
        try:
            return await super().update_data(key, data)
        finally:
            self._forget(key)

    async def replace(
        self, old_key: str, new_key: str, *, last_seen_at: float, expires_at: float
    ) -> SessionRecord | None:
        self._forget(old_key)
        try:
            return await super().replace(
                old_key, new_key, last_seen_at=last_seen_at, expires_at=expires_at
            )
        finally:
            self._forget(old_key)

    async def delete(self, key: str) -> SessionRecord | None:
        self._forget(key)
        try:
            return await super().delete(key)
        finally:
            self._forget(key)

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        self._invalidate_all()
        try:
            return await super().delete_user(user_id, keep=keep)
        finally:
            self._invalidate_all()

    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> int:
        self._invalidate_all()
        try:
            return await super().set_roles(user_id, roles)
        finally:
            self._invalidate_all()

    async def close(self) -> None:
        await self._stream.close()
        await super().close()

    def _forget(self, key: str) -> None:
        self._local_generation += 1
        self._entries.pop(key, None)

    def _invalidate_all(self) -> None:
        self._local_generation += 1
        self._entries.clear()

    def _on_invalidate(self, keys: list[bytes] | None) -> None:
        if keys is None:  # a state change, or FLUSHALL / FLUSHDB
            self._entries.clear()
            return
        cut = len(self._session_prefix)
        for name in keys:
            if name.startswith(self._session_prefix):
                # Entries are by key (hex), Redis names sessions by id
                # (base64url).  A name that is no id cannot be a cached
                # session's: every cached record was read under its id.
                key = key_of(name[cut:])
                if key is not None:
                    self._entries.pop(key, None)
