"""open_session_store: every scheme, against the real backends, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatepass.drivers.redact import redact
from gatepass.errors import ConfigurationError, StoreUnavailable
from gatepass.sessions.store import SessionStore
from gatepass.stores.memory import MemorySessionStore
from gatepass.stores.postgres import PostgresSessionStore
from gatepass.stores.redis import RedisSessionStore
from gatepass.stores.sqlite import SQLiteSessionStore
from gatepass.stores.urls import open_session_store
from tests.conftest import free_port
from tests.stores.conftest import make_record


async def _round_trip(store: SessionStore) -> None:
    try:
        record = make_record()
        await store.create(record)
        assert await store.get(record.key) == record
        assert await store.delete(record.key) == record
    finally:
        await store.close()


async def test_memory() -> None:
    store = await open_session_store("memory://")
    assert isinstance(store, MemorySessionStore)
    await _round_trip(store)


async def test_sqlite_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_session_store("sqlite:///data/sessions.db")
    assert isinstance(store, SQLiteSessionStore)
    await _round_trip(store)
    assert (tmp_path / "data" / "sessions.db").is_file()


async def test_sqlite_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "abs" / "sessions.db"
    store = await open_session_store(f"sqlite:///{path}")  # path starts with "/"
    assert isinstance(store, SQLiteSessionStore)
    await _round_trip(store)
    assert path.is_file()


@pytest.mark.redis
async def test_redis(redis_url: str) -> None:
    store = await open_session_store(redis_url)
    assert isinstance(store, RedisSessionStore)
    record = make_record()
    try:
        await store.create(record)
        assert await store.get(record.key) == record
    finally:
        await store.delete(record.key)
        await store.close()


@pytest.mark.postgres
async def test_postgres_both_spellings(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        store = await open_session_store(url)
        assert isinstance(store, PostgresSessionStore)
        await _round_trip(store)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:{port}/0",
        "rediss://127.0.0.1:{port}/0",
        "postgresql://postgres@127.0.0.1:{port}/test",
    ],
)
async def test_opening_never_needs_the_server(url: str) -> None:
    # A server must be able to start while its store is down.
    store = await open_session_store(url.format(port=free_port()))
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://admin:s3cret@db.internal/app?password=s3cret",
        "sqlite://admin:s3cret@host/sessions.db",
        "redis://:s3cret@host:notaport/0",
        "mongodb:admin:s3cret@host",
        "",
    ],
)
async def test_bad_urls_are_configuration_errors_without_secrets(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        await open_session_store(url)
    assert "s3cret" not in str(info.value)
    assert "admin" not in str(info.value)


def test_redact_keeps_scheme_host_and_port_only() -> None:
    assert redact("postgresql://u:pw@db:5432/app?sslpassword=pw") == "postgresql://db:5432"
    assert redact("redis://:pw@[::1]:6379/0") == "redis://[::1]:6379"
    assert redact("sqlite:////var/lib/s.db") == "sqlite://"


def test_redis_prefix_query_parameter_is_split_off() -> None:
    from gatepass.drivers.urls import split_prefix as redis_url_and_prefix

    assert redis_url_and_prefix("redis://h:1/0?prefix=app1:") == ("redis://h:1/0", "app1:")
    assert redis_url_and_prefix("redis://h:1/0") == ("redis://h:1/0", "gatepass:")
    assert redis_url_and_prefix("redis://h:1/0?prefix=a&db=2") == ("redis://h:1/0?db=2", "a")
    for bad in ("redis://h/0?prefix=", "redis://h/0?prefix=a%20b", "redis://h/0?prefix=a&prefix=b"):
        with pytest.raises(ConfigurationError):
            redis_url_and_prefix(bad)
