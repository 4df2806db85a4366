"""Redis one-time token store.

Layout (``P`` is the prefix)::

    P o:<purpose>:<hash>   HASH  u = user id, d = data, e = expiry (ms)
    P ou:<purpose>:<user>  ZSET  token hashes of the user, scored by expiry (ms)

* ``take`` is a Lua script on the token's one key (read, delete, answer), so
  of concurrent takes exactly one gets the grant, on Redis Cluster too.
* The per-user index serves ``drop_user``; it may list tokens already taken
  (harmless: deleting a missing key counts nothing) and trims expired
  entries on every put.
* Expiry decisions use the caller's clock; the keys' own TTLs (relative, by
  that clock) only collect garbage.
"""

from __future__ import annotations

import math
import time
from typing import ClassVar

from redis.commands.core import AsyncScript

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.redis import RedisStore, guarded
from gatepass.onetime.store import Grant

# Returns {user, data, expires_ms} and deletes the key, or nil.
_LUA_TAKE = """
local v = redis.call('HMGET', KEYS[1], 'u', 'd', 'e')
if not v[1] then
  return nil
end
redis.call('DEL', KEYS[1])
return v
"""


class RedisOneTimeTokenStore(RedisStore):
    SCRIPTS: ClassVar[dict[str, str]] = {"_take": _LUA_TAKE}
    _take: AsyncScript

    def _token_key(self, purpose: str, token_hash: str) -> str:
        return f"{self.prefix}o:{purpose}:{token_hash}"

    def _index_key(self, purpose: str, user_id: str) -> str:
        return f"{self.prefix}ou:{purpose}:{user_id}"

    @guarded
    async def put(
        self, token_hash: str, *, purpose: str, user_id: str, data: str, expires_at: float
    ) -> None:
        expires_ms = math.ceil(expires_at * 1000)
        # The keys' TTLs only collect garbage (the caller's clock decides
        # expiry): the token's remaining life by the wall clock, plus a minute.
        wall_ms = math.floor(time.time() * 1000)
        keep_ms = max(0, expires_ms - wall_ms) + 60_000
        key = self._token_key(purpose, token_hash)
        index = self._index_key(purpose, checked(user_id))
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={"u": user_id, "d": data, "e": expires_ms})
            pipe.pexpire(key, keep_ms)
            pipe.zremrangebyscore(index, "-inf", wall_ms)
            pipe.zadd(index, {token_hash: expires_ms})
            # Tokens of one purpose share one lifetime: the newest lives longest.
            pipe.pexpire(index, keep_ms)
            await pipe.execute()

    @guarded
    async def take(self, token_hash: str, *, purpose: str, now: float) -> Grant | None:
        found = await self._take(keys=[self._token_key(purpose, token_hash)], args=[])
        if not found:
            return None
        user, data, expires_ms = (part.decode() for part in found)
        # Both sides in whole milliseconds, rounded the same way.
        if int(expires_ms) <= math.ceil(now * 1000):
            return None
        return Grant(user, data)

    @guarded
    async def drop_user(self, user_id: str, purpose: str) -> int:
        index = self._index_key(purpose, checked(user_id))
        hashes = await self.members(index)
        dropped = 0
        if hashes:
            # One key per command: Redis Cluster splits the pipeline per node.
            async with self.client.pipeline(transaction=False) as pipe:
                for token_hash in hashes:
                    pipe.delete(self._token_key(purpose, token_hash))
                results: list[int] = await pipe.execute()
            dropped = sum(int(r) for r in results)
            await self.client.zrem(index, *hashes)
        return dropped

    async def purge_expired(self, now: float) -> int:
        return 0  # keys expire by themselves
