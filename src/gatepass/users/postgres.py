"""Accounts in PostgreSQL: for deployments of more than one instance.

The table is created on first use, inside a transaction that holds an advisory
lock, so that instances starting together do not trip over each other's
``CREATE TABLE IF NOT EXISTS`` (which is not safe under concurrency on its
own).  The unique index on the email decides races between registrations.

:meth:`PostgresUserStore.get` by id is answered from a local cache, kept
exact by LISTEN/NOTIFY like the session and revocation caches
(:mod:`gatepass.drivers.pg_changes`): the table's trigger announces every
committed write, by any process or an admin's SQL, and the notification
empties the cache; while the listening connection is down, every read goes
to the database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from gatepass.drivers.changes import ChangeCache
from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.pg_changes import publishes_writes, trigger_ddl
from gatepass.drivers.postgres import PostgresPool, PostgresStore, count
from gatepass.errors import InvalidRequest, UserExists
from gatepass.users.model import User

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS gatepass_users (
    id text PRIMARY KEY,
    email text NOT NULL UNIQUE,
    password_hash text,
    roles text[] NOT NULL DEFAULT '{}',
    disabled boolean NOT NULL DEFAULT false,
    created_at double precision NOT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS gatepass_users_created ON gatepass_users (created_at, id)",
    # Added after the first release: databases from before get the column.
    "ALTER TABLE gatepass_users ADD COLUMN IF NOT EXISTS email_verified boolean NOT NULL"
    " DEFAULT false",
)

_COLUMNS = "id, email, password_hash, roles, disabled, created_at, email_verified"


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        password_hash=row["password_hash"],
        roles=tuple(row["roles"]),
        disabled=row["disabled"],
        created_at=row["created_at"],
        email_verified=row["email_verified"],
    )


@publishes_writes(
    "create", "set_password_hash", "set_disabled", "set_roles", "set_email_verified", "set_email",
)  # fmt: skip
class PostgresUserStore(PostgresStore):
    """Accounts in PostgreSQL; :meth:`get` by id is answered from a local cache.

    ``/auth/verify`` and ``/auth/me`` read the account on every request.  The
    cache is exact across processes and instances: any committed write to
    the table (a disabled account, new roles, a new password) empties it
    before the next read, and it is bypassed while the change stream is not
    known to be alive.  Lookups by email (logins) are not cached.
    """

    SCHEMA = (*_SCHEMA, *trigger_ddl("gatepass_users"))

    def __init__(
        self,
        pool: PostgresPool,
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = 100_000,
        max_age: float = 30.0,
    ) -> None:
        super().__init__(pool)
        self._clock = clock
        self._cache: ChangeCache[str, User] = ChangeCache(
            pool.changes.word, max_entries=max_entries, max_age=max_age
        )

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        async with self._connection() as conn:
            rows: list[Any] = await conn.fetch(sql, *args)
            return rows

    async def _execute(self, sql: str, *args: object) -> None:
        async with self._connection() as conn:
            await conn.execute(sql, *args)

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
        # The schema is created on entering the connection, outside the try:
        # a unique violation from DDL must not pass for a duplicate email.
        async with self._connection() as conn:
            try:
                await conn.execute(
                    f"INSERT INTO gatepass_users ({_COLUMNS})"  # noqa: S608
                    " VALUES ($1, $2, $3, $4, false, $5, false)",
                    user.id,
                    email,
                    password_hash,
                    list(user.roles),
                    user.created_at,
                )
            except asyncpg.UniqueViolationError:
                # The only unique key a fresh uuid4 can collide on is the email.
                raise UserExists() from None
        return user

    async def get(self, user_id: str) -> User | None:
        key = checked(user_id)
        cached = self._cache.get(key)  # a hit allocates nothing
        if cached is not None:
            return cached
        return await self._cache.read_through(key, lambda: self._get(key))

    async def _get(self, user_id: str) -> User | None:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM gatepass_users WHERE id = $1",  # noqa: S608
            user_id,
        )
        return _user(rows[0]) if rows else None

    async def get_by_email(self, email: str) -> User | None:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM gatepass_users WHERE email = $1",  # noqa: S608
            email,
        )
        return _user(rows[0]) if rows else None

    async def list(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        if limit < 0 or offset < 0:
            raise InvalidRequest("limit and offset must not be negative.")
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM gatepass_users "  # noqa: S608
            "ORDER BY created_at, id LIMIT $1 OFFSET $2",
            limit,
            offset,
        )
        return [_user(row) for row in rows]

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._execute(
            "UPDATE gatepass_users SET password_hash = $2 WHERE id = $1",
            checked(user_id),
            password_hash,
        )

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._execute(
            "UPDATE gatepass_users SET disabled = $2 WHERE id = $1", checked(user_id), disabled
        )

    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> None:
        await self._execute(
            "UPDATE gatepass_users SET roles = $2 WHERE id = $1", checked(user_id), list(roles)
        )

    async def set_email_verified(self, user_id: str, verified: bool) -> None:
        await self._execute(
            "UPDATE gatepass_users SET email_verified = $2 WHERE id = $1",
            checked(user_id),
            verified,
        )

    async def set_email(self, user_id: str, email: str, *, expected: str) -> bool:
        # The schema is created on entering the connection, outside the try.
        async with self._connection() as conn:
            try:
                status = await conn.execute(
                    "UPDATE gatepass_users SET email = $2, email_verified = true"
                    " WHERE id = $1 AND email = $3",
                    checked(user_id),
                    email,
                    expected,
                )
            except asyncpg.UniqueViolationError:
                raise UserExists() from None
        return count(status) == 1
