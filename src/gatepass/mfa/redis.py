"""Factors in Redis (and Redis Cluster).

Layout (``P`` is the key prefix)::

    P mfa:{<user>}:f   HASH  s = sealed secret, p = pending secret, n = last used step
    P mfa:{<user>}:r   SET   hashes of the unused recovery codes
    P mfa:c:<hash>     HASH  b = challenge (JSON), e = expiry (ms), a = attempts

A user's two keys share the hash tag ``{<user>}``, so the scripts that touch
both stay on one Cluster slot; every other step touches one key.  Each
decision (accept a step, spend a code, count an attempt) is one Lua script
or one command: atomic, one round trip.  Challenges expire by PEXPIREAT; the
attempt script also compares the caller's clock, as the other backends do.
"""

from __future__ import annotations

from typing import Any, ClassVar

from redis.commands.core import AsyncScript

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.redis import RedisStore, guarded, ms
from gatepass.mfa.store import MAX_ATTEMPTS, Challenge, Factors

# KEYS: f, r.  ARGV: sealed, step, hashes...
_ENABLE = """
if redis.call('HGET', KEYS[1], 'p') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'n', ARGV[2])
redis.call('HDEL', KEYS[1], 'p')
redis.call('DEL', KEYS[2])
for i = 3, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
return 1
"""

# KEYS: f.  ARGV: step.
_USE_STEP = """
local v = redis.call('HMGET', KEYS[1], 's', 'n')
if not v[1] then return 0 end
if tonumber(v[2] or '-1') >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'n', ARGV[1])
return 1
"""

# KEYS: f, r.  ARGV: "1" to report whether TOTP was on, "0" whether anything was.
_REMOVE = """
local secret = redis.call('HGET', KEYS[1], 's')
local gone = redis.call('DEL', KEYS[1]) + redis.call('DEL', KEYS[2])
if ARGV[1] == '1' then
  if secret then return 1 end
  return 0
end
if gone > 0 then return 1 end
return 0
"""

# KEYS: r.  ARGV: hashes...
_REPLACE_CODES = """
redis.call('DEL', KEYS[1])
for i = 1, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
return 1
"""

# KEYS: f.  ARGV: old, new.
_RESEAL = """
if redis.call('HGET', KEYS[1], 's') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[2])
return 1
"""

# KEYS: c.  ARGV: body, expiry_ms.  One script rather than MULTI: a
# transaction on a cluster pipeline is not what redis-py's async cluster
# client does reliably, and one key needs no transaction anyway.
_CREATE = """
redis.call('HSET', KEYS[1], 'b', ARGV[1], 'e', ARGV[2], 'a', 0)
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
"""

# KEYS: c.  ARGV: now_ms, limit.  The challenge body, or false (deleted when
# expired or past the limit).
_ATTEMPT = """
local expires = tonumber(redis.call('HGET', KEYS[1], 'e'))
if not expires then return false end
local attempts = redis.call('HINCRBY', KEYS[1], 'a', 1)
if tonumber(ARGV[1]) >= expires or attempts > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return false
end
return redis.call('HGET', KEYS[1], 'b')
"""


class RedisFactorStore(RedisStore):
    SCRIPTS: ClassVar[dict[str, str]] = {
        "_enable": _ENABLE,
        "_use_step": _USE_STEP,
        "_remove": _REMOVE,
        "_replace_codes": _REPLACE_CODES,
        "_reseal": _RESEAL,
        "_attempt": _ATTEMPT,
        "_create": _CREATE,
    }
    _enable: AsyncScript
    _use_step: AsyncScript
    _remove: AsyncScript
    _replace_codes: AsyncScript
    _reseal: AsyncScript
    _attempt: AsyncScript
    _create: AsyncScript

    def _keys(self, user_id: str) -> list[str]:
        tag = f"{self.prefix}mfa:{{{checked(user_id)}}}"
        return [f"{tag}:f", f"{tag}:r"]

    def _challenge_key(self, token_hash: str) -> str:
        return f"{self.prefix}mfa:c:{token_hash}"

    @guarded
    async def get(self, user_id: str) -> Factors:
        f, r = self._keys(user_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(f, "s", "p", "n")
        pipe.scard(r)
        (secret, pending, step), left = await pipe.execute()
        return Factors(
            user_id,
            totp_secret=_text(secret),
            totp_pending=_text(pending),
            totp_last_step=-1 if step is None else int(step),
            recovery_codes_left=int(left),
        )

    @guarded
    async def begin_totp(self, user_id: str, sealed_secret: str) -> None:
        await self.client.hset(self._keys(user_id)[0], "p", sealed_secret)

    @guarded
    async def enable_totp(
        self, user_id: str, sealed_secret: str, step: int, recovery_hashes: list[str]
    ) -> bool:
        done = await self._enable(
            keys=self._keys(user_id), args=[sealed_secret, step, *recovery_hashes]
        )
        return bool(done)

    @guarded
    async def use_totp_step(self, user_id: str, step: int) -> bool:
        return bool(await self._use_step(keys=self._keys(user_id)[:1], args=[step]))

    @guarded
    async def disable_totp(self, user_id: str) -> bool:
        return bool(await self._remove(keys=self._keys(user_id), args=["1"]))

    @guarded
    async def reset(self, user_id: str) -> bool:
        return bool(await self._remove(keys=self._keys(user_id), args=["0"]))

    @guarded
    async def replace_recovery_codes(self, user_id: str, hashes: list[str]) -> None:
        await self._replace_codes(keys=self._keys(user_id)[1:], args=list(hashes))

    @guarded
    async def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        return bool(await self.client.srem(self._keys(user_id)[1], code_hash))

    @guarded
    async def reseal(self, user_id: str, old: str, new: str) -> bool:
        return bool(await self._reseal(keys=self._keys(user_id)[:1], args=[old, new]))

    @guarded
    async def create_challenge(self, challenge: Challenge) -> None:
        checked(challenge.user_id)
        await self._create(
            keys=[self._challenge_key(challenge.token_hash)],
            args=[challenge.dumps(), ms(challenge.expires_at)],
        )

    @guarded
    async def attempt_challenge(
        self, token_hash: str, *, now: float, limit: int = MAX_ATTEMPTS
    ) -> Challenge | None:
        body = await self._attempt(
            keys=[self._challenge_key(token_hash)], args=[int(now * 1000), limit]
        )
        return None if body is None else Challenge.loads(body)

    @guarded
    async def take_challenge(self, token_hash: str) -> bool:
        return bool(await self.client.delete(self._challenge_key(token_hash)))

    async def purge_expired(self, now: float) -> int:
        return 0  # challenges expire by their own TTL


def _text(value: Any) -> str | None:
    return None if value is None else bytes(value).decode()
