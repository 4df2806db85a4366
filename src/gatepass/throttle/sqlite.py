"""SQLite throttle store: one row per key, each operation one statement.

``hit`` is a single ``INSERT … ON CONFLICT DO UPDATE … RETURNING``, atomic on
its own and, in a ``BEGIN IMMEDIATE`` transaction, against other processes
sharing the file.  In ``DO UPDATE SET`` every column on the right-hand side
is the row *before* the update, which is what the CASE expressions rely on.
Expired rows are removed by :meth:`purge_expired`, and also every
``_PURGE_EVERY`` hits so the table stays bounded even if nobody schedules it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gatepass.drivers.sqlite import SQLiteDatabase, SQLiteStore
from gatepass.throttle.store import Hit

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS gatepass_throttle (
        key TEXT PRIMARY KEY NOT NULL,
        count INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        deadline REAL NOT NULL
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS gatepass_throttle_gone"
    " ON gatepass_throttle (max(expires_at, deadline))",
)

_HIT = """
INSERT INTO gatepass_throttle (key, count, expires_at, deadline)
VALUES (:key, 1, :now + :window, 0)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN expires_at <= :now THEN 1 ELSE count + 1 END,
    expires_at = CASE
        WHEN expires_at <= :now THEN :now + :window
        WHEN count + 1 > :extend_after THEN max(expires_at, :now + :extend_window)
        ELSE expires_at
    END
RETURNING count, expires_at
"""

_SET_DEADLINE = """
INSERT INTO gatepass_throttle (key, count, expires_at, deadline) VALUES (?, 0, 0, ?)
ON CONFLICT (key) DO UPDATE SET deadline = max(deadline, excluded.deadline)
"""

_PURGE = "DELETE FROM gatepass_throttle WHERE max(expires_at, deadline) <= ?"

#: SQLite allows 32766 host parameters; the policy asks for four keys.
_MAX_KEYS = 500

_PURGE_EVERY = 1000


class SQLiteThrottleStore(SQLiteStore):
    SCHEMA = _SCHEMA

    def __init__(self, db: SQLiteDatabase) -> None:
        super().__init__(db)
        self._hits = 0

    async def hit(
        self,
        key: str,
        *,
        window: float,
        now: float,
        extend_after: int | None = None,
        extend_window: float | None = None,
    ) -> Hit:
        params = {
            "key": key,
            "now": now,
            "window": window,
            "extend_after": extend_after,
            "extend_window": window if extend_window is None else extend_window,
        }

        def count(conn: sqlite3.Connection) -> tuple[int, float]:
            row: tuple[int, float] = conn.execute(_HIT, params).fetchone()
            return row

        # A transaction because of RETURNING: the change is only complete
        # once the row has been fetched.
        found, expires_at = await self.db.transaction(count)
        self._hits += 1
        if self._hits % _PURGE_EVERY == 0:
            await self.purge_expired(now)
        return Hit(found, expires_at)

    async def set_deadline(self, key: str, *, until: float, now: float) -> None:
        await self._changed(_SET_DEADLINE, (key, until))

    async def deadlines(self, keys: Sequence[str], *, now: float) -> list[float]:
        if not keys:
            return []
        if len(keys) > _MAX_KEYS:
            raise ValueError("too many keys")
        marks = ",".join("?" * len(keys))
        sql = f"SELECT key, deadline FROM gatepass_throttle WHERE key IN ({marks})"  # noqa: S608
        params = tuple(keys)
        rows = await self.db.run(lambda conn: conn.execute(sql, params).fetchall())
        found: dict[str, float] = dict(rows)
        return [d if (d := found.get(k, 0.0)) > now else 0.0 for k in keys]

    async def clear(self, key: str) -> None:
        await self._changed("DELETE FROM gatepass_throttle WHERE key = ?", (key,))

    async def purge_expired(self, now: float) -> int:
        return await self._changed(_PURGE, (now,))
