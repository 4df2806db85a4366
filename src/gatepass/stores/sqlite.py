"""SQLite session store: one file, no server, safe for several processes.

One row per session with a real column for every field, so touch, set_roles
and purge are single UPDATE/DELETE statements that never decode a row.
Roles and data are JSON text.  Writes that read first run in ``BEGIN
IMMEDIATE`` transactions (see :class:`~gatepass.drivers.sqlite.SQLiteDatabase`),
which also makes them atomic against other processes using the same file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from gatepass.drivers.changes import ChangeCache
from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.sqlite import SQLiteDatabase, SQLiteStore
from gatepass.sessions.record import SessionRecord
from gatepass.sessions.store import UNKNOWN, Unknown

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS gatepass_sessions (
        key TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        roles TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        absolute_expires_at REAL NOT NULL,
        idle_timeout INTEGER NOT NULL,
        remember INTEGER NOT NULL,
        ip TEXT,
        user_agent TEXT,
        data TEXT NOT NULL
    )
    """,
    # (user_id, created_at) serves list_user's ORDER BY as well as the lookup.
    "CREATE INDEX IF NOT EXISTS gatepass_sessions_user_id"
    " ON gatepass_sessions (user_id, created_at)",
    "CREATE INDEX IF NOT EXISTS gatepass_sessions_expires_at ON gatepass_sessions (expires_at)",
)

_COLUMNS = (
    "key, user_id, roles, created_at, last_seen_at, expires_at, absolute_expires_at,"
    " idle_timeout, remember, ip, user_agent, data"
)
_INSERT = f"INSERT INTO gatepass_sessions ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"  # noqa: S608
_SELECT = f"SELECT {_COLUMNS} FROM gatepass_sessions"  # noqa: S608


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _params(r: SessionRecord) -> tuple[Any, ...]:
    return (
        r.key, r.user_id, _json(list(r.roles)), r.created_at, r.last_seen_at, r.expires_at,
        r.absolute_expires_at, r.idle_timeout, int(r.remember), r.ip, r.user_agent,
        _json(r.data),
    )  # fmt: skip


def _is_duplicate(exc: sqlite3.IntegrityError) -> bool:
    return exc.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY"


def _record(row: tuple[Any, ...]) -> SessionRecord:
    (key, user_id, roles, created_at, last_seen_at, expires_at, absolute_expires_at,
     idle_timeout, remember, ip, user_agent, data) = row  # fmt: skip
    return SessionRecord(
        key=key,
        user_id=user_id,
        roles=tuple(json.loads(roles)),
        created_at=created_at,
        last_seen_at=last_seen_at,
        expires_at=expires_at,
        absolute_expires_at=absolute_expires_at,
        idle_timeout=idle_timeout,
        remember=bool(remember),
        ip=ip,
        user_agent=user_agent,
        data=json.loads(data),
    )


class SQLiteSessionStore(SQLiteStore):
    SCHEMA = _SCHEMA

    async def create(self, record: SessionRecord) -> None:
        checked(record.user_id)
        params = _params(record)
        try:
            await self.db.run(lambda conn: conn.execute(_INSERT, params))
        except sqlite3.IntegrityError as exc:
            if _is_duplicate(exc):
                raise ValueError("session key already exists") from None
            raise

    async def get(self, key: str) -> SessionRecord | None:
        row = await self.db.run(
            lambda conn: conn.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
        )
        return None if row is None else _record(row)

    async def touch(self, key: str, *, last_seen_at: float, expires_at: float) -> bool:
        sql = "UPDATE gatepass_sessions SET last_seen_at = ?, expires_at = ? WHERE key = ?"
        return await self._changed(sql, (last_seen_at, expires_at, key)) == 1

    async def update_data(self, key: str, data: dict[str, object]) -> bool:
        sql = "UPDATE gatepass_sessions SET data = ? WHERE key = ?"
        return await self._changed(sql, (_json(data), key)) == 1

    async def replace(
        self, old_key: str, new_key: str, *, last_seen_at: float, expires_at: float
    ) -> SessionRecord | None:
        # One statement moves the row in place, so every other column is the
        # one stored at that moment.  A transaction because of RETURNING (see
        # delete).
        sql = (
            "UPDATE gatepass_sessions SET key = ?, last_seen_at = ?, expires_at = ?"  # noqa: S608
            f" WHERE key = ? RETURNING {_COLUMNS}"
        )
        params = (new_key, last_seen_at, expires_at, old_key)

        def move(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
            return row

        try:
            row = await self.db.transaction(move)
        except sqlite3.IntegrityError as exc:
            if _is_duplicate(exc):
                raise ValueError("session key already exists") from None
            raise
        return None if row is None else _record(row)

    async def delete(self, key: str) -> SessionRecord | None:
        sql = f"DELETE FROM gatepass_sessions WHERE key = ? RETURNING {_COLUMNS}"  # noqa: S608

        def drop(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(sql, (key,)).fetchone()
            return row

        # A transaction, because a RETURNING statement is only finished (and
        # its change only durable) once every row has been fetched.
        row = await self.db.transaction(drop)
        return None if row is None else _record(row)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        sql = f"{_SELECT} WHERE user_id = ? ORDER BY created_at, key"
        params = (checked(user_id),)
        rows = await self.db.run(lambda conn: conn.execute(sql, params).fetchall())
        return [_record(row) for row in rows]

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        sql = "DELETE FROM gatepass_sessions WHERE user_id = ? AND key IS NOT ?"
        return await self._changed(sql, (checked(user_id), keep))

    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> int:
        sql = "UPDATE gatepass_sessions SET roles = ? WHERE user_id = ?"
        return await self._changed(sql, (_json(list(roles)), checked(user_id)))

    async def purge_expired(self, now: float) -> int:
        # Same rule as SessionRecord.is_expired: expired once now >= expires_at.
        return await self._changed("DELETE FROM gatepass_sessions WHERE expires_at <= ?", (now,))


class CachingSQLiteSessionStore(SQLiteSessionStore):
    """:class:`SQLiteSessionStore` with a local read cache, exact across processes.

    A cached session costs one memory read of the database's change word
    (see :mod:`gatepass.drivers.changes`) instead of a trip to the database
    thread; any write by any gatepass process on the file empties it.
    """

    def __init__(
        self, db: SQLiteDatabase, *, max_entries: int = 100_000, max_age: float = 30.0
    ) -> None:
        super().__init__(db)
        self._cache: ChangeCache[str, SessionRecord] = ChangeCache(
            lambda: db.changes.word(), max_entries=max_entries, max_age=max_age
        )

    async def get(self, key: str) -> SessionRecord | None:
        cached = self._cache.get(key)  # a hit allocates nothing
        if cached is not None and _live(cached):
            return cached
        load = super().get
        return await self._cache.read_through(key, lambda: load(key), _live)

    def cached(self, key: str) -> SessionRecord | Unknown:
        """The cached session, exact as :meth:`get`; ``UNKNOWN`` on a miss."""
        cached = self._cache.get(key)
        return cached if cached is not None and _live(cached) else UNKNOWN


def _live(record: SessionRecord) -> bool:
    return not record.is_expired(time.time())
