"""The session store protocol.

A store keeps :class:`~gatepass.sessions.record.SessionRecord` values keyed by
the hash of the session token, plus a per-user index, so that everything done
"for a user" costs O(that user's sessions) and never scans the store.

Tiers, as in express-session: ``create``/``get``/``delete`` are the core;
``touch`` is what makes sliding expiry cheap; the per-user methods serve the
account page and revocation.  Every method raises
:class:`~gatepass.errors.StoreUnavailable` when the backend cannot be reached,
never a driver exception and never a silent "not found".

Stores do not judge expiry beyond dropping what is past ``expires_at`` (with
a TTL where the backend has one, with :meth:`purge_expired` otherwise); the
:class:`~gatepass.sessions.manager.SessionManager` checks the deadlines with
its own clock.
"""

from __future__ import annotations

from typing import Protocol

from gatepass.drivers.changes import UNKNOWN, Unknown
from gatepass.sessions.record import SessionRecord

__all__ = ["UNKNOWN", "SessionStore", "Unknown"]




class SessionStore(Protocol):
    async def create(self, record: SessionRecord) -> None:
        """Store a new session and add it to its user's index.

        Keys are unique: creating a key that already exists is a programming
        error and raises ``ValueError("session key already exists")``, leaving
        the stored session untouched.
        """

    async def get(self, key: str) -> SessionRecord | None:
        """The session stored under ``key``, or None."""

    async def touch(self, key: str, *, last_seen_at: float, expires_at: float) -> bool:
        """Record activity: move ``last_seen_at`` and ``expires_at`` forward.

        Returns False when the session no longer exists (it is not recreated).
        """

    async def update_data(self, key: str, data: dict[str, object]) -> bool:
        """Replace the application data of a session; False when it is gone."""

    async def replace(
        self, old_key: str, new_key: str, *, last_seen_at: float, expires_at: float
    ) -> SessionRecord | None:
        """Atomically move the session under ``old_key`` to ``new_key``.

        Used when the session id is regenerated.  Only ``key``,
        ``last_seen_at`` and ``expires_at`` change; every other field (user,
        roles, data, created_at, absolute deadline) is whatever the store
        holds at the moment of the move, so a ``set_roles`` or
        ``update_data`` that landed after the caller last read the session
        is kept.  Of several concurrent replaces of one key exactly one
        wins.  Returns the moved record, or None, storing nothing, when
        ``old_key`` no longer exists.  A ``new_key`` that already exists
        raises ValueError, as in :meth:`create`, and changes nothing.
        """

    async def delete(self, key: str) -> SessionRecord | None:
        """Remove a session; returns what was removed, or None."""

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions, oldest first."""

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Remove every session of the user except ``keep``; returns how many."""

    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> int:
        """Rewrite the roles snapshot of every session of the user."""

    async def purge_expired(self, now: float) -> int:
        """Drop sessions past ``expires_at`` (a no-op where the backend has TTLs)."""

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the backend answers."""

    async def close(self) -> None:
        """Release connections.  The store is not used afterwards."""
