from __future__ import annotations

from pathlib import Path

import pytest

from gatepass.errors import ConfigurationError
from gatepass.throttle.memory import MemoryThrottleStore
from gatepass.throttle.postgres import PostgresThrottleStore
from gatepass.throttle.redis import RedisThrottleStore
from gatepass.throttle.sqlite import SQLiteThrottleStore
from gatepass.throttle.urls import open_throttle_store


async def test_each_scheme_opens_its_store(tmp_path: Path) -> None:
    cases = [
        ("memory://", MemoryThrottleStore),
        (f"sqlite:///{tmp_path}/t.db", SQLiteThrottleStore),
        ("redis://127.0.0.1:6379/0", RedisThrottleStore),
        ("rediss://127.0.0.1:6380/0", RedisThrottleStore),
        ("postgresql://u@127.0.0.1/db", PostgresThrottleStore),
        ("POSTGRES://u@127.0.0.1/db", PostgresThrottleStore),
    ]
    for url, cls in cases:
        store = await open_throttle_store(url)
        try:
            assert isinstance(store, cls), url
        finally:
            await store.close()
    assert (tmp_path / "t.db").exists()


@pytest.mark.parametrize(
    "url",
    [
        "",
        "mysql://admin:hunter2@db/x",
        "ftp://admin:hunter2@host/",
        "admin:hunter2@host",
        "sqlite://admin:hunter2@host/x.db",
        "sqlite:///",
        "redis://admin:hunter2@[::1/0",
    ],
)
async def test_bad_urls_are_configuration_errors_without_credentials(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        await open_throttle_store(url)
    assert "hunter2" not in str(info.value)
    assert info.value.__cause__ is None or "hunter2" not in str(info.value.__cause__)
