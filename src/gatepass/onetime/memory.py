"""In-process one-time token store: one server process, development and tests.

No method awaits between its read and its write, so on one event loop each
is atomic (a take is a ``dict.pop``).
"""

from __future__ import annotations

from gatepass.drivers.ids import user_id as checked
from gatepass.onetime.store import Grant


class MemoryOneTimeTokenStore:
    def __init__(self) -> None:
        # token_hash -> (purpose, user_id, data, expires_at)
        self._rows: dict[str, tuple[str, str, str, float]] = {}

    async def put(
        self, token_hash: str, *, purpose: str, user_id: str, data: str, expires_at: float
    ) -> None:
        self._rows[token_hash] = (purpose, checked(user_id), data, expires_at)

    async def take(self, token_hash: str, *, purpose: str, now: float) -> Grant | None:
        row = self._rows.get(token_hash)
        if row is None or row[0] != purpose:
            return None
        del self._rows[token_hash]
        return Grant(row[1], row[2]) if row[3] > now else None

    async def drop_user(self, user_id: str, purpose: str) -> int:
        checked(user_id)
        gone = [h for h, row in self._rows.items() if row[0] == purpose and row[1] == user_id]
        for token_hash in gone:
            del self._rows[token_hash]
        return len(gone)

    async def purge_expired(self, now: float) -> int:
        gone = [h for h, row in self._rows.items() if row[3] <= now]
        for token_hash in gone:
            del self._rows[token_hash]
        return len(gone)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
