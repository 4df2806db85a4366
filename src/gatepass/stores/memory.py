"""In-process stores: for development, tests of apps, and single-process use.

A product feature, not a test double: it honours the same contract as the
networked stores (the contract suite runs against it), but lives and dies
with the process and is not shared between workers.
"""

from __future__ import annotations

from dataclasses import replace

from gatepass.drivers.ids import user_id as checked
from gatepass.sessions.record import SessionRecord


class MemorySessionStore:
    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}
        self._by_user: dict[str, set[str]] = {}

    async def create(self, record: SessionRecord) -> None:
        checked(record.user_id)
        if record.key in self._records:
            raise ValueError("session key already exists")
        self._add(record)

    async def get(self, key: str) -> SessionRecord | None:
        return self._records.get(key)

    def cached(self, key: str) -> SessionRecord | None:
        """:meth:`get` without a coroutine: everything here is in memory."""
        return self._records.get(key)

    async def touch(self, key: str, *, last_seen_at: float, expires_at: float) -> bool:
        record = self._records.get(key)
        if record is None:
            return False
        self._records[key] = replace(record, last_seen_at=last_seen_at, expires_at=expires_at)
        return True

    async def update_data(self, key: str, data: dict[str, object]) -> bool:
        record = self._records.get(key)
        if record is None:
            return False
        self._records[key] = replace(record, data=dict(data))
        return True

    async def replace(
        self, old_key: str, new_key: str, *, last_seen_at: float, expires_at: float
    ) -> SessionRecord | None:
        # No await anywhere: atomic on the event loop.
        if new_key in self._records:
            raise ValueError("session key already exists")
        old = self._drop(old_key)
        if old is None:
            return None
        moved = replace(old, key=new_key, last_seen_at=last_seen_at, expires_at=expires_at)
        self._add(moved)
        return moved

    async def delete(self, key: str) -> SessionRecord | None:
        return self._drop(key)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        keys = self._by_user.get(checked(user_id), ())
        return sorted((self._records[k] for k in keys), key=lambda r: r.created_at)

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        doomed = [k for k in self._by_user.get(checked(user_id), ()) if k != keep]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> int:
        keys = self._by_user.get(checked(user_id), ())
        for key in keys:
            self._records[key] = replace(self._records[key], roles=tuple(roles))
        return len(keys)

    async def purge_expired(self, now: float) -> int:
        doomed = [k for k, r in self._records.items() if r.is_expired(now)]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _add(self, record: SessionRecord) -> None:
        self._records[record.key] = record
        self._by_user.setdefault(record.user_id, set()).add(record.key)

    def _drop(self, key: str) -> SessionRecord | None:
        record = self._records.pop(key, None)
        if record is not None:
            keys = self._by_user.get(record.user_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_user[record.user_id]
        return record
