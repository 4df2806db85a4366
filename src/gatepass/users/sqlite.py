"""Accounts in SQLite: the embedded default.

The table is created on first use.  Uniqueness of the email is the database's
job: ``create`` inserts and turns the constraint violation into UserExists,
so two concurrent registrations (even from two processes) cannot both win.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable

from gatepass.drivers.changes import ChangeCache
from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.sqlite import SQLiteDatabase, SQLiteStore
from gatepass.errors import InvalidRequest, UserExists
from gatepass.users.model import User

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS gatepass_users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    roles TEXT NOT NULL DEFAULT '[]',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS gatepass_users_created ON gatepass_users (created_at, id)",
    # Added after the first release: databases from before get the column
    # (every existing account unverified).  Run only when it is missing.
    "ALTER TABLE gatepass_users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0",
)

_COLUMNS = "id, email, password_hash, roles, disabled, created_at, email_verified"


def _user(row: tuple[object, ...]) -> User:
    user_id, email, password_hash, roles, disabled, created_at, verified = row
    assert isinstance(user_id, str) and isinstance(email, str)
    assert password_hash is None or isinstance(password_hash, str)
    assert isinstance(roles, str) and isinstance(created_at, float | int)
    return User(
        id=user_id,
        email=email,
        password_hash=password_hash,
        roles=tuple(json.loads(roles)),
        disabled=bool(disabled),
        created_at=float(created_at),
        email_verified=bool(verified),
    )


class SQLiteUserStore(SQLiteStore):
    """Accounts in SQLite; :meth:`get` by id is answered from a local cache.

    ``/auth/verify`` and ``/auth/me`` read the account on every request: the
    cache saves that trip to the database thread.  It is exact across
    processes by the database's change word, as the session cache is (see
    :mod:`gatepass.drivers.changes`): any committed write by any gatepass
    process on the file, a disabled account or new roles included, empties
    it before the next read.
    """

    SCHEMA = _SCHEMA

    def __init__(
        self,
        db: SQLiteDatabase,
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = 100_000,
        max_age: float = 30.0,
    ) -> None:
        super().__init__(db)
        self._clock = clock
        self._cache: ChangeCache[str, User] = ChangeCache(
            lambda: db.changes.word(), max_entries=max_entries, max_age=max_age
        )

    async def create(
        self, email: str, password_hash: str | None, roles: tuple[str, ...] = ()
    ) -> User:
        user = User(
            id=uuid.uuid4().hex,
            email=email,
            password_hash=password_hash,
            roles=tuple(roles),
            created_at=self._clock(),
        )

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO gatepass_users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0)",  # noqa: S608
                (user.id, email, password_hash, json.dumps(list(user.roles)), 0, user.created_at),
            )

        try:
            await self.db.run(insert)
        except sqlite3.IntegrityError:
            # The only constraint an insert of a fresh uuid can break is the
            # unique email.
            raise UserExists() from None
        return user

    async def get(self, user_id: str) -> User | None:
        key = checked(user_id)
        cached = self._cache.get(key)  # a hit allocates nothing
        if cached is not None:
            return cached
        return await self._cache.read_through(key, lambda: self._one("id", key))

    async def get_by_email(self, email: str) -> User | None:
        return await self._one("email", email)

    async def _one(self, column: str, value: str) -> User | None:
        sql = f"SELECT {_COLUMNS} FROM gatepass_users WHERE {column} = ?"  # noqa: S608
        row = await self.db.run(lambda conn: conn.execute(sql, (value,)).fetchone())
        return None if row is None else _user(row)

    async def list(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        if limit < 0 or offset < 0:
            raise InvalidRequest("limit and offset must not be negative.")
        sql = (
            f"SELECT {_COLUMNS} FROM gatepass_users "  # noqa: S608
            "ORDER BY created_at, id LIMIT ? OFFSET ?"
        )
        rows = await self.db.run(lambda conn: conn.execute(sql, (limit, offset)).fetchall())
        return [_user(row) for row in rows]

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._update("password_hash", password_hash, user_id)

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._update("disabled", int(disabled), user_id)

    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> None:
        await self._update("roles", json.dumps(list(roles)), user_id)

    async def set_email_verified(self, user_id: str, verified: bool) -> None:
        await self._update("email_verified", int(verified), user_id)

    async def set_email(self, user_id: str, email: str, *, expected: str) -> bool:
        sql = "UPDATE gatepass_users SET email = ?, email_verified = 1 WHERE id = ? AND email = ?"
        try:
            return await self._changed(sql, (email, checked(user_id), expected)) == 1
        except sqlite3.IntegrityError:
            # The only constraint this update can break is the unique email.
            raise UserExists() from None

    async def _update(self, column: str, value: object, user_id: str) -> None:
        sql = f"UPDATE gatepass_users SET {column} = ? WHERE id = ?"  # noqa: S608
        await self._changed(sql, (value, checked(user_id)))
