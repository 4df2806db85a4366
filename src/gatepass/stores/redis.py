"""Redis session store: one plain GET per request, TTLs instead of purging.

Key layout (``P`` is the prefix, ``gatepass:`` by default)::

    P s:<id>       STRING  dumps(record), expiring at record.expires_at (PXAT)
    P i:<user_id>  ZSET    member <id>, score max(expires_at, absolute_expires_at)
                           in whole seconds, rounded up; the key itself expires
                           with its highest score

``<id>`` is the session key (a SHA-256 digest, 64 hex digits in the record)
in unpadded base64url: 43 characters, none of them a hash-tag brace.

Why it looks like this:

* ``get`` is a single GET of compact JSON (a list of ~90 bytes plus the
  user agent, see
  :func:`~gatepass.sessions.record.dumps`) and never writes.
* Memory: a user with one session costs about 500 bytes of Redis memory
  (``bench/run.py --only memory``), most of it the fixed cost of two keys
  with a TTL.  The key is not repeated in the value, timestamps are integer
  milliseconds (offsets from ``created_at``), and the id and the index score
  are short, since every byte of a key name and of a ZSET member is paid
  once per session.
* Redis forgets a session at ``expires_at`` by itself, so ``purge_expired``
  has nothing to do.
* The index is scored by the *absolute* deadline, which no sliding renewal can
  pass, so ``touch`` (the hot write, once a minute per active session) leaves
  the index alone and stays one round trip on one key.  Members of sessions
  that ended early (idle timeout, logout) linger until that deadline; readers
  skip them, and each ``create`` trims members past their score using the
  Redis clock, the same clock that expires the session keys.
* **Redis Cluster** (``redis+cluster://`` URLs, see :func:`gatepass.drivers.redis.redis_client`):
  every Lua script and every atomic step touches exactly one key, so no hash
  tags are needed and none are used.  ``list_user``, ``delete_user`` and
  ``set_roles`` use non-transactional pipelines, which the cluster client
  splits per node; scripts queued in a pipeline are sent as EVAL (a cluster
  pipeline does not load scripts first, and a node may not know them yet).  Operations that span
  a session and an index (create, replace, delete, delete_user) are ordered
  instead, so that a live session is never missing from its user's index:
  members are added before the session is written and removed after it is
  gone.  A member without a session is harmless (readers skip it).
* ``replace`` claims the old session with GETDEL, so exactly one of several
  concurrent replaces wins, and builds the moved record from the value it
  claimed.  It is not atomic across the two keys, but no one can observe
  that: the new key is the hash of a token nobody holds until ``replace``
  returns.  A crash half-way loses the session (the user logs in again),
  never duplicates it.
* ``set_roles`` must not miss a session that is being moved: its patch of
  the old key may land after the claim, when the new key is not written yet.
  So ``replace`` first reserves the new key with a *pending* marker (``~``
  followed by any patched roles and data), then indexes it, then claims the
  old key; ``set_roles`` re-reads the index until it finds no member it has
  not patched, as ``delete_user`` does, and a patch of a pending key is
  recorded in the marker and applied when ``replace`` writes the record.
* ``delete_user`` must also catch a session being rotated while it runs
  ("log out everywhere" has to win).  It overwrites each session key of the
  user with a short-lived empty *tombstone* instead of deleting it, and new
  sessions are written with ``SET NX``: a rotation whose new key was already
  revoked fails instead of resurrecting the session.  It then re-reads the
  index until it finds no member it has not revoked, which catches a rotation
  that claimed the old key before the revocation reached it.  Readers treat
  anything that is not a JSON list (tombstones, pending markers) as absent.
* **Upgrading** from a release that wrote ``P s:<64 hex digits>`` and ``P
  u:<user_id>`` (the key repeated in the value, float timestamps): those keys
  are never read; their sessions count as logged out and the keys expire on
  their own by their absolute deadlines.  Nothing of the new layout is in
  the old names either, so a rollback sees only the old sessions.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import replace
from typing import ClassVar

from redis.commands.core import AsyncScript

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.redis import (
    INDEX_ADD_SCRIPT,
    RedisStore,
    guarded,
    ms,
    queue_script,
)
from gatepass.sessions.record import SessionRecord, dumps, loads, to_ms

#: How long a revoked session key stays blocked against a late ``SET NX``.
#: It only has to outlast one in-flight ``replace``.
_TOMBSTONE_MS = 5 * 60 * 1000

#: What ``replace`` reserves its new key with (see _LUA_PENDING).
_PENDING = b"~\n"

#: ``delete_user`` and ``set_roles`` re-read the index until it is stable; a
#: user logging in in a tight loop must not keep them spinning forever.
_MAX_REVOKE_PASSES = 8

# Positions (1-based, as in Lua) of fields in the list written by dumps().
_ROLES, _DATA = 2, 11

# Splits a record written by dumps() into its eleven top-level JSON values
# without decoding them: Redis's cjson turns [] into {} and re-escapes
# strings, so decoding and re-encoding could change the fields we are not
# changing.  The first ten values are strings, integers, null or (roles) a
# list of strings; the eleventh (data) is kept verbatim.
_LUA_SPLIT = r"""
local function skip_string(s, i)
  if string.sub(s, i, i) ~= '"' then return nil end
  local j = i + 1
  while true do
    local k = string.find(s, '["\\]', j)
    if not k then return nil end
    if string.sub(s, k, k) == '"' then return k + 1 end
    j = k + 2
  end
