"""Redis refresh and revocation stores.

Key layout (``P`` is the prefix, ``gatepass:`` by default)::

    P rf:<family_id>        HASH    one family, expiring at absolute_expires_at (PXAT)
                                    u user_id, c created_at, x absolute_expires_at,
                                    h current_hash, p previous_hash, r rotated_at,
                                    g generation, v revoked ("0"/"1"), d data (JSON)
    P ru:<user_id>          ZSET    member family_id, score absolute_expires_at;
                                    expires with its highest score
    P deny:{<U>}:<jti>      STRING  "1", expiring with the access token (PXAT)
    P allow:{<U>}:<jti>     STRING  "1", expiring with the access token (PXAT)
    P gen:{<U>}             STRING  the user's generation (INCR), never expires

Why it looks like this:

* The family id is part of the token, so everything a refresh needs is one
  key, and ``rotate`` is one Lua script on that key: atomic, and safe under
  Redis Cluster with no hash tags.  Floats are written with ``repr`` and read
  by Lua's ``tonumber``, both exact, so the script and :func:`decide` agree
  to the last bit on the grace arithmetic.
* ``revoke_user`` and ``list_user`` are non-transactional pipelines, which
  the cluster client splits per node (scripts in them go as EVAL, see
  :func:`gatepass.drivers.redis.queue_script`).
* The per-user index follows the session store: members are added before a
  family is written (a live family is never missing from its index), scored
  by the absolute deadline, trimmed on the Redis clock.  Families are never
  removed early (revocation only marks them), so the index never needs it.
* ``check`` is one MGET of the jti's key, the generation and, given a
  family id, the family marker's deny key (see
  :func:`~gatepass.tokens.revocation.family_marker`).  All of a user's
  revocation keys share the hash tag ``{<U>}`` so that, under Cluster, they
  live in one slot and MGET is allowed.  ``<U>`` is the user id with ``%``,
  ``{`` and ``}`` percent-escaped: a brace in a user id would otherwise move
  the tag and split the slot.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from redis.commands.core import AsyncScript

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.redis import (
    INDEX_ADD_SCRIPT,
    RedisConnection,
    RedisStore,
    guarded,
    ms,
    queue_script,
)
from gatepass.tokens.refresh import Family, RotateOutcome
from gatepass.tokens.revocation import RevocationEntries, family_marker

# Outcome codes returned by the rotate script, in the order of decide().
_OUTCOMES = {
    0: RotateOutcome.UNKNOWN,
    1: RotateOutcome.ROTATED,
    2: RotateOutcome.GRACE,
    3: RotateOutcome.REUSED,
    4: RotateOutcome.REVOKED,
    5: RotateOutcome.EXPIRED,
}

# KEYS[1]: a family.  ARGV: presented hash, successor hash, now, grace.
# Returns {code} or {code, HGETALL}.  A transcription of refresh.decide().
_LUA_ROTATE = r"""
local f = redis.call('HMGET', KEYS[1], 'h', 'p', 'r', 'v', 'x')
if not f[1] then return {0} end
local now = tonumber(ARGV[3])
if now >= tonumber(f[5]) then return {5, redis.call('HGETALL', KEYS[1])} end
if ARGV[1] == f[1] then
  if f[4] == '1' then return {4, redis.call('HGETALL', KEYS[1])} end
  redis.call('HSET', KEYS[1], 'p', ARGV[1], 'h', ARGV[2], 'r', ARGV[3])
  return {1, redis.call('HGETALL', KEYS[1])}
end
if f[4] ~= '1' and f[2] ~= '' and ARGV[1] == f[2] and ARGV[2] == f[1]
   and f[3] ~= '' and now - tonumber(f[3]) < tonumber(ARGV[4]) then
  return {2, redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'v', '1')
return {3, redis.call('HGETALL', KEYS[1])}
"""

# KEYS[1]: a family.  ARGV: expiry in ms, then field/value pairs.  HSET NX for
# a whole hash; returns the existing owner's user id on a clash.
_LUA_CREATE = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return {redis.call('HGET', KEYS[1], 'u')} end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return false
"""

