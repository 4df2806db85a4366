"""Opening a user store from its URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatepass.errors import ConfigurationError
from gatepass.users.memory import MemoryUserStore
from gatepass.users.postgres import PostgresUserStore
from gatepass.users.sqlite import SQLiteUserStore
from gatepass.users.urls import open_user_store


async def test_memory() -> None:
    store = await open_user_store("memory://")
    assert isinstance(store, MemoryUserStore)
    await store.close()


async def test_sqlite_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "data" / "users.db"
    store = await open_user_store(f"sqlite:///{path}")
    assert isinstance(store, SQLiteUserStore)
    user = await store.create("ada@example.com", None)
    await store.close()
    assert path.exists()
    reopened = await open_user_store(f"sqlite:///{path}")
    try:
        assert await reopened.get(user.id) == user
    finally:
        await reopened.close()


async def test_sqlite_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_user_store("sqlite:///rel/users.db")
    await store.create("ada@example.com", None)
    await store.close()
    assert (tmp_path / "rel" / "users.db").exists()


@pytest.mark.postgres
async def test_postgres_schemes(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        store = await open_user_store(url)
        assert isinstance(store, PostgresUserStore)
        try:
            await store.ping()
        finally:
            await store.close()


async def test_postgres_is_opened_lazily() -> None:
    # Nothing listens on port 1: opening still works, first use reports it.
    store = await open_user_store("postgresql://nobody@127.0.0.1:1/none")
    assert isinstance(store, PostgresUserStore)
    await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://admin:hunter2@db.example.com:3306/users",
        "redis://:hunter2@127.0.0.1:6379/0",
        "sqlite://",
        "sqlite:///",
        "sqlite://hunter2@host/users.db",
        "sqlite:///users.db?password=hunter2",
        "memory://admin:hunter2@x",
        "admin:hunter2@db.example.com",
        "postgresql:/admin:hunter2@db.example.com/x",
        "",
    ],
)
async def test_unsupported_urls_are_refused_without_their_secrets(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        await open_user_store(url)
    assert "hunter2" not in str(info.value)
    assert "admin" not in str(info.value)


async def test_message_names_the_scheme_and_host() -> None:
    with pytest.raises(ConfigurationError) as info:
        await open_user_store("mysql://admin:hunter2@db.example.com:3306/users")
    assert "mysql://db.example.com:3306" in str(info.value)
