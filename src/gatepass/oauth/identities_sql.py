"""External identities in SQLite and PostgreSQL: table ``gatepass_identities``.

The primary key (issuer, subject) is what decides a race between two first
logins of the same external account; an insert that loses becomes
:class:`~gatepass.oauth.identities.IdentityLinked`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.postgres import PostgresStore
from gatepass.drivers.sqlite import SQLiteStore
from gatepass.oauth.identities import ExternalIdentity, IdentityLinked

_COLUMNS = "issuer, subject, user_id, provider, email, created_at"

_INDEX = "CREATE INDEX IF NOT EXISTS gatepass_identities_user ON gatepass_identities (user_id)"

_SQLITE_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS gatepass_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    email TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (issuer, subject)
)
""",
    _INDEX,
)

_PG_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS gatepass_identities (
    issuer text NOT NULL,
    subject text NOT NULL,
    user_id text NOT NULL,
    provider text NOT NULL,
    email text,
    created_at double precision NOT NULL,
    PRIMARY KEY (issuer, subject)
)
""",
    _INDEX,
)


def _row(values: Any) -> ExternalIdentity:
    issuer, subject, user_id, provider, email, created_at = tuple(values)
    return ExternalIdentity(
        issuer=str(issuer), subject=str(subject), user_id=str(user_id),
        provider=str(provider), email=None if email is None else str(email),
        created_at=float(created_at),
    )  # fmt: skip


def _values(i: ExternalIdentity) -> tuple[object, ...]:
    return (i.issuer, i.subject, i.user_id, i.provider, i.email, i.created_at)


class SQLiteIdentityStore(SQLiteStore):
    SCHEMA = _SQLITE_SCHEMA

    async def get(self, issuer: str, subject: str) -> ExternalIdentity | None:
        sql = f"SELECT {_COLUMNS} FROM gatepass_identities WHERE issuer = ? AND subject = ?"  # noqa: S608
        row = await self.db.run(lambda conn: conn.execute(sql, (issuer, subject)).fetchone())
        return None if row is None else _row(row)

    async def add(self, identity: ExternalIdentity) -> None:
        checked(identity.user_id)
        sql = f"INSERT INTO gatepass_identities ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"  # noqa: S608
        try:
            await self.db.run(lambda conn: conn.execute(sql, _values(identity)))
        except sqlite3.IntegrityError:
            raise IdentityLinked() from None

    async def list_user(self, user_id: str) -> list[ExternalIdentity]:
        sql = (
            f"SELECT {_COLUMNS} FROM gatepass_identities "  # noqa: S608
            "WHERE user_id = ? ORDER BY created_at"
        )
        params = (checked(user_id),)
        rows = await self.db.run(lambda conn: conn.execute(sql, params).fetchall())
        return [_row(r) for r in rows]

    async def remove(self, issuer: str, subject: str, user_id: str) -> bool:
        sql = "DELETE FROM gatepass_identities WHERE issuer = ? AND subject = ? AND user_id = ?"
        return bool(await self._changed(sql, (issuer, subject, checked(user_id))))


class PostgresIdentityStore(PostgresStore):
    SCHEMA = _PG_SCHEMA

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        async with self._connection() as conn:
            rows: list[Any] = await conn.fetch(sql, *args)
            return rows

    async def get(self, issuer: str, subject: str) -> ExternalIdentity | None:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM gatepass_identities WHERE issuer = $1 AND subject = $2",  # noqa: S608
            issuer, subject,
        )  # fmt: skip
        return _row(rows[0]) if rows else None

    async def add(self, identity: ExternalIdentity) -> None:
        checked(identity.user_id)
        async with self._connection() as conn:
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
            checked(user_id),
        )
        return [_row(r) for r in rows]

    async def remove(self, issuer: str, subject: str, user_id: str) -> bool:
        async with self._connection() as conn:
            status: str = await conn.execute(
                "DELETE FROM gatepass_identities "
                "WHERE issuer = $1 AND subject = $2 AND user_id = $3",
                issuer, subject, checked(user_id),
            )  # fmt: skip
        return status != "DELETE 0"
