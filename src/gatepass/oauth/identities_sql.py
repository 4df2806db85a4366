"""External identities in SQLite and PostgreSQL: table ``gatepass_identities``.

The primary key (issuer, subject) is what decides a race between two first
logins of the same external account; an insert that loses becomes
:class:`~gatepass.oauth.identities.IdentityLinked`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import asyncpg

from gatepass.oauth.identities import ExternalIdentity, IdentityLinked
from gatepass.stores._postgres import PostgresPool
from gatepass.stores._sqlite import SQLiteDatabase

T = TypeVar("T")

_COLUMNS = "issuer, subject, user_id, provider, email, created_at"

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS gatepass_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    email TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX IF NOT EXISTS gatepass_identities_user ON gatepass_identities (user_id);
"""

_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS gatepass_identities (
    issuer text NOT NULL,
    subject text NOT NULL,
    user_id text NOT NULL,
    provider text NOT NULL,
    email text,
    created_at double precision NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX IF NOT EXISTS gatepass_identities_user ON gatepass_identities (user_id);
"""

_SCHEMA_LOCK = 0x6761_7465_6964_6E74  # "gateidnt"


def _row(values: Any) -> ExternalIdentity:
    issuer, subject, user_id, provider, email, created_at = tuple(values)
    return ExternalIdentity(
        issuer=str(issuer), subject=str(subject), user_id=str(user_id),
        provider=str(provider), email=None if email is None else str(email),
        created_at=float(created_at),
    )  # fmt: skip


def _values(i: ExternalIdentity) -> tuple[object, ...]:
    return (i.issuer, i.subject, i.user_id, i.provider, i.email, i.created_at)


class SQLiteIdentityStore:
    def __init__(self, db: SQLiteDatabase, *, close_db: bool = False) -> None:
        self._db = db
        self._close_db = close_db
        self._ready = False
        self._lock = asyncio.Lock()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if not self._ready:
            async with self._lock:
                if not self._ready:
                    await self._db.run(lambda conn: conn.executescript(_SQLITE_SCHEMA))
                    self._ready = True
        return await self._db.run(fn)

    async def get(self, issuer: str, subject: str) -> ExternalIdentity | None:
        sql = f"SELECT {_COLUMNS} FROM gatepass_identities WHERE issuer = ? AND subject = ?"  # noqa: S608
        row = await self._run(lambda conn: conn.execute(sql, (issuer, subject)).fetchone())
        return None if row is None else _row(row)

    async def add(self, identity: ExternalIdentity) -> None:
        sql = f"INSERT INTO gatepass_identities ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"  # noqa: S608
        try:
            await self._run(lambda conn: conn.execute(sql, _values(identity)))
        except sqlite3.IntegrityError:
            raise IdentityLinked() from None

    async def list_user(self, user_id: str) -> list[ExternalIdentity]:
        sql = (
            f"SELECT {_COLUMNS} FROM gatepass_identities "  # noqa: S608
            "WHERE user_id = ? ORDER BY created_at"
        )
        rows = await self._run(lambda conn: conn.execute(sql, (user_id,)).fetchall())
        return [_row(r) for r in rows]

    async def remove(self, issuer: str, subject: str, user_id: str) -> bool:
        sql = "DELETE FROM gatepass_identities WHERE issuer = ? AND subject = ? AND user_id = ?"
        cursor = await self._run(lambda conn: conn.execute(sql, (issuer, subject, user_id)))
        return bool(cursor.rowcount)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._close_db:
            await self._db.close()


class PostgresIdentityStore:
    def __init__(self, pool: PostgresPool, *, close_pool: bool = False) -> None:
        self._pool = pool
        self._close_pool = close_pool
        self._ready = False
        self._lock = asyncio.Lock()

    async def _ensure_schema(self) -> None:
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            async with self._pool.connection() as conn, conn.transaction():
                # CREATE … IF NOT EXISTS is not safe under concurrency alone.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                await conn.execute(_PG_SCHEMA)
            self._ready = True

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        await self._ensure_schema()
        async with self._pool.connection() as conn:
            rows: list[Any] = await conn.fetch(sql, *args)
            return rows

    async def get(self, issuer: str, subject: str) -> ExternalIdentity | None:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM gatepass_identities WHERE issuer = $1 AND subject = $2",  # noqa: S608
            issuer, subject,
        )  # fmt: skip
        return _row(rows[0]) if rows else None

    async def add(self, identity: ExternalIdentity) -> None:
        await self._ensure_schema()
        async with self._pool.connection() as conn:
            try:
                await conn.execute(
                    f"INSERT INTO gatepass_identities ({_COLUMNS}) "  # noqa: S608
                    "VALUES ($1, $2, $3, $4, $5, $6)",
                    *_values(identity),
                )
            except asyncpg.UniqueViolationError:
                raise IdentityLinked() from None

    async def list_user(self, user_id: str) -> list[ExternalIdentity]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM gatepass_identities "  # noqa: S608
            "WHERE user_id = $1 ORDER BY created_at",
            user_id,
        )
        return [_row(r) for r in rows]

    async def remove(self, issuer: str, subject: str, user_id: str) -> bool:
        await self._ensure_schema()
        async with self._pool.connection() as conn:
            status: str = await conn.execute(
                "DELETE FROM gatepass_identities "
                "WHERE issuer = $1 AND subject = $2 AND user_id = $3",
                issuer, subject, user_id,
            )  # fmt: skip
        return status != "DELETE 0"

    async def ping(self) -> None:
        async with self._pool.connection() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._close_pool:
            await self._pool.close()
