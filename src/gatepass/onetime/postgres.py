"""PostgreSQL one-time token store: the SQLite store's table and statements.

``take`` is one ``DELETE … RETURNING``: PostgreSQL locks the row, so of
concurrent takes from any number of servers exactly one gets it back.
"""

from __future__ import annotations

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.postgres import PostgresStore, count
from gatepass.onetime.store import Grant

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS gatepass_one_time_tokens (
    token_hash text PRIMARY KEY,
    purpose text NOT NULL,
    user_id text NOT NULL,
    data text NOT NULL,
    expires_at double precision NOT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS gatepass_one_time_tokens_user"
    " ON gatepass_one_time_tokens (user_id, purpose)",
)

_TAKE = (
    "DELETE FROM gatepass_one_time_tokens WHERE token_hash = $1 AND purpose = $2"
    " RETURNING user_id, data, expires_at"
)


class PostgresOneTimeTokenStore(PostgresStore):
    SCHEMA = _SCHEMA

    async def put(
        self, token_hash: str, *, purpose: str, user_id: str, data: str, expires_at: float
    ) -> None:
        params = (token_hash, purpose, checked(user_id), data, expires_at)
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO gatepass_one_time_tokens VALUES ($1, $2, $3, $4, $5)", *params
            )

    async def take(self, token_hash: str, *, purpose: str, now: float) -> Grant | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(_TAKE, token_hash, purpose)
        if row is None or float(row["expires_at"]) <= now:
            return None
        return Grant(str(row["user_id"]), str(row["data"]))

    async def drop_user(self, user_id: str, purpose: str) -> int:
        async with self._connection() as conn:
            return count(
                await conn.execute(
                    "DELETE FROM gatepass_one_time_tokens WHERE user_id = $1 AND purpose = $2",
                    checked(user_id),
                    purpose,
                )
            )

    async def purge_expired(self, now: float) -> int:
        async with self._connection() as conn:
            sql = "DELETE FROM gatepass_one_time_tokens WHERE expires_at <= $1"
            return count(await conn.execute(sql, now))
