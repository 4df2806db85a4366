"""One connection per URL, shared by every store opened on it, closed by the last."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gatepass.drivers import (
    open_identity_store,
    open_refresh_store,
    open_revocation_store,
    open_session_store,
    open_throttle_store,
    open_user_store,
)
from gatepass.drivers.postgres import PostgresPool
from gatepass.drivers.redis import RedisConnection
from gatepass.drivers.registry import SharedConnection
from gatepass.drivers.sqlite import SQLiteDatabase
from gatepass.oauth.identities import ExternalIdentity
from tests.stores.conftest import make_record
from tests.tokens_store.conftest import new_family

SQL_OPENERS = (
    open_session_store, open_refresh_store, open_revocation_store,
    open_throttle_store, open_user_store, open_identity_store,
)  # fmt: skip
REDIS_OPENERS = (open_session_store, open_refresh_store, open_revocation_store, open_throttle_store)


def connection_of(store: Any) -> SharedConnection:
    for name in ("db", "pool", "conn"):
        conn = getattr(store, name, None)
        if isinstance(conn, SharedConnection):
            return conn
    raise AssertionError(f"{type(store).__name__} holds no shared connection")


async def use_every_store(stores: list[Any]) -> None:
    """One real write through each kind of store."""
    session, refresh, revocation, throttle, *rest = stores
    await session.create(make_record("u1"))
    await refresh.create(new_family("u1")[1])
    await revocation.deny("j", "u1", until=time.time() + 60)
    await throttle.hit("k", window=60, now=time.time())
    if rest:
        users, identities = rest
        user = await users.create("ada@example.com", None)
        await identities.add(ExternalIdentity("https://idp", "s", user.id, "corp", None, 1.0))


def sqlite_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("gatepass-sqlite"))


async def test_sqlite_one_file_is_one_thread_for_every_store(tmp_path: Path) -> None:
    before = sqlite_threads()
    url = f"sqlite:///{tmp_path}/gatepass.db"
    stores = [await opener(url) for opener in SQL_OPENERS]
    conns = {id(connection_of(s)) for s in stores}
    assert len(conns) == 1
    db = connection_of(stores[0])
    assert isinstance(db, SQLiteDatabase) and db.references == 6
    await use_every_store(stores)
    assert sqlite_threads() - before == 1
    for store in stores[:-1]:
        await store.close()
        await store.close()  # closing twice releases once
    assert db.references == 1
    await stores[-1].ping()  # still usable: the last store holds it open
    await stores[-1].close()
    assert db.references == 0 and sqlite_threads() == before
    # A later open of the URL makes a new connection, with the data kept.
    again = await open_session_store(url)
    assert connection_of(again) is not db
    assert len(await again.list_user("u1")) == 1
    await again.close()


async def test_relative_and_absolute_spellings_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    a = await open_session_store("sqlite:///data/g.db")
    b = await open_throttle_store(f"sqlite:///{tmp_path}/data/g.db")
    try:
        assert connection_of(a) is connection_of(b)
    finally:
        await a.close()
        await b.close()


@pytest.mark.redis
async def test_redis_one_client_for_every_store(redis_url: str, redis_prefix: str) -> None:
    url = f"{redis_url}?prefix={redis_prefix}"
    stores = [await opener(url) for opener in REDIS_OPENERS]
    # Another prefix on the same server is another namespace, not another client.
    other = await open_session_store(f"{redis_url}?prefix={redis_prefix}other:")
    conn = connection_of(stores[0])
    assert isinstance(conn, RedisConnection)
    assert all(connection_of(s) is conn for s in [*stores, other])
    assert conn.references == 5
    assert {s.prefix for s in stores} == {redis_prefix} and other.prefix != redis_prefix
    try:
        await use_every_store(stores)
    finally:
        keys = [k async for k in conn.client.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await conn.client.delete(*keys)
        for store in [*stores, other]:
            await store.close()
    assert conn.references == 0


@pytest.mark.postgres
async def test_postgres_one_pool_for_every_store(postgres_url: str) -> None:
    stores = [await opener(postgres_url) for opener in SQL_OPENERS]
    respelled = await open_session_store(postgres_url.replace("postgresql://", "postgres://", 1))
    pool = connection_of(stores[0])
    assert isinstance(pool, PostgresPool)
    assert all(connection_of(s) is pool for s in [*stores, respelled])
    try:
        await use_every_store(stores)
        # Every store's tables exist after one bootstrap on the shared pool.
        async with pool.connection() as conn:
            tables = {
                r["tablename"]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                )
            }
        assert {
            "gatepass_sessions", "gatepass_refresh_families", "gatepass_revoked",
            "gatepass_generations", "gatepass_throttle", "gatepass_users",
            "gatepass_identities",
        } <= tables  # fmt: skip
    finally:
        for store in [*stores, respelled]:
            await store.close()
    assert pool.references == 0
