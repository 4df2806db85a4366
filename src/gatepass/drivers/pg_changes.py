"""PostgreSQL's invalidation stream for the local caches: LISTEN/NOTIFY.

The tables whose reads are cached (sessions, revocation entries and
generations) carry a statement-level trigger that ``pg_notify``s
``gatepass_changes``; PostgreSQL delivers notifications at commit, to every
listening connection, whoever wrote (another gatepass process, an admin's
SQL).  One dedicated connection per pool listens; each notification gives
the caches a new word (:mod:`gatepass.drivers.changes`), which empties them.

The same rule as the Redis tracking stream: while the listening connection
is not known to be alive (not yet connected, dropped, silent past a ping)
the word changes on every read, so caches neither serve nor fill, and every
request reads the database.  Writes made by this process publish a new word
themselves as soon as they return, without waiting for their own
notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import asyncpg

logger = logging.getLogger("gatepass.stores")

CHANNEL = "gatepass_changes"

#: How the listening connections show in ``pg_stat_activity``.
APPLICATION_NAME = "gatepass-changes"

#: The trigger function, created once (with the schemas) in the first schema
#: of the search path, like the tables.
FUNCTION = f"""
CREATE OR REPLACE FUNCTION gatepass_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END
$$
"""


def trigger_ddl(table: str) -> tuple[str, ...]:
    """The statements that make ``table`` announce its changes."""
    name = f"{table}_changes"
    return (
        FUNCTION,
        f"DROP TRIGGER IF EXISTS {name} ON {table}",
        f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION gatepass_notify_change()",
    )


class PgChangeStream:
    """One listening connection; a word that changes with every notification."""

    def __init__(self, dsn: str, *, ping_interval: float = 1.0) -> None:
        self.dsn = dsn
        self.ping_interval = ping_interval
        self.healthy = False
        #: The listening connection's server process (pg_stat_activity.pid), while connected.
        self.backend_pid: int | None = None
        self._word = os.urandom(8)
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def word(self) -> bytes:
        """The current word; a fresh one on every call while unhealthy."""
        self.ensure_started()
        return self._word if self.healthy else os.urandom(8)

    def publish(self) -> None:
        """Something changed (a local write, a notification, the stream's health)."""
        self._word = os.urandom(8)

    def ensure_started(self) -> None:
        if self._task is None and not self._closed:
            try:
                self._task = asyncio.get_running_loop().create_task(
                    self._listen(), name="gatepass-pg-changes"
                )
            except RuntimeError:  # no running loop (a synchronous caller)
                return

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _set_healthy(self, healthy: bool) -> None:
        self.publish()
        self.healthy = healthy

    def _on_notify(self, *_: Any) -> None:
        self.publish()

    async def _listen(self) -> None:
        backoff = 0.05
        while not self._closed:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=5, server_settings={"application_name": APPLICATION_NAME}
                )
                await conn.add_listener(CHANNEL, self._on_notify)
                conn.add_termination_listener(lambda _c: self._set_healthy(False))
                self.backend_pid = conn.get_server_pid()
                self._set_healthy(True)
                backoff = 0.05
                while not self._closed:
                    await asyncio.sleep(self.ping_interval)
                    # Notifications arrive between statements; a ping both
                    # proves the connection alive and lets them through.
                    await conn.fetchval("SELECT 1", timeout=self.ping_interval)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if self.healthy:
                    logger.warning("PostgreSQL cache disabled: change stream lost (%s)",
                                   type(exc).__name__)  # fmt: skip
            finally:
                self._set_healthy(False)
                self.backend_pid = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)


C = TypeVar("C", bound=type)


def publishes_writes(*names: str) -> Callable[[C], C]:
    """Class decorator: after each named write method returns (committed),
    publish a new word at once, so this process's own caches never wait for
    their notification.  The store must have ``self.pool.changes``."""

    def decorate(cls: C) -> C:
        for name in names:
            original = getattr(cls, name)

            async def wrapper(
                self: Any, *args: Any, _original: Any = original, **kwargs: Any
            ) -> Any:
                try:
                    return await _original(self, *args, **kwargs)
                finally:
                    self.pool.changes.publish()

            functools.update_wrapper(wrapper, original)
            setattr(cls, name, wrapper)
        return cls

    return decorate
