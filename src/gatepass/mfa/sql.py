"""Factors in SQLite (PostgreSQL: :mod:`gatepass.mfa.postgres`, which shares the schema).

Tables: ``gatepass_mfa_factors`` (one row per user), ``gatepass_mfa_recovery``
(one row per unused recovery code hash) and ``gatepass_mfa_challenges``.
The atomic steps are single conditional statements (``UPDATE … WHERE
totp_last_step < $step``, ``DELETE`` of one code, ``UPDATE … RETURNING`` of
the attempt counter); the two that touch several rows run in a transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.sqlite import SQLiteStore
from gatepass.mfa.store import MAX_ATTEMPTS, Challenge, Factors


def _schema(text: str, real: str, integer: str) -> tuple[str, ...]:
    return (
        "CREATE TABLE IF NOT EXISTS gatepass_mfa_factors ("
        f" user_id {text} PRIMARY KEY, totp_secret {text}, totp_pending {text},"
        f" totp_last_step {integer} NOT NULL DEFAULT -1)",
        "CREATE TABLE IF NOT EXISTS gatepass_mfa_recovery ("
        f" user_id {text} NOT NULL, code_hash {text} NOT NULL,"
        " PRIMARY KEY (user_id, code_hash))",
        "CREATE TABLE IF NOT EXISTS gatepass_mfa_challenges ("
        f" token_hash {text} PRIMARY KEY, user_id {text} NOT NULL, body {text} NOT NULL,"
        f" expires_at {real} NOT NULL, attempts {integer} NOT NULL DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS gatepass_mfa_challenges_expiry"
        " ON gatepass_mfa_challenges (expires_at)",
    )


def _factors(user_id: str, row: Any, left: int) -> Factors:
    if row is None:
        return Factors(user_id, recovery_codes_left=left)
    secret, pending, step = tuple(row)
    return Factors(user_id, secret, pending, int(step), left)


class SQLiteFactorStore(SQLiteStore):
    SCHEMA = _schema("TEXT", "REAL", "INTEGER")

    async def get(self, user_id: str) -> Factors:
        uid = checked(user_id)

        def read(conn: sqlite3.Connection) -> Factors:
            row = conn.execute(
                "SELECT totp_secret, totp_pending, totp_last_step FROM gatepass_mfa_factors"
                " WHERE user_id = ?", (uid,),
            ).fetchone()  # fmt: skip
            (left,) = conn.execute(
                "SELECT count(*) FROM gatepass_mfa_recovery WHERE user_id = ?", (uid,)
            ).fetchone()
            return _factors(uid, row, int(left))

        return await self.db.run(read)

    async def begin_totp(self, user_id: str, sealed_secret: str) -> None:
        await self._changed(
            "INSERT INTO gatepass_mfa_factors (user_id, totp_pending) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET totp_pending = excluded.totp_pending",
            (checked(user_id), sealed_secret),
        )

    async def enable_totp(
        self, user_id: str, sealed_secret: str, step: int, recovery_hashes: list[str]
    ) -> bool:
        uid = checked(user_id)

        def enable(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(
                "UPDATE gatepass_mfa_factors SET totp_secret = totp_pending,"
                " totp_pending = NULL, totp_last_step = ? WHERE user_id = ? AND totp_pending = ?",
                (step, uid, sealed_secret),
            ).rowcount
            if not changed:
                return False
            _replace_codes(conn, uid, recovery_hashes)
            return True

        return await self.db.transaction(enable)

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        return bool(
            await self._changed(
                "UPDATE gatepass_mfa_factors SET totp_last_step = ? WHERE user_id = ?"
                " AND totp_secret IS NOT NULL AND totp_last_step < ?",
                (step, checked(user_id), step),
            )
        )

    async def disable_totp(self, user_id: str) -> bool:
        return await self._remove(user_id, only_totp=True)

    async def reset(self, user_id: str) -> bool:
        return await self._remove(user_id, only_totp=False)

    async def _remove(self, user_id: str, *, only_totp: bool) -> bool:
        uid = checked(user_id)

        def remove(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "DELETE FROM gatepass_mfa_factors WHERE user_id = ? RETURNING totp_secret", (uid,)
            ).fetchone()
            codes = conn.execute("DELETE FROM gatepass_mfa_recovery WHERE user_id = ?", (uid,))
            if only_totp:
                return row is not None and row[0] is not None
            return row is not None or codes.rowcount > 0

        return await self.db.transaction(remove)

    async def replace_recovery_codes(self, user_id: str, hashes: list[str]) -> None:
        uid = checked(user_id)
        await self.db.transaction(lambda conn: _replace_codes(conn, uid, hashes))

    async def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        return bool(
            await self._changed(
                "DELETE FROM gatepass_mfa_recovery WHERE user_id = ? AND code_hash = ?",
                (checked(user_id), code_hash),
            )
        )

    async def reseal(self, user_id: str, old: str, new: str) -> bool:
        return bool(
            await self._changed(
                "UPDATE gatepass_mfa_factors SET totp_secret = ?"
                " WHERE user_id = ? AND totp_secret = ?",
                (new, checked(user_id), old),
            )
        )

    async def create_challenge(self, challenge: Challenge) -> None:
        await self._changed(
            "INSERT INTO gatepass_mfa_challenges (token_hash, user_id, body, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (challenge.token_hash, checked(challenge.user_id), challenge.dumps(),
             challenge.expires_at),
        )  # fmt: skip

    async def attempt_challenge(
        self, token_hash: str, *, now: float, limit: int = MAX_ATTEMPTS
    ) -> Challenge | None:
        def attempt(conn: sqlite3.Connection) -> Challenge | None:
            row = conn.execute(
                "UPDATE gatepass_mfa_challenges SET attempts = attempts + 1"
                " WHERE token_hash = ? RETURNING body, expires_at, attempts",
                (token_hash,),
            ).fetchone()
            if row is None:
                return None
            body, expires_at, attempts = row
            if now >= expires_at or attempts > limit:
                conn.execute("DELETE FROM gatepass_mfa_challenges WHERE token_hash = ?",
                             (token_hash,))  # fmt: skip
                return None
            return Challenge.loads(body)

        return await self.db.transaction(attempt)

    async def take_challenge(self, token_hash: str) -> bool:
        return bool(
            await self._changed(
                "DELETE FROM gatepass_mfa_challenges WHERE token_hash = ?", (token_hash,)
            )
        )

    async def purge_expired(self, now: float) -> int:
        return await self._changed(
            "DELETE FROM gatepass_mfa_challenges WHERE expires_at <= ?", (now,)
        )


def _replace_codes(conn: sqlite3.Connection, user_id: str, hashes: list[str]) -> None:
    conn.execute("DELETE FROM gatepass_mfa_recovery WHERE user_id = ?", (user_id,))
    conn.executemany(
        "INSERT OR IGNORE INTO gatepass_mfa_recovery (user_id, code_hash) VALUES (?, ?)",
        [(user_id, h) for h in hashes],
    )