end

local function skip_value(s, i)
  local c = string.sub(s, i, i)
  if c == '"' then return skip_string(s, i) end
  if c == '[' then
    local j = i + 1
    if string.sub(s, j, j) == ']' then return j + 1 end
    while j do
      j = skip_string(s, j)
      if not j then return nil end
      local d = string.sub(s, j, j)
      if d == ']' then return j + 1 end
      if d ~= ',' then return nil end
      j = j + 1
    end
    return nil
  end
  return string.find(s, ',', i, true)
end

-- nil: no session here (missing key or tombstone); error: corrupt value.
local function split(raw)
  if not raw or string.sub(raw, 1, 1) ~= '[' then return nil end
  local parts, i = {}, 2
  for n = 1, 10 do
    local j = skip_value(raw, i)
    if not j or string.sub(raw, j, j) ~= ',' then
      return redis.error_reply('gatepass: corrupt session record')
    end
    parts[n] = string.sub(raw, i, j - 1)
    i = j + 1
  end
  parts[11] = string.sub(raw, i, -2)
  return parts
end

local function join(parts) return '[' .. table.concat(parts, ',') .. ']' end
"""

# ARGV: last_seen_at, expires_at (integer ms since the epoch), the key's
# expiry in ms, force flag.  dumps() keeps them as ms after created_at (p[3]);
# Lua numbers are doubles, exact for integers of this size, and '%d' prints
# them whole.  Returns {1} done, {0} no session, {2, user_id} when expires_at
# would pass the absolute deadline (which scores the index): the caller
# raises the score first and calls again with force, so the index never
# expires before the session.
_LUA_TOUCH = (
    _LUA_SPLIT
    + r"""
local p = split(redis.call('GET', KEYS[1]))
if not p then return {0} end
if p.err then return p end
local created = tonumber(p[3])
if ARGV[4] ~= '1' and tonumber(ARGV[2]) > created + tonumber(p[6]) then return {2, p[1]} end
p[4] = string.format('%d', tonumber(ARGV[1]) - created)
p[5] = string.format('%d', tonumber(ARGV[2]) - created)
redis.call('SET', KEYS[1], join(p), 'PXAT', ARGV[3])
return {1}
"""
)

# A pending marker: '~' .. roles JSON .. '\n' .. data JSON, each empty until
# patched (JSON text never holds a raw newline).
_LUA_PENDING = r"""
local function pending(raw)
  if not raw or string.sub(raw, 1, 1) ~= '~' then return nil end
  local nl = string.find(raw, '\n', 2, true)
  return {string.sub(raw, 2, nl - 1), string.sub(raw, nl + 1)}
end
"""

# ARGV: field position (_ROLES or _DATA), its new JSON.  Keeps the key's
# expiry.  A pending key records the patch for replace to apply.
_LUA_PATCH = (
    _LUA_SPLIT
    + _LUA_PENDING
    + r"""
local raw = redis.call('GET', KEYS[1])
local m = pending(raw)
if m then
  if ARGV[1] == '2' then m[1] = ARGV[2] else m[2] = ARGV[2] end
  redis.call('SET', KEYS[1], '~' .. m[1] .. '\n' .. m[2], 'KEEPTTL')
  return 1
