"""The SQLite file holds password and session hashes: owner-only."""

from __future__ import annotations

import stat
from pathlib import Path

from gatepass.stores.sqlite import SQLiteSessionStore
from tests.stores.conftest import make_record


async def test_database_and_wal_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "gatepass.db"
    store = await SQLiteSessionStore.open(path)
    try:
        await store.create(make_record())
        files = [p for p in path.parent.iterdir() if p.name.startswith("gatepass.db")]
        assert path in files
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, file.name
    finally:
        await store.close()
