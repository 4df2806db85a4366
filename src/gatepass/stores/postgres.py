"""PostgreSQL session store.

The same table as the SQLite store: a real column per field (roles and data
as JSON text, timestamps as double precision so they round-trip exactly).
The table is created on first use, not at start-up, so the store can be
built while PostgreSQL is down (see :class:`~gatepass.drivers.postgres.PostgresPool`).

``replace`` moves the row with one ``UPDATE … SET key``, so the fields it
does not set are the ones committed at that moment, and a ``set_roles`` that
waited for the row re-checks and rewrites the moved row.  ``replace`` and
``delete_user`` also take a per-user advisory lock, so "log out everywhere"
running while a session is rotated deletes the new session or makes the
rotation fail, never lets it survive, whatever the row-level waits do.
"""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg

from gatepass.drivers.changes import ChangeCache
from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.pg_changes import publishes_writes, trigger_ddl
from gatepass.drivers.postgres import PostgresPool, PostgresStore, count
from gatepass.drivers.registry import Schema
from gatepass.sessions.record import SessionRecord
from gatepass.sessions.store import UNKNOWN, Unknown

_SCHEMA: Schema = (
    """
CREATE TABLE IF NOT EXISTS gatepass_sessions (
    key text PRIMARY KEY,
    user_id text NOT NULL,
    roles text NOT NULL,
    created_at double precision NOT NULL,
    last_seen_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    absolute_expires_at double precision NOT NULL,
    idle_timeout integer NOT NULL,
    remember boolean NOT NULL,
    ip text,
    user_agent text,
    data text NOT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS gatepass_sessions_user_id"
    " ON gatepass_sessions (user_id, created_at)",
    "CREATE INDEX IF NOT EXISTS gatepass_sessions_expires_at ON gatepass_sessions (expires_at)",
)

_COLUMNS = (
    "key, user_id, roles, created_at, last_seen_at, expires_at, absolute_expires_at,"
    " idle_timeout, remember, ip, user_agent, data"
)
_INSERT = (
    f"INSERT INTO gatepass_sessions ({_COLUMNS})"  # noqa: S608
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)
_SELECT = f"SELECT {_COLUMNS} FROM gatepass_sessions"  # noqa: S608
_USER_LOCK = "SELECT pg_advisory_xact_lock(hashtext('gatepass_sessions:' || $1))"


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _params(r: SessionRecord) -> tuple[Any, ...]:
    return (
        r.key, r.user_id, _json(list(r.roles)), r.created_at, r.last_seen_at, r.expires_at,
        r.absolute_expires_at, r.idle_timeout, r.remember, r.ip, r.user_agent, _json(r.data),
    )  # fmt: skip


def _record(row: asyncpg.Record) -> SessionRecord:
    return SessionRecord(
        key=row["key"],
        user_id=row["user_id"],
        roles=tuple(json.loads(row["roles"])),
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        expires_at=row["expires_at"],
        absolute_expires_at=row["absolute_expires_at"],
        idle_timeout=row["idle_timeout"],
        remember=row["remember"],
        ip=row["ip"],
        user_agent=row["user_agent"],
        data=json.loads(row["data"]),
    )


class PostgresSessionStore(PostgresStore):
    SCHEMA = _SCHEMA

    async def create(self, record: SessionRecord) -> None:
        checked(record.user_id)
        async with self._connection() as conn:
            try:
                await conn.execute(_INSERT, *_params(record))
            except asyncpg.UniqueViolationError:
                raise ValueError("session key already exists") from None

    async def get(self, key: str) -> SessionRecord | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE key = $1", key)
        return None if row is None else _record(row)

    async def touch(self, key: str, *, last_seen_at: float, expires_at: float) -> bool:
        sql = "UPDATE gatepass_sessions SET last_seen_at = $1, expires_at = $2 WHERE key = $3"
        async with self._connection() as conn:
            status = await conn.execute(sql, last_seen_at, expires_at, key)
        return count(status) == 1

    async def update_data(self, key: str, data: dict[str, object]) -> bool:
        sql = "UPDATE gatepass_sessions SET data = $1 WHERE key = $2"
        async with self._connection() as conn:
            status = await conn.execute(sql, _json(data), key)
        return count(status) == 1

    async def replace(
        self, old_key: str, new_key: str, *, last_seen_at: float, expires_at: float
    ) -> SessionRecord | None:
        sql = (
            "UPDATE gatepass_sessions SET key = $1, last_seen_at = $2, expires_at = $3"  # noqa: S608
            f" WHERE key = $4 RETURNING {_COLUMNS}"
        )
        async with self._connection() as conn:
            try:
                async with conn.transaction():
                    # A session's user never changes, so it can be read before
                    # the lock; the UPDATE after it decides whether we move.
                    user_id = await conn.fetchval(
                        "SELECT user_id FROM gatepass_sessions WHERE key = $1", old_key
                    )
                    if user_id is None:
                        return None
                    await conn.execute(_USER_LOCK, user_id)
                    row = await conn.fetchrow(sql, new_key, last_seen_at, expires_at, old_key)
            except asyncpg.UniqueViolationError:
                raise ValueError("session key already exists") from None
        return None if row is None else _record(row)

    async def delete(self, key: str) -> SessionRecord | None:
        sql = f"DELETE FROM gatepass_sessions WHERE key = $1 RETURNING {_COLUMNS}"  # noqa: S608
        async with self._connection() as conn:
            row = await conn.fetchrow(sql, key)
        return None if row is None else _record(row)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        sql = f"{_SELECT} WHERE user_id = $1 ORDER BY created_at, key"
        async with self._connection() as conn:
            rows = await conn.fetch(sql, checked(user_id))
        return [_record(row) for row in rows]

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        sql = "DELETE FROM gatepass_sessions WHERE user_id = $1 AND key IS DISTINCT FROM $2"
        checked(user_id)
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_USER_LOCK, user_id)
            # A statement after the lock: its snapshot includes whatever the
            # rotation we waited for committed.
            return count(await conn.execute(sql, user_id, keep))

    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> int:
        sql = "UPDATE gatepass_sessions SET roles = $1 WHERE user_id = $2"
        async with self._connection() as conn:
            return count(await conn.execute(sql, _json(list(roles)), checked(user_id)))

    async def purge_expired(self, now: float) -> int:
        async with self._connection() as conn:
            status = await conn.execute("DELETE FROM gatepass_sessions WHERE expires_at <= $1", now)
        return count(status)


@publishes_writes(
    "create", "touch", "update_data", "replace", "delete", "delete_user", "set_roles",
    "purge_expired",
)  # fmt: skip
class CachingPostgresSessionStore(PostgresSessionStore):
    """:class:`PostgresSessionStore` with a local read cache kept exact by
    LISTEN/NOTIFY (:mod:`gatepass.drivers.pg_changes`): a cached session
    costs no query until something changes the sessions table."""

    SCHEMA = (*PostgresSessionStore.SCHEMA, *trigger_ddl("gatepass_sessions"))

    def __init__(self, pool: PostgresPool, *, max_entries: int = 100_000,
                 max_age: float = 30.0) -> None:  # fmt: skip
        super().__init__(pool)
        self._cache: ChangeCache[str, SessionRecord] = ChangeCache(
            pool.changes.word, max_entries=max_entries, max_age=max_age
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
