"""Passkeys in SQLite: table ``gatepass_passkeys`` (PostgreSQL:
:mod:`gatepass.passkeys.postgres`, which shares the schema).

One row per credential, the credential id its primary key (so one
credential is never registered twice, to anyone).  Recording a use is one
``UPDATE … WHERE sign_count = $seen``: the database decides between two
assertions that saw the same counter.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.sqlite import SQLiteStore
from gatepass.passkeys.store import Passkey, dump_transports, load_transports

_INSERT = (
    "INSERT INTO gatepass_passkeys (credential_id, user_id, public_key, sign_count, name,"
    " created_at, transports, last_used_at, backup_eligible) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (credential_id) DO NOTHING"
)
_SELECT_ONE = (
    "SELECT credential_id, user_id, public_key, sign_count, name, created_at, transports,"
    " last_used_at, backup_eligible FROM gatepass_passkeys WHERE credential_id = ?"
)
_SELECT_USER = (
    "SELECT credential_id, user_id, public_key, sign_count, name, created_at, transports,"
    " last_used_at, backup_eligible FROM gatepass_passkeys WHERE user_id = ?"
    " ORDER BY created_at, credential_id"
)


def _schema(text: str, real: str, integer: str) -> tuple[str, ...]:
    return (
        "CREATE TABLE IF NOT EXISTS gatepass_passkeys ("
        f" credential_id {text} PRIMARY KEY, user_id {text} NOT NULL,"
        f" public_key {text} NOT NULL, sign_count {integer} NOT NULL, name {text} NOT NULL,"
        f" created_at {real} NOT NULL, transports {text} NOT NULL, last_used_at {real},"
        f" backup_eligible {integer} NOT NULL DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS gatepass_passkeys_user"
        " ON gatepass_passkeys (user_id, created_at)",
    )


def _params(p: Passkey) -> tuple[Any, ...]:
    return (
        p.credential_id, checked(p.user_id), p.public_key, p.sign_count, p.name, p.created_at,
        dump_transports(p.transports), p.last_used_at, int(p.backup_eligible),
    )  # fmt: skip


def _passkey(row: Any) -> Passkey:
    cid, uid, key, signs, name, created, transports, used, backup = tuple(row)
    return Passkey(
        credential_id=str(cid), user_id=str(uid), public_key=str(key), sign_count=int(signs),
        name=str(name), created_at=float(created), transports=load_transports(transports),
        last_used_at=None if used is None else float(used), backup_eligible=bool(backup),
    )  # fmt: skip


class SQLitePasskeyStore(SQLiteStore):
    SCHEMA = _schema("TEXT", "REAL", "INTEGER")

    async def add(self, passkey: Passkey) -> bool:
        return await self._changed(_INSERT, _params(passkey)) == 1

    async def get(self, credential_id: str) -> Passkey | None:
        def read(conn: sqlite3.Connection) -> Passkey | None:
            row = conn.execute(_SELECT_ONE, (credential_id,)).fetchone()
            return None if row is None else _passkey(row)

        return await self.db.run(read)

    async def list_user(self, user_id: str) -> list[Passkey]:
        uid = checked(user_id)

        def read(conn: sqlite3.Connection) -> list[Passkey]:
            rows = conn.execute(
                _SELECT_USER, (uid,)
            ).fetchall()  # fmt: skip
            return [_passkey(r) for r in rows]

        return await self.db.run(read)

    async def rename(self, user_id: str, credential_id: str, name: str) -> bool:
        sql = "UPDATE gatepass_passkeys SET name = ? WHERE credential_id = ? AND user_id = ?"
        return await self._changed(sql, (name, credential_id, checked(user_id))) == 1

    async def remove(self, user_id: str, credential_id: str) -> bool:
        sql = "DELETE FROM gatepass_passkeys WHERE credential_id = ? AND user_id = ?"
        return await self._changed(sql, (credential_id, checked(user_id))) == 1

    async def remove_user(self, user_id: str) -> int:
        sql = "DELETE FROM gatepass_passkeys WHERE user_id = ?"
        return await self._changed(sql, (checked(user_id),))

    async def record_use(
        self, credential_id: str, *, seen_count: int, new_count: int, now: float
    ) -> bool:
        sql = (
            "UPDATE gatepass_passkeys SET sign_count = ?, last_used_at = ?"
            " WHERE credential_id = ? AND sign_count = ?"
        )
        return await self._changed(sql, (new_count, now, credential_id, seen_count)) == 1
