"""In-process refresh and revocation stores, for development and tests.

Atomic because no method awaits between reading and writing: on one event
loop nothing else runs in between.  Nothing survives a restart, so a replayed
refresh token reads as UNKNOWN afterwards (still rejected, but not detected
as a replay): use a persistent store in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from gatepass.drivers.ids import user_id as checked
from gatepass.tokens.refresh import Family, RotateOutcome, decide
from gatepass.tokens.revocation import RevocationEntries, family_marker


class MemoryRefreshStore:
    def __init__(self) -> None:
        self._families: dict[str, Family] = {}
        self._by_user: dict[str, set[str]] = {}

    async def create(self, family: Family) -> None:
        checked(family.user_id)
        if family.family_id in self._families:
            raise ValueError("refresh family already exists")
        self._families[family.family_id] = family
        self._by_user.setdefault(family.user_id, set()).add(family.family_id)

    async def rotate(
        self, family_id: str, presented_hash: str, successor_hash: str, *, now: float, grace: float
    ) -> tuple[RotateOutcome, Family | None]:
        outcome, family, changed = decide(
            self._families.get(family_id), presented_hash, successor_hash, now=now, grace=grace
        )
        if changed and family is not None:
            self._families[family_id] = family
        return outcome, family

    async def get(self, family_id: str) -> Family | None:
        return self._families.get(family_id)

    async def revoke(self, family_id: str) -> Family | None:
        family = self._families.get(family_id)
        if family is None:
            return None
        family = self._families[family_id] = replace(family, revoked=True)
        return family

    async def set_data(self, family_id: str, data: dict[str, object]) -> bool:
        family = self._families.get(family_id)
        if family is None:
            return False
        self._families[family_id] = replace(family, data=dict(data))
        return True

    async def revoke_user(self, user_id: str) -> int:
        count = 0
        for family_id in self._by_user.get(checked(user_id), ()):
            family = self._families[family_id]
            if not family.revoked:
                self._families[family_id] = replace(family, revoked=True)
                count += 1
        return count

    async def list_user(self, user_id: str) -> list[Family]:
        families = [self._families[f] for f in self._by_user.get(checked(user_id), ())]
        return sorted(families, key=lambda f: (f.created_at, f.family_id))

    async def purge_expired(self, now: float) -> int:
        gone = [f for f in self._families.values() if f.absolute_expires_at <= now]
        for family in gone:
            del self._families[family.family_id]
            ids = self._by_user[family.user_id]
            ids.discard(family.family_id)
            if not ids:
                del self._by_user[family.user_id]
        return len(gone)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryRevocationStore(RevocationEntries):
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # (kind, user_id, jti) -> until; kind is "deny" or "allow".
        self._entries: dict[tuple[str, str, str], float] = {}
        self._generations: dict[str, int] = {}

    def _live(self, kind: str, jti: str, user_id: str) -> bool:
        until = self._entries.get((kind, user_id, jti))
        return until is not None and until > self._clock()

    async def _put(self, kind: str, jti: str, user_id: str, until: float) -> None:
        self._entries[kind, checked(user_id), jti] = until

    async def _check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int]:
        return self._cached_check(kind, jti, user_id, family_id)

    def _cached_check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int]:
        # Everything is in memory: the synchronous answer is the answer.
        checked(user_id)
        family_denied = family_id is not None and self._live(
            "deny", family_marker(family_id), user_id
        )
        return self._live(kind, jti, user_id), family_denied, self._generations.get(user_id, 0)

    async def disallow(self, jti: str, user_id: str) -> None:
        self._entries.pop(("allow", checked(user_id), jti), None)

    async def generation(self, user_id: str) -> int:
        return self._generations.get(checked(user_id), 0)

    async def bump_generation(self, user_id: str) -> int:
        value = self._generations[user_id] = self._generations.get(checked(user_id), 0) + 1
        return value

    async def purge_expired(self, now: float) -> int:
        gone = [k for k, until in self._entries.items() if until <= now]
        for key in gone:
            del self._entries[key]
        return len(gone)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
