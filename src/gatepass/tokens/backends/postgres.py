"""PostgreSQL refresh and revocation stores.

The same tables as the SQLite stores.  ``rotate`` locks the family's row with
``SELECT … FOR UPDATE`` inside a transaction, so concurrent rotations of one
family wait for each other and each sees the state the last one committed.
Tables are created on first use (the pool connects lazily, so the stores can
be built while PostgreSQL is down).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from gatepass.stores._postgres import PostgresPool
from gatepass.tokens.backends.sqlite import COLUMNS, family_from_row, family_params
from gatepass.tokens.refresh import Family, RotateOutcome, decide

#: Advisory lock serialising DDL across processes starting together; the same
#: value as the session store's, so all gatepass DDL takes turns.
_SCHEMA_LOCK = 0x6761746570617373

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gatepass_refresh_families (
    family_id text PRIMARY KEY,
    user_id text NOT NULL,
    created_at double precision NOT NULL,
    absolute_expires_at double precision NOT NULL,
    current_hash text NOT NULL,
    previous_hash text,
    rotated_at double precision,
    generation bigint NOT NULL,
    revoked boolean NOT NULL,
    data text NOT NULL
);
CREATE INDEX IF NOT EXISTS gatepass_refresh_families_user
    ON gatepass_refresh_families (user_id, created_at);
CREATE INDEX IF NOT EXISTS gatepass_refresh_families_expiry
    ON gatepass_refresh_families (absolute_expires_at);
CREATE TABLE IF NOT EXISTS gatepass_revoked (
    kind text NOT NULL,
    user_id text NOT NULL,
    jti text NOT NULL,
    until double precision NOT NULL,
    PRIMARY KEY (kind, user_id, jti)
);
CREATE INDEX IF NOT EXISTS gatepass_revoked_until ON gatepass_revoked (until);
CREATE TABLE IF NOT EXISTS gatepass_generations (
    user_id text PRIMARY KEY,
    generation bigint NOT NULL
);
"""

