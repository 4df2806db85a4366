"""Redis throttle store: one hash per key, every operation on that one key.

Layout (``P`` is the prefix, ``gatepass:`` by default)::

    P t:<key>  HASH  c = count, e = counter expiry (ms), d = deadline (ms)

* ``hit`` and ``set_deadline`` are tiny Lua scripts, so each is one atomic
  round trip; ``deadlines`` is a pipeline of HGETs, one round trip.
* **Redis Cluster** (``redis+cluster://``): every command and script touches
  exactly one key, and a non-transactional pipeline is split per node, so no
  hash tags are needed.
* Expiry decisions use the caller's clock (``now``, as the contract says); the
  key's own TTL is set relative (PEXPIRE) to what remains by that clock, so it
  only garbage-collects and is immune to skew between Redis and the servers.
* Times are whole milliseconds: Redis's Lua prints numbers with 14
  significant digits, exact for epoch milliseconds until the year 5138.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from redis.commands.core import AsyncScript

from gatepass.drivers.redis import RedisStore, guarded, ms
from gatepass.throttle.store import Hit

# ARGV: now_ms, window_ms, extend_after (-1: never), extend_window_ms.
# Returns {count, expires_ms}.
_LUA_HIT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local extend_after = tonumber(ARGV[3])
local extend_window = tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'c', 'e', 'd')
local count = tonumber(v[1]) or 0
local expires = tonumber(v[2]) or 0
local deadline = tonumber(v[3]) or 0
if expires <= now then
  count = 1
  expires = now + window
else
  count = count + 1
  if extend_after >= 0 and count > extend_after and now + extend_window > expires then
    expires = now + extend_window
  end
end
redis.call('HSET', KEYS[1], 'c', count, 'e', expires)
redis.call('PEXPIRE', KEYS[1], math.max(expires, deadline) - now)
return {count, expires}
"""

# ARGV: now_ms, until_ms.  Raises the deadline, never lowers it.
_LUA_SET_DEADLINE = """
local now = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 'e', 'd')
local expires = tonumber(v[1]) or 0
local deadline = math.max(tonumber(v[2]) or 0, tonumber(ARGV[2]))
local keep = math.max(expires, deadline) - now
if keep <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'd', deadline)
redis.call('PEXPIRE', KEYS[1], keep)
return 1
"""


class RedisThrottleStore(RedisStore):
    SCRIPTS: ClassVar[dict[str, str]] = {"_hit": _LUA_HIT, "_set_deadline": _LUA_SET_DEADLINE}
    _hit: AsyncScript
    _set_deadline: AsyncScript

    def redis_key(self, key: str) -> str:
        return f"{self.prefix}t:{key}"

    @guarded
    async def hit(
        self,
        key: str,
        *,
        window: float,
        now: float,
        extend_after: int | None = None,
        extend_window: float | None = None,
    ) -> Hit:
        # Floor "now" so that now + window (rounded up) never shortens a window.
        args = [
            math.floor(now * 1000),
            ms(window),
            -1 if extend_after is None else extend_after,
            ms(window if extend_window is None else extend_window),
        ]
        count, expires_ms = await self._hit(keys=[self.redis_key(key)], args=args)
        return Hit(int(count), int(expires_ms) / 1000)

    @guarded
    async def set_deadline(self, key: str, *, until: float, now: float) -> None:
        args = [math.floor(now * 1000), ms(until)]
        await self._set_deadline(keys=[self.redis_key(key)], args=args)

    @guarded
    async def deadlines(self, keys: Sequence[str], *, now: float) -> list[float]:
        if not keys:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(self.redis_key(key), "d")
            raws: list[bytes | None] = await pipe.execute()
        out: list[float] = []
        for raw in raws:
            until = int(raw) / 1000 if raw else 0.0
            out.append(until if until > now else 0.0)
        return out

    @guarded
    async def clear(self, key: str) -> None:
        await self.client.delete(self.redis_key(key))

    async def purge_expired(self, now: float) -> int:
        return 0  # keys expire by themselves
