"""SQLite refresh and revocation stores (one file, safe for several processes).

``rotate`` reads, decides and writes inside ``BEGIN IMMEDIATE``, which takes
the database's write lock first, so concurrent rotations of one family (from
this process or another) are serialised.  The column layout and row helpers
are shared with the PostgreSQL store.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from gatepass.drivers.changes import UNKNOWN, ChangeCache, Unknown
from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.sqlite import SQLiteDatabase, SQLiteStore
from gatepass.tokens.refresh import Family, RotateOutcome, decide
from gatepass.tokens.revocation import RevocationEntries, family_marker, good_answer

COLUMNS = (
    "family_id, user_id, created_at, absolute_expires_at, current_hash, previous_hash,"
    " rotated_at, generation, revoked, data"
)

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS gatepass_refresh_families (
        family_id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        absolute_expires_at REAL NOT NULL,
        current_hash TEXT NOT NULL,
        previous_hash TEXT,
        rotated_at REAL,
        generation INTEGER NOT NULL,
        revoked INTEGER NOT NULL,
        data TEXT NOT NULL
    )
    """,
    # Serves revoke_user and list_user (with its ORDER BY): never a scan.
    "CREATE INDEX IF NOT EXISTS gatepass_refresh_families_user"
    " ON gatepass_refresh_families (user_id, created_at)",
    "CREATE INDEX IF NOT EXISTS gatepass_refresh_families_expiry"
    " ON gatepass_refresh_families (absolute_expires_at)",
    # kind is 'deny' or 'allow'; the primary key makes every lookup one probe.
    """
    CREATE TABLE IF NOT EXISTS gatepass_revoked (
        kind TEXT NOT NULL,
        user_id TEXT NOT NULL,
        jti TEXT NOT NULL,
        until REAL NOT NULL,
        PRIMARY KEY (kind, user_id, jti)
    )
    """,
    "CREATE INDEX IF NOT EXISTS gatepass_revoked_until ON gatepass_revoked (until)",
    """
    CREATE TABLE IF NOT EXISTS gatepass_generations (
        user_id TEXT PRIMARY KEY NOT NULL,
        generation INTEGER NOT NULL
    )
    """,
)

_INSERT = f"INSERT INTO gatepass_refresh_families ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"  # noqa: S608
_SELECT = f"SELECT {COLUMNS} FROM gatepass_refresh_families"  # noqa: S608
_SAVE = (
    "UPDATE gatepass_refresh_families SET current_hash = ?, previous_hash = ?, rotated_at = ?,"
    " revoked = ? WHERE family_id = ?"
)
_UPSERT = (
    "INSERT INTO gatepass_revoked (kind, user_id, jti, until) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (kind, user_id, jti) DO UPDATE SET until = excluded.until"
)
# One statement for the per-request question: the jti's entry, the family
# marker's denial (NULL matches nothing) and the generation.
_CHECK = (
    "SELECT EXISTS (SELECT 1 FROM gatepass_revoked"
    " WHERE kind = :kind AND user_id = :user AND jti = :jti AND until > :now),"
    " EXISTS (SELECT 1 FROM gatepass_revoked"
    " WHERE kind = 'deny' AND user_id = :user AND jti = :marker AND until > :now),"
    " COALESCE((SELECT generation FROM gatepass_generations WHERE user_id = :user), 0)"
)
_GENERATION = "SELECT COALESCE((SELECT generation FROM gatepass_generations WHERE user_id = ?), 0)"
_BUMP = (
    "INSERT INTO gatepass_generations (user_id, generation) VALUES (?, 1)"
    " ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1 RETURNING generation"
)


def family_params(f: Family) -> tuple[Any, ...]:
    return (
        f.family_id, f.user_id, f.created_at, f.absolute_expires_at, f.current_hash,
        f.previous_hash, f.rotated_at, f.generation, f.revoked,
        json.dumps(f.data, separators=(",", ":"), ensure_ascii=False),
    )  # fmt: skip


def family_from_row(row: Sequence[Any]) -> Family:
    (family_id, user_id, created_at, absolute_expires_at, current_hash, previous_hash,
     rotated_at, generation, revoked, data) = row  # fmt: skip
    return Family(
        family_id=family_id,
        user_id=user_id,
        created_at=created_at,
        absolute_expires_at=absolute_expires_at,
        current_hash=current_hash,
        previous_hash=previous_hash,
        rotated_at=rotated_at,
        generation=generation,
        revoked=bool(revoked),
        data=json.loads(data),
    )


