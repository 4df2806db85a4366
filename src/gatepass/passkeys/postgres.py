"""Passkeys in PostgreSQL: the SQLite store's table and statements
(see :mod:`gatepass.passkeys.sql`)."""

from __future__ import annotations

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.postgres import PostgresStore, count
from gatepass.passkeys.sql import _INSERT, _SELECT_ONE, _SELECT_USER, _params, _passkey, _schema
from gatepass.passkeys.store import Passkey


def _numbered(sql: str) -> str:
    """The SQLite statement with PostgreSQL's numbered placeholders."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))


_PG_INSERT = _numbered(_INSERT)
_PG_SELECT_ONE = _numbered(_SELECT_ONE)
_PG_SELECT_USER = _numbered(_SELECT_USER)


class PostgresPasskeyStore(PostgresStore):
    SCHEMA = _schema("text", "double precision", "bigint")

    async def add(self, passkey: Passkey) -> bool:
        async with self._connection() as conn:
            return count(await conn.execute(_PG_INSERT, *_params(passkey))) == 1

    async def get(self, credential_id: str) -> Passkey | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(_PG_SELECT_ONE, credential_id)
        return None if row is None else _passkey(row)

    async def list_user(self, user_id: str) -> list[Passkey]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                _PG_SELECT_USER, checked(user_id)
            )  # fmt: skip
        return [_passkey(r) for r in rows]

    async def rename(self, user_id: str, credential_id: str, name: str) -> bool:
        sql = "UPDATE gatepass_passkeys SET name = $1 WHERE credential_id = $2 AND user_id = $3"
        async with self._connection() as conn:
            return count(await conn.execute(sql, name, credential_id, checked(user_id))) == 1

    async def remove(self, user_id: str, credential_id: str) -> bool:
        sql = "DELETE FROM gatepass_passkeys WHERE credential_id = $1 AND user_id = $2"
        async with self._connection() as conn:
            return count(await conn.execute(sql, credential_id, checked(user_id))) == 1

    async def remove_user(self, user_id: str) -> int:
        async with self._connection() as conn:
            return count(
                await conn.execute(
                    "DELETE FROM gatepass_passkeys WHERE user_id = $1", checked(user_id)
                )
            )

    async def record_use(
        self, credential_id: str, *, seen_count: int, new_count: int, now: float
    ) -> bool:
        sql = (
            "UPDATE gatepass_passkeys SET sign_count = $1, last_used_at = $2"
            " WHERE credential_id = $3 AND sign_count = $4"
        )
        async with self._connection() as conn:
            status = await conn.execute(sql, new_count, now, credential_id, seen_count)
        return count(status) == 1
