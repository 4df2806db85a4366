"""SQLite one-time token store: one row per token.

``take`` is one ``DELETE … RETURNING``: the row goes with the statement that
reads it, so two takes (threads or processes sharing the file) cannot both
see it.  An expired token is deleted by the take that finds it.
"""

from __future__ import annotations

import sqlite3

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.sqlite import SQLiteStore
from gatepass.onetime.store import Grant

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS gatepass_one_time_tokens (
        token_hash TEXT PRIMARY KEY NOT NULL,
        purpose TEXT NOT NULL,
        user_id TEXT NOT NULL,
        data TEXT NOT NULL,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS gatepass_one_time_tokens_user"
    " ON gatepass_one_time_tokens (user_id, purpose)",
)

_TAKE = (
    "DELETE FROM gatepass_one_time_tokens WHERE token_hash = ? AND purpose = ?"
    " RETURNING user_id, data, expires_at"
)


class SQLiteOneTimeTokenStore(SQLiteStore):
    SCHEMA = _SCHEMA

    async def put(
        self, token_hash: str, *, purpose: str, user_id: str, data: str, expires_at: float
    ) -> None:
        params = (token_hash, purpose, checked(user_id), data, expires_at)
        await self._changed("INSERT INTO gatepass_one_time_tokens VALUES (?, ?, ?, ?, ?)", params)

    async def take(self, token_hash: str, *, purpose: str, now: float) -> Grant | None:
        def take(conn: sqlite3.Connection) -> tuple[str, str, float] | None:
            row: tuple[str, str, float] | None = conn.execute(
                _TAKE, (token_hash, purpose)
            ).fetchone()
            return row

        # A transaction because of RETURNING: the delete is only complete
        # once the row has been fetched.
        row = await self.db.transaction(take)
        if row is None or row[2] <= now:
            return None
        return Grant(row[0], row[1])

    async def drop_user(self, user_id: str, purpose: str) -> int:
        return await self._changed(
            "DELETE FROM gatepass_one_time_tokens WHERE user_id = ? AND purpose = ?",
            (checked(user_id), purpose),
        )

    async def purge_expired(self, now: float) -> int:
        return await self._changed(
            "DELETE FROM gatepass_one_time_tokens WHERE expires_at <= ?", (now,)
        )