class SQLiteRefreshStore(SQLiteStore):
    SCHEMA = _SCHEMA

    async def create(self, family: Family) -> None:
        checked(family.user_id)
        params = family_params(family)
        try:
            await self.db.run(lambda conn: conn.execute(_INSERT, params))
        except sqlite3.IntegrityError:
            raise ValueError("refresh family already exists") from None

    async def rotate(
        self, family_id: str, presented_hash: str, successor_hash: str, *, now: float, grace: float
    ) -> tuple[RotateOutcome, Family | None]:
        def step(conn: sqlite3.Connection) -> tuple[RotateOutcome, Family | None]:
            row = conn.execute(f"{_SELECT} WHERE family_id = ?", (family_id,)).fetchone()
            current = None if row is None else family_from_row(row)
            outcome, family, changed = decide(
                current, presented_hash, successor_hash, now=now, grace=grace
            )
            if changed and family is not None:
                conn.execute(_SAVE, (family.current_hash, family.previous_hash,
                                     family.rotated_at, family.revoked, family_id))  # fmt: skip
            return outcome, family

        return await self.db.transaction(step)

    async def get(self, family_id: str) -> Family | None:
        sql = f"{_SELECT} WHERE family_id = ?"
        row = await self.db.run(lambda conn: conn.execute(sql, (family_id,)).fetchone())
        return None if row is None else family_from_row(row)

    async def revoke(self, family_id: str) -> Family | None:
        sql = (
            "UPDATE gatepass_refresh_families SET revoked = 1"  # noqa: S608
            f" WHERE family_id = ? RETURNING {COLUMNS}"
        )

        def run(conn: sqlite3.Connection) -> Any:
            return conn.execute(sql, (family_id,)).fetchone()

        # A transaction: RETURNING is only finished once every row is fetched.
        row = await self.db.transaction(run)
        return None if row is None else family_from_row(row)

    async def set_data(self, family_id: str, data: dict[str, object]) -> bool:
        sql = "UPDATE gatepass_refresh_families SET data = ? WHERE family_id = ?"
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        return await self._changed(sql, (text, family_id)) > 0

    async def revoke_user(self, user_id: str) -> int:
        sql = "UPDATE gatepass_refresh_families SET revoked = 1 WHERE user_id = ? AND revoked = 0"
        return await self._changed(sql, (checked(user_id),))

    async def list_user(self, user_id: str) -> list[Family]:
        sql = f"{_SELECT} WHERE user_id = ? ORDER BY created_at, family_id"
        params = (checked(user_id),)
        rows = await self.db.run(lambda conn: conn.execute(sql, params).fetchall())
        return [family_from_row(row) for row in rows]

    async def purge_expired(self, now: float) -> int:
        sql = "DELETE FROM gatepass_refresh_families WHERE absolute_expires_at <= ?"
        return await self._changed(sql, (now,))


class SQLiteRevocationStore(RevocationEntries, SQLiteStore):
    SCHEMA = _SCHEMA

    def __init__(self, db: SQLiteDatabase, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(db)
        # Rows outlive their ``until`` until purged; reads compare with this.
        self._clock = clock

    async def _put(self, kind: str, jti: str, user_id: str, until: float) -> None:
        params = (kind, checked(user_id), jti, until)
        await self.db.run(lambda conn: conn.execute(_UPSERT, params))

    async def _check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int]:
        params = {
            "kind": kind, "user": checked(user_id), "jti": jti, "now": self._clock(),
            "marker": None if family_id is None else family_marker(family_id),
        }  # fmt: skip
        row = await self.db.run(lambda conn: conn.execute(_CHECK, params).fetchone())
        return bool(row[0]), bool(row[1]), int(row[2])

    async def disallow(self, jti: str, user_id: str) -> None:
        sql = "DELETE FROM gatepass_revoked WHERE kind = 'allow' AND user_id = ? AND jti = ?"
        await self._changed(sql, (checked(user_id), jti))

    async def generation(self, user_id: str) -> int:
        params = (checked(user_id),)
        row = await self.db.run(lambda conn: conn.execute(_GENERATION, params).fetchone())
        return int(row[0])

    async def bump_generation(self, user_id: str) -> int:
        params = (checked(user_id),)

        def bump(conn: sqlite3.Connection) -> int:
            return int(conn.execute(_BUMP, params).fetchone()[0])

        return await self.db.transaction(bump)

    async def purge_expired(self, now: float) -> int:
        return await self._changed("DELETE FROM gatepass_revoked WHERE until <= ?", (now,))


class CachingSQLiteRevocationStore(SQLiteRevocationStore):
    """:class:`SQLiteRevocationStore` with a local cache of checks, exact across
    processes by the database's change word (:mod:`gatepass.drivers.changes`):
    a Bearer request whose token was checked before costs no database trip
    until something on the file changes."""

    def __init__(
        self,
        db: SQLiteDatabase,
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = 100_000,
        max_age: float = 30.0,
    ) -> None:
        super().__init__(db, clock=clock)
        self._cache: ChangeCache[tuple[str, str, str, str | None], tuple[bool, bool, int]] = (
            ChangeCache(lambda: db.changes.word(), max_entries=max_entries, max_age=max_age)
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
