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
from pathlib import Path
from typing import Any

from gatepass.stores._sqlite import SQLiteDatabase
from gatepass.tokens.refresh import Family, RotateOutcome, decide

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
_LIVE = (
    "EXISTS (SELECT 1 FROM gatepass_revoked"
    " WHERE kind = ? AND user_id = ? AND jti = ? AND until > ?)"
)
_GENERATION = "COALESCE((SELECT generation FROM gatepass_generations WHERE user_id = ?), 0)"
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


async def _create_schema(db: SQLiteDatabase) -> None:
    def create(conn: sqlite3.Connection) -> None:
        for statement in _SCHEMA:
            conn.execute(statement)

    await db.transaction(create)


class SQLiteRefreshStore:
    def __init__(self, db: SQLiteDatabase, *, close_db: bool = False) -> None:
        """Use :meth:`open` unless the database is shared with other stores."""
        self.db = db
        self._close_db = close_db

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteRefreshStore:
        store = cls(SQLiteDatabase(path), close_db=True)
        await _create_schema(store.db)
        return store

    async def create(self, family: Family) -> None:
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

    async def revoke_user(self, user_id: str) -> int:
        sql = "UPDATE gatepass_refresh_families SET revoked = 1 WHERE user_id = ? AND revoked = 0"
        return await self.db.run(lambda conn: conn.execute(sql, (user_id,)).rowcount)

    async def list_user(self, user_id: str) -> list[Family]:
        sql = f"{_SELECT} WHERE user_id = ? ORDER BY created_at, family_id"
        rows = await self.db.run(lambda conn: conn.execute(sql, (user_id,)).fetchall())
        return [family_from_row(row) for row in rows]

    async def purge_expired(self, now: float) -> int:
        sql = "DELETE FROM gatepass_refresh_families WHERE absolute_expires_at <= ?"
        return await self.db.run(lambda conn: conn.execute(sql, (now,)).rowcount)

    async def ping(self) -> None:
        await self.db.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._close_db:
            self._close_db = False  # idempotent: the executor refuses a second shutdown
            await self.db.close()


class SQLiteRevocationStore:
    def __init__(
        self, db: SQLiteDatabase, *, close_db: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self._close_db = close_db
        # Rows outlive their ``until`` until purged; reads compare with this.
        self._clock = clock

    @classmethod
    async def open(
        cls, path: str | Path, *, clock: Callable[[], float] = time.time
    ) -> SQLiteRevocationStore:
        store = cls(SQLiteDatabase(path), close_db=True, clock=clock)
        await _create_schema(store.db)
        return store

    async def _put(self, kind: str, jti: str, user_id: str, until: float) -> None:
        await self.db.run(lambda conn: conn.execute(_UPSERT, (kind, user_id, jti, until)))

    async def _live(self, kind: str, jti: str, user_id: str) -> bool:
        params = (kind, user_id, jti, self._clock())
        sql = f"SELECT {_LIVE}"
        row = await self.db.run(lambda conn: conn.execute(sql, params).fetchone())
        return bool(row[0])

    async def _check(self, kind: str, jti: str, user_id: str) -> tuple[bool, int]:
        sql = f"SELECT {_LIVE}, {_GENERATION}"
        params = (kind, user_id, jti, self._clock(), user_id)
        row = await self.db.run(lambda conn: conn.execute(sql, params).fetchone())
        return bool(row[0]), int(row[1])

    async def deny(self, jti: str, user_id: str, *, until: float) -> None:
        await self._put("deny", jti, user_id, until)

    async def is_denied(self, jti: str, user_id: str) -> bool:
        return await self._live("deny", jti, user_id)

    async def allow(self, jti: str, user_id: str, *, until: float) -> None:
        await self._put("allow", jti, user_id, until)

    async def is_allowed(self, jti: str, user_id: str) -> bool:
        return await self._live("allow", jti, user_id)

    async def disallow(self, jti: str, user_id: str) -> None:
        sql = "DELETE FROM gatepass_revoked WHERE kind = 'allow' AND user_id = ? AND jti = ?"
        await self.db.run(lambda conn: conn.execute(sql, (user_id, jti)))

    async def generation(self, user_id: str) -> int:
        sql = f"SELECT {_GENERATION}"
        row = await self.db.run(lambda conn: conn.execute(sql, (user_id,)).fetchone())
        return int(row[0])

    async def bump_generation(self, user_id: str) -> int:
        def bump(conn: sqlite3.Connection) -> int:
            return int(conn.execute(_BUMP, (user_id,)).fetchone()[0])

        return await self.db.transaction(bump)

    async def check(self, jti: str, user_id: str) -> tuple[bool, int]:
        return await self._check("deny", jti, user_id)

    async def check_allowed(self, jti: str, user_id: str) -> tuple[bool, int]:
        return await self._check("allow", jti, user_id)

    async def purge_expired(self, now: float) -> int:
        sql = "DELETE FROM gatepass_revoked WHERE until <= ?"
        return await self.db.run(lambda conn: conn.execute(sql, (now,)).rowcount)

    async def ping(self) -> None:
        await self.db.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._close_db:
            self._close_db = False  # idempotent: the executor refuses a second shutdown
            await self.db.close()
