"""PostgreSQL throttle store: the SQLite store's table and statements.

``hit`` is one ``INSERT … ON CONFLICT DO UPDATE … RETURNING``: PostgreSQL
locks the conflicting row, so concurrent hits on one key from any number of
servers queue on it and each returns a distinct count.  The table is created
on first use (under an advisory lock, since ``CREATE … IF NOT EXISTS`` races
with itself), so the store can be built while PostgreSQL is down.
"""

from __future__ import annotations

from collections.abc import Sequence

from gatepass.drivers.postgres import PostgresPool, PostgresStore, count
from gatepass.throttle.store import Hit

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS gatepass_throttle (
    key text PRIMARY KEY,
    count bigint NOT NULL,
    expires_at double precision NOT NULL,
    deadline double precision NOT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS gatepass_throttle_gone"
    " ON gatepass_throttle ((greatest(expires_at, deadline)))",
)

_HIT = """
INSERT INTO gatepass_throttle AS t (key, count, expires_at, deadline)
VALUES ($1, 1, $2::float8 + $3::float8, 0)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN t.expires_at <= $2::float8 THEN 1 ELSE t.count + 1 END,
    expires_at = CASE
        WHEN t.expires_at <= $2::float8 THEN $2::float8 + $3::float8
        WHEN t.count + 1 > $4::bigint THEN greatest(t.expires_at, $2::float8 + $5::float8)
        ELSE t.expires_at
    END
RETURNING count, expires_at
"""

_SET_DEADLINE = """
INSERT INTO gatepass_throttle AS t (key, count, expires_at, deadline) VALUES ($1, 0, 0, $2)
ON CONFLICT (key) DO UPDATE SET deadline = greatest(t.deadline, excluded.deadline)
"""

_DEADLINES = "SELECT key, deadline FROM gatepass_throttle WHERE key = ANY($1::text[])"
_PURGE = "DELETE FROM gatepass_throttle WHERE greatest(expires_at, deadline) <= $1"

#: Purge expired rows every this many hits on this server, so the table stays
#: bounded even if nobody schedules :meth:`PostgresThrottleStore.purge_expired`.
_PURGE_EVERY = 1000


class PostgresThrottleStore(PostgresStore):
    SCHEMA = _SCHEMA

    def __init__(self, pool: PostgresPool) -> None:
        super().__init__(pool)
        self._hits = 0

    async def hit(
        self,
        key: str,
        *,
        window: float,
        now: float,
        extend_after: int | None = None,
        extend_window: float | None = None,
    ) -> Hit:
        async with self._connection() as conn:
            extended = window if extend_window is None else extend_window
            row = await conn.fetchrow(_HIT, key, now, window, extend_after, extended)
        self._hits += 1
        if self._hits % _PURGE_EVERY == 0:
            await self.purge_expired(now)
        return Hit(int(row["count"]), float(row["expires_at"]))

    async def set_deadline(self, key: str, *, until: float, now: float) -> None:
        async with self._connection() as conn:
            await conn.execute(_SET_DEADLINE, key, until)

    async def deadlines(self, keys: Sequence[str], *, now: float) -> list[float]:
        if not keys:
            return []
        async with self._connection() as conn:
            rows = await conn.fetch(_DEADLINES, list(keys))
        found = {row["key"]: float(row["deadline"]) for row in rows}
        return [d if (d := found.get(k, 0.0)) > now else 0.0 for k in keys]

    async def clear(self, key: str) -> None:
        async with self._connection() as conn:
            await conn.execute("DELETE FROM gatepass_throttle WHERE key = $1", key)

    async def purge_expired(self, now: float) -> int:
        async with self._connection() as conn:
            return count(await conn.execute(_PURGE, now))
