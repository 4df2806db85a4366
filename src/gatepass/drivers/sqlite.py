"""SQLite: one file, one thread, every store on the file sharing both.

sqlite3 blocks, so every statement runs on one dedicated thread that owns the
connection: the event loop never waits on the disk, and statements on one
database are serialised, which is what SQLite wants from a writer anyway.
WAL mode lets other processes (the CLI beside a running server) read while
one writes.

Each store declares its DDL (:attr:`SQLiteStore.SCHEMA`); the database runs
every declared schema once, in one transaction, before the first statement
that needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self, TypeVar

from gatepass.drivers.changes import ChangeSignal
from gatepass.drivers.registry import ConnectedStore, Schema, SQLConnection, shared
from gatepass.errors import StoreUnavailable

T = TypeVar("T")


class SQLiteDatabase(SQLConnection):
    backend = "sqlite"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatepass-sqlite")
        self._conn: sqlite3.Connection | None = None
        #: Published after every commit that changed a row; the local caches
        #: (sessions, revocation) are exact by it across processes.  The
        #: file's own signal replaces this in-process one when the database
        #: opens (a cache filled before that is emptied by the new word).
        self.changes = ChangeSignal(None)

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
                self.changes = ChangeSignal(self.path)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
        return self._conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the database thread, in autocommit mode."""
        if self._pending:
            await self.create_schemas(self._run_ddl)
        return await self._submit(lambda: fn(self._connection()))

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``.

        IMMEDIATE takes the write lock up front, so read-modify-write
        sequences cannot interleave with another process's writer.
        """
        if self._pending:
            await self.create_schemas(self._run_ddl)
        return await self._submit(lambda: self._in_transaction(fn))

    def _in_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def _run_ddl(self, schemas: list[Schema]) -> None:
        def create(conn: sqlite3.Connection) -> None:
            for schema in schemas:
                for statement in schema:
                    if not _column_present(conn, statement):
                        conn.execute(statement)

        await self._submit(lambda: self._in_transaction(create))

    def _publishing(self, call: Callable[[], T]) -> T:
        # On the database thread: after a call that changed rows (committed,
        # in autocommit mode or by the transaction's COMMIT), a new word.
        conn = self._connection()
        before = conn.total_changes
        try:
            return call()
        finally:
            if conn.total_changes != before:
                self.changes.publish()

    async def _submit(self, call: Callable[[], T]) -> T:
        self.stats.round_trips += 1
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: self._publishing(call))
        except (sqlite3.OperationalError, OSError) as exc:
            # Locked past the busy timeout, disk full, file gone: the store is
            # unusable for now.  The driver's message can quote SQL, not data.
            raise StoreUnavailable("The SQLite database is unavailable.", store="sqlite") from exc

    async def ping(self) -> None:
        await self.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def _close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)
        self.changes.close()


#: SQLite has no ``ADD COLUMN IF NOT EXISTS``: a schema upgrade written as
#: ``ALTER TABLE t ADD COLUMN c …`` runs only when ``t`` lacks ``c``.
_ADD_COLUMN = re.compile(r"\s*ALTER TABLE (\w+) ADD COLUMN (\w+)", re.IGNORECASE)


def _column_present(conn: sqlite3.Connection, statement: str) -> bool:
    match = _ADD_COLUMN.match(statement)
    if match is None:
        return False
    table, column = match.groups()
    rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
    return any(row[1] == column for row in rows)


def open_database(path: str) -> SQLiteDatabase:
    """The shared database for ``path`` (relative to the working directory)."""
    absolute = os.path.abspath(path)
    return shared(f"sqlite:{absolute}", SQLiteDatabase, lambda: SQLiteDatabase(absolute))


class SQLiteStore(ConnectedStore):
    """What every SQLite store shares: its database, schema, ping and close."""

    def __init__(self, db: SQLiteDatabase) -> None:
        super().__init__(db)
        self.db = db

    @classmethod
    async def open(cls, path: str | Path, **options: Any) -> Self:
        """A store on the shared database for ``path``, its tables created.

        SQLite is local: unlike the networked stores it is created at once,
        so a bad path fails at start-up rather than on the first request.
        """
        store = cls(open_database(str(path)), **options)
        try:
            await store.ping()
        except BaseException:
            await store.close()
            raise
        return store

    async def _changed(self, sql: str, params: tuple[Any, ...] | dict[str, Any]) -> int:
        """Run one statement; how many rows it changed."""
        return await self.db.run(lambda conn: conn.execute(sql, params).rowcount)
