"""A local cache of revocation checks, kept exact by Redis's invalidation pushes.

Every bearer request asks "is this jti revoked, and what is the user's
generation?".  Over ``redis.asyncio`` that question costs more event-loop
time than the whole request; answered from process memory it costs a dict
lookup.  A good answer (never a refusal: its entry expires by a deadline
Redis announces only when its expiry sampling gets to it) is cached per
(kind, jti, user, family) together with the
names of the Redis keys it was read from (the jti's entry, the generation
and the family's marker); when Redis pushes that any of them changed (a
revoke on any instance, a generation bump, an expiry), the answer is
dropped.  A user's generation read alone (:meth:`generation`, which every
refresh asks after its rotation) is cached the same way, by the name of its
key, so a refresh costs one round trip: the rotation.  While the
invalidation stream is down the cache is bypassed, exactly like the session
cache (:mod:`gatepass.stores.redis_cache`).

**Redis Cluster**: the cache works there too (one invalidation connection
per node, see :mod:`gatepass.drivers.redis_tracking`); while it is not
serving, every check is one MGET on the user's slot.
"""

from __future__ import annotations

from typing import Any

from gatepass.drivers.changes import UNKNOWN, Unknown
from gatepass.drivers.redis_tracking import InvalidationStream
from gatepass.tokens.backends.redis import RedisRevocationStore
from gatepass.tokens.revocation import good_answer

_Key = tuple[str, str, str, str | None]  # (kind, jti, user_id, family_id)


class CachingRedisRevocationStore(RedisRevocationStore):
    def __init__(self, *args: Any, max_entries: int = 100_000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answers: dict[_Key, tuple[bool, bool, int]] = {}
        # Redis key name -> the cached answers read from it.
        self._readers: dict[bytes, set[_Key]] = {}
        # Generation key name -> the generation read from it.
        self._generations: dict[bytes, int] = {}
        self._max_entries = max_entries
        self._local_generation = 0
        prefixes = [f"{self.prefix}{kind}:".encode() for kind in ("deny", "allow", "gen")]
        self._stream = InvalidationStream(
            self.client, prefixes, self._on_invalidate, name="revocation cache"
        )

    @property
    def cache_active(self) -> bool:
        return self._stream.healthy

    def _cached_check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int] | Unknown:
        if not self._stream.healthy:
            self._stream.ensure_started()
            return UNKNOWN
        hit = self._answers.get((kind, jti, user_id, family_id))
        return UNKNOWN if hit is None else hit

    async def _check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int]:
        self._stream.ensure_started()
        key = (kind, jti, user_id, family_id)
        if self._stream.healthy:
            hit = self._answers.get(key)
            if hit is not None:
                return hit
        before = (self._stream.generation, self._local_generation)
        # The guarded read: connection errors become StoreUnavailable.
        answer = await super()._check(kind, jti, user_id, family_id)
        if (
            good_answer(kind, answer)
            and self._stream.healthy
            and before == (self._stream.generation, self._local_generation)
        ):
            if len(self._answers) >= self._max_entries:
                self._answers.clear()
                self._readers.clear()
            self._answers[key] = answer
            for name in self.check_keys(kind, jti, user_id, family_id):
                self._readers.setdefault(name.encode(), set()).add(key)
        return answer

    async def generation(self, user_id: str) -> int:
        self._stream.ensure_started()
        name = self.generation_key(user_id).encode()
        if self._stream.healthy:
            hit = self._generations.get(name)
            if hit is not None:
                return hit
        before = (self._stream.generation, self._local_generation)
        value = await super().generation(user_id)
        # The key never expires and only grows by INCR, each of which Redis
        # announces: any value read while no invalidation came is current.
        if self._stream.healthy and before == (self._stream.generation, self._local_generation):
            if len(self._generations) >= self._max_entries:
                self._generations.clear()
            self._generations[name] = value
        return value

    # Local writes forget at once (before and after), so this instance never
    # depends on its own push to see its own revocation.

    async def _put(self, kind: str, jti: str, user_id: str, until: float) -> None:
        self._forget_all()
        try:
            await super()._put(kind, jti, user_id, until)
        finally:
            self._forget_all()

    async def disallow(self, jti: str, user_id: str) -> None:
        self._forget_all()
        try:
            await super().disallow(jti, user_id)
        finally:
            self._forget_all()

    async def bump_generation(self, user_id: str) -> int:
        self._forget_all()
        try:
            return await super().bump_generation(user_id)
        finally:
            self._forget_all()

    async def close(self) -> None:
        await self._stream.close()
        await super().close()

    def _forget_all(self) -> None:
        # Writes are rare (logout, revoke): dropping everything keeps this simple.
        self._local_generation += 1
        self._answers.clear()
        self._readers.clear()
        self._generations.clear()

    def _on_invalidate(self, names: list[bytes] | None) -> None:
        if names is None:
            self._answers.clear()
            self._readers.clear()
            self._generations.clear()
            return
        for name in names:
            self._generations.pop(name, None)
            for key in self._readers.pop(name, ()):
                self._answers.pop(key, None)
