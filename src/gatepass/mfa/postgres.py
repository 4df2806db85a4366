"""Factors in PostgreSQL: the schema of :mod:`gatepass.mfa.sql`, asyncpg's
placeholders.  A module of its own, so the core install (SQLite) never
imports asyncpg."""

from __future__ import annotations

from typing import Any

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.postgres import PostgresStore, count
from gatepass.mfa.sql import _factors, _schema
from gatepass.mfa.store import MAX_ATTEMPTS, Challenge, Factors


class PostgresFactorStore(PostgresStore):
    SCHEMA = _schema("text", "double precision", "bigint")

    async def get(self, user_id: str) -> Factors:
        uid = checked(user_id)
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT f.totp_secret, f.totp_pending, f.totp_last_step,"
                " (SELECT count(*) FROM gatepass_mfa_recovery r WHERE r.user_id = $1) AS left"
                " FROM (SELECT $1::text AS user_id) u"
                " LEFT JOIN gatepass_mfa_factors f ON f.user_id = u.user_id",
                uid,
            )
        assert row is not None
        if row["totp_last_step"] is None:
            return Factors(uid, recovery_codes_left=int(row["left"]))
        return _factors(uid, tuple(row.values())[:3], int(row["left"]))

    async def _execute(self, sql: str, *args: object) -> int:
        async with self._connection() as conn:
            return count(await conn.execute(sql, *args))

    async def begin_totp(self, user_id: str, sealed_secret: str) -> None:
        await self._execute(
            "INSERT INTO gatepass_mfa_factors (user_id, totp_pending) VALUES ($1, $2)"
            " ON CONFLICT (user_id) DO UPDATE SET totp_pending = excluded.totp_pending",
            checked(user_id), sealed_secret,
        )  # fmt: skip

    async def enable_totp(
        self, user_id: str, sealed_secret: str, step: int, recovery_hashes: list[str]
    ) -> bool:
        uid = checked(user_id)
        async with self._connection() as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE gatepass_mfa_factors SET totp_secret = totp_pending,"
                " totp_pending = NULL, totp_last_step = $1"
                " WHERE user_id = $2 AND totp_pending = $3",
                step, uid, sealed_secret,
            )  # fmt: skip
            if not count(status):
                return False
            await _pg_replace_codes(conn, uid, recovery_hashes)
            return True

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        return bool(
            await self._execute(
                "UPDATE gatepass_mfa_factors SET totp_last_step = $1 WHERE user_id = $2"
                " AND totp_secret IS NOT NULL AND totp_last_step < $1",
                step, checked(user_id),
            )
        )

    async def disable_totp(self, user_id: str) -> bool:
        return await self._remove(user_id, only_totp=True)

    async def reset(self, user_id: str) -> bool:
        return await self._remove(user_id, only_totp=False)

    async def _remove(self, user_id: str, *, only_totp: bool) -> bool:
        uid = checked(user_id)
        async with self._connection() as conn, conn.transaction():
            rows = await conn.fetch(
                "DELETE FROM gatepass_mfa_factors WHERE user_id = $1 RETURNING totp_secret", uid
            )
            codes = count(
                await conn.execute("DELETE FROM gatepass_mfa_recovery WHERE user_id = $1", uid)
            )
        if only_totp:
            return bool(rows) and rows[0]["totp_secret"] is not None
        return bool(rows) or codes > 0

    async def replace_recovery_codes(self, user_id: str, hashes: list[str]) -> None:
        uid = checked(user_id)
        async with self._connection() as conn, conn.transaction():
            await _pg_replace_codes(conn, uid, hashes)

    async def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        return bool(
            await self._execute(
                "DELETE FROM gatepass_mfa_recovery WHERE user_id = $1 AND code_hash = $2",
                checked(user_id), code_hash,
            )
        )

    async def reseal(self, user_id: str, old: str, new: str) -> bool:
        return bool(
            await self._execute(
                "UPDATE gatepass_mfa_factors SET totp_secret = $1"
                " WHERE user_id = $2 AND totp_secret = $3",
                new, checked(user_id), old,
            )
        )

    async def create_challenge(self, challenge: Challenge) -> None:
        await self._execute(
            "INSERT INTO gatepass_mfa_challenges (token_hash, user_id, body, expires_at)"
            " VALUES ($1, $2, $3, $4)",
            challenge.token_hash, checked(challenge.user_id), challenge.dumps(),
            challenge.expires_at,
        )  # fmt: skip

    async def attempt_challenge(
        self, token_hash: str, *, now: float, limit: int = MAX_ATTEMPTS
    ) -> Challenge | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "UPDATE gatepass_mfa_challenges SET attempts = attempts + 1"
                " WHERE token_hash = $1 RETURNING body, expires_at, attempts",
                token_hash,
            )
            if row is None:
                return None
            if now >= row["expires_at"] or row["attempts"] > limit:
                await conn.execute(
                    "DELETE FROM gatepass_mfa_challenges WHERE token_hash = $1", token_hash
                )
                return None
        return Challenge.loads(row["body"])

    async def take_challenge(self, token_hash: str) -> bool:
        return bool(
            await self._execute(
                "DELETE FROM gatepass_mfa_challenges WHERE token_hash = $1", token_hash
            )
        )

    async def purge_expired(self, now: float) -> int:
        return await self._execute(
            "DELETE FROM gatepass_mfa_challenges WHERE expires_at <= $1", now
        )


async def _pg_replace_codes(conn: Any, user_id: str, hashes: list[str]) -> None:
    await conn.execute("DELETE FROM gatepass_mfa_recovery WHERE user_id = $1", user_id)
    if hashes:
        await conn.execute(
            "INSERT INTO gatepass_mfa_recovery (user_id, code_hash)"
            " SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            user_id, hashes,
        )  # fmt: skip