end
local p = split(raw)
if not p then return 0 end
if p.err then return p end
p[tonumber(ARGV[1])] = ARGV[2]
redis.call('SET', KEYS[1], join(p), 'KEEPTTL')
return 1
"""
)

# KEYS[1]: the new key of a replace.  ARGV: the moved record (dumps), its
# expiry in ms.  Writes the record with the patches recorded in the pending
# marker and returns what it wrote; nil when the marker is gone (delete_user
# revoked the key).
_LUA_FINISH = (
    _LUA_SPLIT
    + _LUA_PENDING
    + r"""
local m = pending(redis.call('GET', KEYS[1]))
if not m then return false end
local p = split(ARGV[1])
if p.err then return p end
if m[1] ~= '' then p[2] = m[1] end
if m[2] ~= '' then p[11] = m[2] end
local out = join(p)
redis.call('SET', KEYS[1], out, 'PXAT', ARGV[2])
return out
"""
)

# KEYS[1]: a session key.  ARGV: the record, its expiry in ms.  SET NX that
# returns what was there instead (SET NX GET needs Redis 7).
_LUA_CREATE = r"""
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return false
"""

def _json(value: object) -> str:
    # Must match dumps() byte for byte in style, since values are spliced in.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _decode(raw: bytes | str | None, key: str) -> SessionRecord | None:
    # Tombstones (b"") and anything else that is not a record read as absent.
    if not raw or raw[:1] not in (b"[", "["):
        return None
    return loads(raw, key)


def session_id(key: str) -> str:
    """The name Redis knows a session by: its key (64 hex digits) in base64url."""
    try:
        digest = bytes.fromhex(key)
    except ValueError:
        digest = b""
    if len(digest) != 32 or digest.hex() != key:
        raise ValueError("not a session key")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def key_of(session_id: str | bytes) -> str | None:
    """Inverse of :func:`session_id`; None for anything it did not make."""
    if len(session_id) != 43:
        return None
    raw = session_id.encode() if isinstance(session_id, str) else session_id
    try:
        return base64.urlsafe_b64decode(raw + b"=").hex()
    except binascii.Error:
        return None


class RedisSessionStore(RedisStore):
    SCRIPTS: ClassVar[dict[str, str]] = {
        "_touch": _LUA_TOUCH, "_patch": _LUA_PATCH, "_index_add": INDEX_ADD_SCRIPT,
        "_finish": _LUA_FINISH, "_create": _LUA_CREATE,
    }  # fmt: skip
    _touch: AsyncScript
    _patch: AsyncScript
    _index_add: AsyncScript
    _finish: AsyncScript
    _create: AsyncScript

    def session_key(self, key: str) -> str:
        """The Redis key of the session whose key (hex) is ``key``."""
        return self._by_id(session_id(key))

    def index_key(self, user_id: str) -> str:
        return f"{self.prefix}i:{checked(user_id)}"

    async def _index(self, user_id: str, key: str, deadline: float) -> None:
        # Whole seconds, rounded up: a short ZSET entry, never trimmed early.
        score = math.ceil(deadline)
        await self._index_add(keys=[self.index_key(user_id)], args=[score, session_id(key)])

    @guarded
    async def create(self, record: SessionRecord) -> None:
        deadline = max(record.expires_at, record.absolute_expires_at)
        await self._index(record.user_id, record.key, deadline)
        there = await self._create(
            keys=[self.session_key(record.key)], args=[dumps(record), ms(record.expires_at)]
        )
        # A tombstone here means delete_user revoked this key while we were
        # writing it: the session ends at once, as if revoked right after login.
        if there is None or there == b"":
            return
        clash = _decode(there, record.key)
        if clash is None or clash.user_id != record.user_id:
            # The member we added points at someone else's session.
            await self.client.zrem(self.index_key(record.user_id), session_id(record.key))
        raise ValueError("session key already exists")

    @guarded
    async def get(self, key: str) -> SessionRecord | None:
        raw = await self.client.get(self.session_key(key))
        return _decode(raw, key)

    @guarded
    async def touch(self, key: str, *, last_seen_at: float, expires_at: float) -> bool:
        args: list[str | int | float] = [
            to_ms(last_seen_at), to_ms(expires_at), ms(expires_at), "0"
        ]  # fmt: skip
        result = await self._touch(keys=[self.session_key(key)], args=args)
        if result[0] == 2:
            # Past the absolute deadline (the manager never asks for this):
            # raise the index score first, then write.
            user_id = json.loads(result[1])
            await self._index(user_id, key, expires_at)
            args[3] = "1"
            result = await self._touch(keys=[self.session_key(key)], args=args)
        return bool(result[0] == 1)

    @guarded
    async def update_data(self, key: str, data: dict[str, object]) -> bool:
        done = await self._patch(keys=[self.session_key(key)], args=[_DATA, _json(data)])
        return bool(done)

    @guarded
    async def replace(
        self, old_key: str, new_key: str, *, last_seen_at: float, expires_at: float
    ) -> SessionRecord | None:
        # Sequential awaits, not one pipeline: in a cluster a pipeline's
        # commands to different nodes may run in any order, and the order
        # below is what delete_user and set_roles rely on (module docstring).
        # A session's user and absolute deadline never change, so a plain
        # read tells us which index to use before anything is claimed.
        peek = _decode(await self.client.get(self.session_key(old_key)), old_key)
        if peek is None:
            return None
        new = self.session_key(new_key)
        if not await self.client.set(new, _PENDING, nx=True, px=_TOMBSTONE_MS):
            raise ValueError("session key already exists")
        await self._index(peek.user_id, new_key, max(expires_at, peek.absolute_expires_at))
        old = _decode(await self.client.getdel(self.session_key(old_key)), old_key)
        written: bytes | None = None
        if old is not None:
            moved = replace(old, key=new_key, last_seen_at=last_seen_at, expires_at=expires_at)
            written = await self._finish(keys=[new], args=[dumps(moved), ms(expires_at)])
        async with self.client.pipeline(transaction=False) as pipe:
            if old is None:
                pipe.delete(new)  # our own marker: nobody else writes this key
            if written is None:
                pipe.zrem(self.index_key(peek.user_id), session_id(new_key))
            if old is not None:
                pipe.zrem(self.index_key(old.user_id), session_id(old_key))
            await pipe.execute()
        return None if written is None else loads(written, new_key)

    @guarded
    async def delete(self, key: str) -> SessionRecord | None:
        record = _decode(await self.client.getdel(self.session_key(key)), key)
        if record is not None:
            await self.client.zrem(self.index_key(record.user_id), session_id(key))
        return record

    async def _members(self, user_id: str) -> list[str]:
        # Session ids as Redis knows them (not hex keys).
        return await self.members(self.index_key(user_id))

    def _by_id(self, sid: str) -> str:
        return f"{self.prefix}s:{sid}"

    @guarded
    async def list_user(self, user_id: str) -> list[SessionRecord]:
        members = await self._members(user_id)
        if not members:
            return []
        # A pipeline of GETs rather than MGET: MGET across hash slots is
        # refused by a cluster, a pipeline is split per node.
        keys = [key_of(member) for member in members]
        async with self.client.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.get(self._by_id(member))
            raws: list[bytes | None] = await pipe.execute()
        found = (_decode(raw, key) for raw, key in zip(raws, keys, strict=True) if key)
        records = [r for r in found if r is not None and r.user_id == user_id]
        return sorted(records, key=lambda r: (r.created_at, r.key))

    @guarded
    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        spared = None if keep is None else session_id(keep)
        revoked: set[str] = set()
        removed = 0
        for _ in range(_MAX_REVOKE_PASSES):
            fresh = [m for m in await self._members(user_id) if m != spared and m not in revoked]
            if not fresh:
                break
            revoked.update(fresh)
            async with self.client.pipeline(transaction=False) as pipe:
                for member in fresh:
                    pipe.set(self._by_id(member), b"", px=_TOMBSTONE_MS, get=True)
                previous: list[bytes | None] = await pipe.execute()
            # Only whether a session was there counts, not whose it was.
            removed += sum(1 for raw in previous if raw and raw[:1] == b"[")
            # After the keys are gone, never before.
            await self.client.zrem(self.index_key(user_id), *fresh)
        return removed

    @guarded
    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> int:
        # Re-read the index until stable, to reach a session moved while we
        # run (module docstring).  Such a session may be counted twice.
        roles_json = _json(list(roles))
        patched: set[str] = set()
        done = 0
        for _ in range(_MAX_REVOKE_PASSES):
            fresh = [m for m in await self._members(user_id) if m not in patched]
            if not fresh:
                break
            patched.update(fresh)
            async with self.client.pipeline(transaction=False) as pipe:
                for member in fresh:
                    queue_script(pipe, self._patch, [self._by_id(member)], [_ROLES, roles_json])
                results: list[int] = await pipe.execute()
            done += sum(results)
        return done

    async def purge_expired(self, now: float) -> int:
        # Session keys expire by themselves; index members are trimmed on create.
        return 0