# KEYS[1]: a family.  Marks it revoked, keeping its expiry; returns
# {was_revoked, HGETALL} or nil when absent.
_LUA_REVOKE = r"""
local was = redis.call('HGET', KEYS[1], 'v')
if not was then return false end
redis.call('HSET', KEYS[1], 'v', '1')
return {was, redis.call('HGETALL', KEYS[1])}
"""

# KEYS[1]: a family.  ARGV[1]: its new data (JSON).  Only an existing
# family is written (never recreated without its fields and expiry).
_LUA_SET_DATA = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1])
return 1
"""

#: revoke_user re-reads the index until no unseen member appears; bounded so a
#: user logging in in a tight loop cannot keep it spinning.
_MAX_REVOKE_PASSES = 8


def _num(value: float) -> str:
    # repr is the shortest exact spelling; Lua's tonumber reads it back exactly.
    return repr(float(value))


def _fields(f: Family) -> list[str | int]:
    return [
        "u", f.user_id, "c", _num(f.created_at), "x", _num(f.absolute_expires_at),
        "h", f.current_hash, "p", f.previous_hash or "",
        "r", "" if f.rotated_at is None else _num(f.rotated_at),
        "g", f.generation, "v", "1" if f.revoked else "0",
        "d", json.dumps(f.data, separators=(",", ":"), ensure_ascii=False),
    ]  # fmt: skip


def _family(family_id: str, flat: list[bytes] | dict[bytes, bytes]) -> Family | None:
    h = flat if isinstance(flat, dict) else dict(zip(flat[::2], flat[1::2], strict=True))
    if not h:
        return None
    rotated = h[b"r"]
    return Family(
        family_id=family_id,
        user_id=h[b"u"].decode(),
        created_at=float(h[b"c"]),
        absolute_expires_at=float(h[b"x"]),
        current_hash=h[b"h"].decode(),
        previous_hash=h[b"p"].decode() or None,
        rotated_at=float(rotated) if rotated else None,
        generation=int(h[b"g"]),
        revoked=h[b"v"] == b"1",
        data=json.loads(h[b"d"]),
    )


class RedisRefreshStore(RedisStore):
    SCRIPTS: ClassVar[dict[str, str]] = {
        "_rotate": _LUA_ROTATE, "_create": _LUA_CREATE, "_revoke": _LUA_REVOKE,
        "_index_add": INDEX_ADD_SCRIPT, "_set_data": _LUA_SET_DATA,
    }  # fmt: skip
    _set_data: AsyncScript
    _rotate: AsyncScript
    _create: AsyncScript
    _revoke: AsyncScript
    _index_add: AsyncScript

    def family_key(self, family_id: str) -> str:
        return f"{self.prefix}rf:{family_id}"

    def index_key(self, user_id: str) -> str:
        return f"{self.prefix}ru:{checked(user_id)}"

    @guarded
    async def create(self, family: Family) -> None:
        index = self.index_key(family.user_id)
        # Index first: a live family must never be missing from its index.
        score = _num(family.absolute_expires_at)
        await self._index_add(keys=[index], args=[score, family.family_id])
        clash = await self._create(
            keys=[self.family_key(family.family_id)],
            args=[ms(family.absolute_expires_at), *_fields(family)],
        )
        if clash is None:
            return
        if clash[0] != family.user_id.encode():
            # The member we added points at someone else's family.
            await self.client.zrem(index, family.family_id)
        raise ValueError("refresh family already exists")

    @guarded
    async def rotate(
        self, family_id: str, presented_hash: str, successor_hash: str, *, now: float, grace: float
    ) -> tuple[RotateOutcome, Family | None]:
        reply = await self._rotate(
            keys=[self.family_key(family_id)],
            args=[presented_hash, successor_hash, _num(now), _num(grace)],
        )
        family = _family(family_id, reply[1]) if len(reply) > 1 else None
        return _OUTCOMES[int(reply[0])], family

    @guarded
    async def get(self, family_id: str) -> Family | None:
        # The client is built with decode_responses=False: keys and values are bytes.
        raw: dict[Any, Any] = await self.client.hgetall(self.family_key(family_id))
        return _family(family_id, raw)

    @guarded
    async def revoke(self, family_id: str) -> Family | None:
        reply = await self._revoke(keys=[self.family_key(family_id)])
        return None if reply is None else _family(family_id, reply[1])

    @guarded
    async def set_data(self, family_id: str, data: dict[str, object]) -> bool:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        return bool(await self._set_data(keys=[self.family_key(family_id)], args=[text]))

    async def _members(self, user_id: str) -> list[str]:
        return await self.members(self.index_key(user_id))

    @guarded
    async def revoke_user(self, user_id: str) -> int:
        # A family written while this runs is caught by re-reading the index;
        # one written after the last pass carries the user's old generation,
        # which the caller bumps before calling this, so it is dead anyway.
        seen: set[str] = set()
        count = 0
        for _ in range(_MAX_REVOKE_PASSES):
            fresh = [m for m in await self._members(user_id) if m not in seen]
            if not fresh:
                break
            seen.update(fresh)
            # A pipeline, not a multi-key script: each call stays on one key.
            async with self.client.pipeline(transaction=False) as pipe:
                for member in fresh:
                    queue_script(pipe, self._revoke, [self.family_key(member)], [])
                replies: list[Any] = await pipe.execute()
            count += sum(
                1
                for r in replies
                if r is not None and r[0] == b"0" and _owner(r[1]) == user_id.encode()
            )
        return count

    @guarded
    async def list_user(self, user_id: str) -> list[Family]:
        members = await self._members(user_id)
        if not members:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hgetall(self.family_key(member))
            raws: list[dict[bytes, bytes]] = await pipe.execute()
        families = [_family(m, raw) for m, raw in zip(members, raws, strict=True)]
        found = [f for f in families if f is not None and f.user_id == user_id]
        return sorted(found, key=lambda f: (f.created_at, f.family_id))

    async def purge_expired(self, now: float) -> int:
        # Families expire by themselves (PXAT); index members are trimmed on create.
        return 0


def _owner(flat: list[bytes]) -> bytes | None:
    return dict(zip(flat[::2], flat[1::2], strict=True)).get(b"u")


def user_tag(user_id: str) -> str:
    """The user id as a Cluster hash tag body: brace-free and injective."""
    if not checked(user_id):
        raise ValueError("empty user id")
    return user_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


class RedisRevocationStore(RevocationEntries, RedisStore):
    def __init__(self, conn: RedisConnection, *, prefix: str = "gatepass:") -> None:
        if "{" in prefix or "}" in prefix:
            # A brace in the prefix would become (part of) the hash tag.
            raise ValueError("the Redis key prefix must not contain braces")
        super().__init__(conn, prefix=prefix)

    def entry_key(self, kind: str, jti: str, user_id: str) -> str:
        return f"{self.prefix}{kind}:{{{user_tag(user_id)}}}:{jti}"

    def generation_key(self, user_id: str) -> str:
        return f"{self.prefix}gen:{{{user_tag(user_id)}}}"

    def check_keys(self, kind: str, jti: str, user_id: str, family_id: str | None) -> list[str]:
        """What :meth:`check` reads: the entry, the generation, the family's marker."""
        keys = [self.entry_key(kind, jti, user_id), self.generation_key(user_id)]
        if family_id is not None:
            keys.append(self.entry_key("deny", family_marker(family_id), user_id))
        return keys

    @guarded
    async def _put(self, kind: str, jti: str, user_id: str, until: float) -> None:
        await self.client.set(self.entry_key(kind, jti, user_id), b"1", pxat=ms(until))

    @guarded
    async def _check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int]:
        # One MGET: every key carries the user's hash tag, so one slot.
        values = await self.client.mget(self.check_keys(kind, jti, user_id, family_id))
        marker = values[2] if family_id is not None else None
        return values[0] is not None, marker is not None, 0 if values[1] is None else int(values[1])

    @guarded
    async def disallow(self, jti: str, user_id: str) -> None:
        await self.client.delete(self.entry_key("allow", jti, user_id))

    @guarded
    async def generation(self, user_id: str) -> int:
        raw = await self.client.get(self.generation_key(user_id))
        return 0 if raw is None else int(raw)

    @guarded
    async def bump_generation(self, user_id: str) -> int:
        return int(await self.client.incr(self.generation_key(user_id)))

    async def purge_expired(self, now: float) -> int:
        return 0  # entries expire by themselves (PXAT)
