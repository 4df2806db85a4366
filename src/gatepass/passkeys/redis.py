"""Passkeys in Redis.

Layout (``P`` is the prefix)::

    P pk:<credential id>   HASH  u user, k public key, c counter, n name, t created,
                                 r transports (JSON), l last used, b backup eligible
    P pku:<user>           SET   the user's credential ids

Every decision is a Lua script on the credential's one key (so it holds on
Redis Cluster too): adding only when the key is new, renaming and removing
only for its own user, and recording a use only when the counter is still
the one the assertion was checked against.  The user's set is an index: it
may briefly name a credential already removed (listing skips it).
"""

from __future__ import annotations

from typing import ClassVar

from redis.commands.core import AsyncScript

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.redis import RedisStore, guarded
from gatepass.passkeys.store import Passkey, dump_transports, load_transports

_LUA_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# ARGV: user, then 'rename' + name, or 'remove'.
_LUA_CHANGE = """
if redis.call('HGET', KEYS[1], 'u') ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'remove' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'n', ARGV[3])
end
return 1
"""

# ARGV: seen counter, new counter, now.
_LUA_USE = """
local c = redis.call('HGET', KEYS[1], 'c')
if not c or c ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'c', ARGV[2], 'l', ARGV[3])
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_FIELDS = ("u", "k", "c", "n", "t", "r", "l", "b")


class RedisPasskeyStore(RedisStore):
    SCRIPTS: ClassVar[dict[str, str]] = {"_add": _LUA_ADD, "_change": _LUA_CHANGE, "_use": _LUA_USE}
    _add: AsyncScript
    _change: AsyncScript
    _use: AsyncScript

    def _key(self, credential_id: str) -> str:
        return f"{self.prefix}pk:{credential_id}"

    def _index(self, user_id: str) -> str:
        return f"{self.prefix}pku:{user_id}"

    @guarded
    async def add(self, passkey: Passkey) -> bool:
        uid = checked(passkey.user_id)
        values = [
            "u", uid, "k", passkey.public_key, "c", str(passkey.sign_count), "n", passkey.name,
            "t", repr(passkey.created_at), "r", dump_transports(passkey.transports),
            "b", "1" if passkey.backup_eligible else "0",
        ]  # fmt: skip
        if passkey.last_used_at is not None:
            values += ["l", repr(passkey.last_used_at)]
        if not await self._add(keys=[self._key(passkey.credential_id)], args=values):
            return False
        await self.client.sadd(self._index(uid), passkey.credential_id)
        return True

    @guarded
    async def get(self, credential_id: str) -> Passkey | None:
        return await self._read(credential_id)

    async def _read(self, credential_id: str) -> Passkey | None:
        raw = await self.client.hmget(self._key(credential_id), list(_FIELDS))
        if raw[0] is None:
            return None
        u, k, c, n, t, r, used, b = (None if v is None else _text(v) for v in raw)
        return Passkey(
            credential_id=credential_id, user_id=str(u), public_key=str(k),
            sign_count=int(c or 0), name=str(n), created_at=float(t or 0),
            transports=load_transports(r), last_used_at=None if used is None else float(used),
            backup_eligible=b == "1",
        )  # fmt: skip

    @guarded
    async def list_user(self, user_id: str) -> list[Passkey]:
        uid = checked(user_id)
        ids = sorted(_text(m) for m in await self.client.smembers(self._index(uid)))
        found = [p for p in [await self._read(i) for i in ids] if p and p.user_id == uid]
        return sorted(found, key=lambda p: (p.created_at, p.credential_id))

    @guarded
    async def rename(self, user_id: str, credential_id: str, name: str) -> bool:
        args = [checked(user_id), "rename", name]
        return bool(await self._change(keys=[self._key(credential_id)], args=args))

    @guarded
    async def remove(self, user_id: str, credential_id: str) -> bool:
        args = [checked(user_id), "remove"]
        done = bool(await self._change(keys=[self._key(credential_id)], args=args))
        if done:
            await self.client.srem(self._index(user_id), credential_id)
        return done

    @guarded
    async def remove_user(self, user_id: str) -> int:
        uid = checked(user_id)
        ids = [_text(m) for m in await self.client.smembers(self._index(uid))]
        removed = 0
        for credential_id in ids:  # one key per command: Redis Cluster
            args = [uid, "remove"]
            removed += int(await self._change(keys=[self._key(credential_id)], args=args))
        await self.client.delete(self._index(uid))
        return removed

    @guarded
    async def record_use(
        self, credential_id: str, *, seen_count: int, new_count: int, now: float
    ) -> bool:
        args = [str(seen_count), str(new_count), repr(now)]
        return bool(await self._use(keys=[self._key(credential_id)], args=args))