_SELECT = f"SELECT {COLUMNS} FROM gatepass_refresh_families"  # noqa: S608
_INSERT = (
    f"INSERT INTO gatepass_refresh_families ({COLUMNS})"  # noqa: S608
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
_SAVE = (
    "UPDATE gatepass_refresh_families SET current_hash = $1, previous_hash = $2,"
    " rotated_at = $3, revoked = $4 WHERE family_id = $5"
)
_UPSERT = (
    "INSERT INTO gatepass_revoked (kind, user_id, jti, until) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (kind, user_id, jti) DO UPDATE SET until = excluded.until"
)
_LIVE = (
    "EXISTS (SELECT 1 FROM gatepass_revoked"
    " WHERE kind = $1 AND user_id = $2 AND jti = $3 AND until > $4)"
)
_GENERATION = "COALESCE((SELECT generation FROM gatepass_generations WHERE user_id = $2), 0)"
_BUMP = (
    "INSERT INTO gatepass_generations (user_id, generation) VALUES ($1, 1) ON CONFLICT (user_id)"
    " DO UPDATE SET generation = gatepass_generations.generation + 1 RETURNING generation"
)


def _count(status: str) -> int:
    # asyncpg returns the command tag, e.g. "UPDATE 3".
    return int(status.rsplit(" ", 1)[1])


class _Base:
    def __init__(self, pool: PostgresPool, *, close_pool: bool = False) -> None:
        self.pool = pool
        self._close_pool = close_pool
        self._schema_ready = False

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.connection() as conn:
            if not self._schema_ready:
                # IF NOT EXISTS is not safe against itself (two processes can
                # both pass the check); the advisory lock makes them take turns.
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                    await conn.execute(_SCHEMA)
                self._schema_ready = True
            yield conn

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._close_pool:
            await self.pool.close()


class PostgresRefreshStore(_Base):
    @classmethod
    def from_dsn(cls, dsn: str) -> PostgresRefreshStore:
        """A store owning its pool; nothing connects until first use."""
        return cls(PostgresPool(dsn), close_pool=True)

    async def create(self, family: Family) -> None:
        async with self._connection() as conn:
            try:
                await conn.execute(_INSERT, *family_params(family))
            except asyncpg.UniqueViolationError:
                raise ValueError("refresh family already exists") from None

    async def rotate(
        self, family_id: str, presented_hash: str, successor_hash: str, *, now: float, grace: float
    ) -> tuple[RotateOutcome, Family | None]:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(f"{_SELECT} WHERE family_id = $1 FOR UPDATE", family_id)
            current = None if row is None else family_from_row(row)
            outcome, family, changed = decide(
                current, presented_hash, successor_hash, now=now, grace=grace
            )
            if changed and family is not None:
                await conn.execute(_SAVE, family.current_hash, family.previous_hash,
                                   family.rotated_at, family.revoked, family_id)  # fmt: skip
        return outcome, family

    async def get(self, family_id: str) -> Family | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE family_id = $1", family_id)
        return None if row is None else family_from_row(row)

    async def revoke(self, family_id: str) -> Family | None:
        sql = (
            "UPDATE gatepass_refresh_families SET revoked = true"  # noqa: S608
            f" WHERE family_id = $1 RETURNING {COLUMNS}"
        )
        async with self._connection() as conn:
            row = await conn.fetchrow(sql, family_id)
        return None if row is None else family_from_row(row)

    async def revoke_user(self, user_id: str) -> int:
        sql = (
            "UPDATE gatepass_refresh_families SET revoked = true WHERE user_id = $1 AND NOT revoked"
        )
        async with self._connection() as conn:
            return _count(await conn.execute(sql, user_id))

    async def list_user(self, user_id: str) -> list[Family]:
        sql = f"{_SELECT} WHERE user_id = $1 ORDER BY created_at, family_id"
        async with self._connection() as conn:
            rows = await conn.fetch(sql, user_id)
        return [family_from_row(row) for row in rows]

    async def purge_expired(self, now: float) -> int:
        sql = "DELETE FROM gatepass_refresh_families WHERE absolute_expires_at <= $1"
        async with self._connection() as conn:
            return _count(await conn.execute(sql, now))


class PostgresRevocationStore(_Base):
    def __init__(
        self, pool: PostgresPool, *, close_pool: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        super().__init__(pool, close_pool=close_pool)
        # Rows outlive their ``until`` until purged; reads compare with this.
        self._clock = clock

    @classmethod
    def from_dsn(
        cls, dsn: str, *, clock: Callable[[], float] = time.time
    ) -> PostgresRevocationStore:
        return cls(PostgresPool(dsn), close_pool=True, clock=clock)

    async def _put(self, kind: str, jti: str, user_id: str, until: float) -> None:
        async with self._connection() as conn:
            await conn.execute(_UPSERT, kind, user_id, jti, until)

    async def _check(self, kind: str, jti: str, user_id: str) -> tuple[bool, int]:
        # One statement, one round trip: the live entry and the generation.
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"SELECT {_LIVE}, {_GENERATION}", kind, user_id, jti, self._clock()
            )
        assert row is not None  # a SELECT without FROM always yields one row
        return bool(row[0]), int(row[1])

    async def deny(self, jti: str, user_id: str, *, until: float) -> None:
        await self._put("deny", jti, user_id, until)

    async def is_denied(self, jti: str, user_id: str) -> bool:
        return (await self._check("deny", jti, user_id))[0]

    async def allow(self, jti: str, user_id: str, *, until: float) -> None:
        await self._put("allow", jti, user_id, until)

    async def is_allowed(self, jti: str, user_id: str) -> bool:
        return (await self._check("allow", jti, user_id))[0]

    async def disallow(self, jti: str, user_id: str) -> None:
        sql = "DELETE FROM gatepass_revoked WHERE kind = 'allow' AND user_id = $1 AND jti = $2"
        async with self._connection() as conn:
            await conn.execute(sql, user_id, jti)

    async def generation(self, user_id: str) -> int:
        sql = "SELECT generation FROM gatepass_generations WHERE user_id = $1"
        async with self._connection() as conn:
            value = await conn.fetchval(sql, user_id)
        return 0 if value is None else int(value)

    async def bump_generation(self, user_id: str) -> int:
        # One upsert: concurrent bumps serialise on the row, none is lost.
        async with self._connection() as conn:
            return int(await conn.fetchval(_BUMP, user_id))

    async def check(self, jti: str, user_id: str) -> tuple[bool, int]:
        return await self._check("deny", jti, user_id)

    async def check_allowed(self, jti: str, user_id: str) -> tuple[bool, int]:
        return await self._check("allow", jti, user_id)

    async def purge_expired(self, now: float) -> int:
        async with self._connection() as conn:
            return _count(await conn.execute("DELETE FROM gatepass_revoked WHERE until <= $1", now))
