"""An async front for one SQLite database file.

sqlite3 blocks, so every statement runs on one dedicated thread that owns the
connection: the event loop never waits on the disk, and statements on one
database are serialised, which is what SQLite wants from a writer anyway.
WAL mode lets other processes (the CLI beside a running server) read while
one writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gatepass.errors import StoreUnavailable

T = TypeVar("T")


class SQLiteDatabase:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatepass-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        # Runs on the worker thread only.
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                # Password and session hashes live here: owner-only from the
                # first byte (SQLite gives its -wal/-shm files the same mode).
                # O_EXCL matters: closing any descriptor of a file drops every
                # POSIX lock this process holds on it, SQLite's included, so
                # only a file nobody has open yet may be touched this way.
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
        return self._conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the database thread, in autocommit mode."""
        return await self._submit(lambda: fn(self._connection()))

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``.

        IMMEDIATE takes the write lock up front, so read-modify-write
        sequences cannot interleave with another process's writer.
        """

        def call() -> T:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._submit(call)

    async def _submit(self, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, call)
        except (sqlite3.OperationalError, OSError) as exc:
            # Locked past the busy timeout, disk full, file gone: the store is
            # unusable for now.  The driver's message can quote SQL, not data.
            raise StoreUnavailable("The SQLite database is unavailable.", store="sqlite") from exc

    async def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)
