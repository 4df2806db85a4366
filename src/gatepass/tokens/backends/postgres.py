"""PostgreSQL refresh and revocation stores.

The same tables as the SQLite stores.  ``rotate`` locks the family's row with
``SELECT … FOR UPDATE`` inside a transaction, so concurrent rotations of one
family wait for each other and each sees the state the last one committed.
Tables are created on first use (the pool connects lazily, so the stores can
be built while PostgreSQL is down).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from gatepass.drivers.changes import UNKNOWN, ChangeCache, Unknown
from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.pg_changes import publishes_writes, trigger_ddl
from gatepass.drivers.postgres import PostgresPool, PostgresStore, count
from gatepass.drivers.registry import Schema
from gatepass.tokens.backends.sqlite import COLUMNS, family_from_row, family_params
from gatepass.tokens.refresh import Family, RotateOutcome, decide
from gatepass.tokens.revocation import RevocationEntries, family_marker, good_answer

_SCHEMA: Schema = (
    """
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
)
""",
    "CREATE INDEX IF NOT EXISTS gatepass_refresh_families_user"
    " ON gatepass_refresh_families (user_id, created_at)",
    "CREATE INDEX IF NOT EXISTS gatepass_refresh_families_expiry"
    " ON gatepass_refresh_families (absolute_expires_at)",
    """
CREATE TABLE IF NOT EXISTS gatepass_revoked (
    kind text NOT NULL,
    user_id text NOT NULL,
    jti text NOT NULL,
    until double precision NOT NULL,
    PRIMARY KEY (kind, user_id, jti)
)
""",
    "CREATE INDEX IF NOT EXISTS gatepass_revoked_until ON gatepass_revoked (until)",
    """
CREATE TABLE IF NOT EXISTS gatepass_generations (
    user_id text PRIMARY KEY,
    generation bigint NOT NULL
)
""",
)

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
# As in the SQLite store: the jti's entry, the family marker's denial ($5,
# NULL matches nothing) and the generation, in one statement.
_CHECK = (
    "SELECT EXISTS (SELECT 1 FROM gatepass_revoked"
    " WHERE kind = $1 AND user_id = $2 AND jti = $3 AND until > $4),"
    " EXISTS (SELECT 1 FROM gatepass_revoked"
    " WHERE kind = 'deny' AND user_id = $2 AND jti = $5::text AND until > $4),"
    " COALESCE((SELECT generation FROM gatepass_generations WHERE user_id = $2), 0)"
)
_BUMP = (
    "INSERT INTO gatepass_generations (user_id, generation) VALUES ($1, 1) ON CONFLICT (user_id)"
    " DO UPDATE SET generation = gatepass_generations.generation + 1 RETURNING generation"
)


class PostgresRefreshStore(PostgresStore):
    SCHEMA = _SCHEMA

    async def create(self, family: Family) -> None:
        checked(family.user_id)
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

    async def set_data(self, family_id: str, data: dict[str, object]) -> bool:
        sql = "UPDATE gatepass_refresh_families SET data = $1 WHERE family_id = $2"
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        async with self._connection() as conn:
            return count(await conn.execute(sql, text, family_id)) > 0

    async def revoke_user(self, user_id: str) -> int:
        sql = (
            "UPDATE gatepass_refresh_families SET revoked = true WHERE user_id = $1 AND NOT revoked"
        )
        async with self._connection() as conn:
            return count(await conn.execute(sql, checked(user_id)))

    async def list_user(self, user_id: str) -> list[Family]:
        sql = f"{_SELECT} WHERE user_id = $1 ORDER BY created_at, family_id"
        async with self._connection() as conn:
            rows = await conn.fetch(sql, checked(user_id))
        return [family_from_row(row) for row in rows]

    async def purge_expired(self, now: float) -> int:
        sql = "DELETE FROM gatepass_refresh_families WHERE absolute_expires_at <= $1"
        async with self._connection() as conn:
            return count(await conn.execute(sql, now))


class PostgresRevocationStore(RevocationEntries, PostgresStore):
    SCHEMA = _SCHEMA

    def __init__(self, pool: PostgresPool, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(pool)
        # Rows outlive their ``until`` until purged; reads compare with this.
        self._clock = clock

    async def _put(self, kind: str, jti: str, user_id: str, until: float) -> None:
        async with self._connection() as conn:
            await conn.execute(_UPSERT, kind, checked(user_id), jti, until)

    async def _check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int]:
        marker = None if family_id is None else family_marker(family_id)
        async with self._connection() as conn:
            row = await conn.fetchrow(_CHECK, kind, checked(user_id), jti, self._clock(), marker)
        assert row is not None  # a SELECT without FROM always yields one row
        return bool(row[0]), bool(row[1]), int(row[2])

    async def disallow(self, jti: str, user_id: str) -> None:
        sql = "DELETE FROM gatepass_revoked WHERE kind = 'allow' AND user_id = $1 AND jti = $2"
        async with self._connection() as conn:
            await conn.execute(sql, checked(user_id), jti)

    async def generation(self, user_id: str) -> int:
        sql = "SELECT generation FROM gatepass_generations WHERE user_id = $1"
        async with self._connection() as conn:
            value = await conn.fetchval(sql, checked(user_id))
        return 0 if value is None else int(value)

    async def bump_generation(self, user_id: str) -> int:
        # One upsert: concurrent bumps serialise on the row, none is lost.
        async with self._connection() as conn:
            return int(await conn.fetchval(_BUMP, checked(user_id)))

    async def purge_expired(self, now: float) -> int:
        async with self._connection() as conn:
            return count(await conn.execute("DELETE FROM gatepass_revoked WHERE until <= $1", now))


@publishes_writes("deny", "allow", "disallow", "bump_generation", "purge_expired")
class CachingPostgresRevocationStore(PostgresRevocationStore):
    """:class:`PostgresRevocationStore` with a local cache of checks, kept
    exact by LISTEN/NOTIFY on the revocation and generation tables."""

    SCHEMA = (
        *PostgresRevocationStore.SCHEMA,
        *trigger_ddl("gatepass_revoked"),
        *trigger_ddl("gatepass_generations")[1:],
    )

    def __init__(self, pool: PostgresPool, *, max_entries: int = 100_000,
                 max_age: float = 30.0, **options: Any) -> None:  # fmt: skip
        super().__init__(pool, **options)
        self._cache: ChangeCache[tuple[str, str, str, str | None], tuple[bool, bool, int]] = (
            ChangeCache(pool.changes.word, max_entries=max_entries, max_age=max_age)
        )

    async def _check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int]:
        load = super()._check
        result = await self._cache.read_through(
            (kind, jti, user_id, family_id),
            lambda: load(kind, jti, user_id, family_id),
            # Only good answers: a refusal's entry has a deadline of its own.
            lambda answer: good_answer(kind, answer),
        )
        assert result is not None  # a check always answers
        return result

    def _cached_check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int] | Unknown:
        hit = self._cache.get((kind, jti, user_id, family_id))
        return hit if hit is not None and good_answer(kind, hit) else UNKNOWN
