"""The session lifecycle: create, load, renew, rotate, destroy.

Security operations live here once (as Django's ``cycle_key``/``flush`` do),
whatever the store:

* the server mints every id: a token we did not issue, or one whose session
  is gone, is never adopted;
* login always issues a fresh id, and :meth:`rotate` issues one on privilege
  change, deleting the old one atomically;
* the idle and the absolute deadline are checked with an injected clock on
  every load, and expired sessions are deleted on sight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gatepass.errors import NotFound
from gatepass.sessions.config import SessionConfig
from gatepass.sessions.record import SessionRecord
from gatepass.sessions.store import UNKNOWN, SessionStore, Unknown
from gatepass.sessions.tokens import is_well_formed, new_token, token_key

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A session just created or rotated, with the token for its cookie.

    The token is the only copy of the secret; it goes into a cookie and
    nowhere else.
    """

    token: str
    record: SessionRecord


class SessionManager:
    def __init__(
        self,
        store: SessionStore,
        config: SessionConfig | None = None,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.store = store
        self.config = config or SessionConfig()
        self.clock = clock
        self._renew_after: dict[int, float] = {}
        self._cached: Callable[[str], SessionRecord | Unknown | None] | None = getattr(
            store, "cached", None
        )

    async def create(
        self,
        user_id: str,
        roles: tuple[str, ...] = (),
        *,
        remember: bool = False,
        ip: str | None = None,
        user_agent: str | None = None,
        replacing: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> IssuedSession:
        """Start a session for ``user_id``.

        ``replacing`` is the token the client presented, if any: that
        session is destroyed, whoever it belonged to, so a planted id never
        survives a login.
        """
        if not isinstance(user_id, str) or not user_id:
            # One id type everywhere: stores would otherwise disagree on 42
            # and "42" (SQLite gives back text, memory and Redis keep an int).
            raise TypeError("user_id must be a non-empty str")
        now = self.clock()
        cfg = self.config
        idle = cfg.remember_idle_timeout if remember else cfg.idle_timeout
        absolute = cfg.remember_absolute_timeout if remember else cfg.absolute_timeout
        token = new_token()
        record = SessionRecord(
            key=token_key(token),
            user_id=user_id,
            roles=tuple(roles),
            created_at=now,
            last_seen_at=now,
            expires_at=now + idle,
            absolute_expires_at=now + absolute,
            idle_timeout=idle,
            remember=remember,
            ip=ip,
            user_agent=user_agent[:512] if user_agent else None,
            data=dict(data or {}),
        )
        if replacing is not None and is_well_formed(replacing):
            await self.store.delete(token_key(replacing))
        await self.store.create(record)
        return IssuedSession(token, record)

    async def load(self, token: str) -> SessionRecord | None:
        """The live session for a token, renewed if due; None otherwise."""
        if not is_well_formed(token):
            return None
        return await self.load_key(token_key(token))

    def peek(self, key: str) -> SessionRecord | Unknown | None:
        """:meth:`load_key` answered from the store's memory, with no I/O.

        ``UNKNOWN`` when that is not possible: the store has nothing cached
        for ``key``, or the session is expired (to be deleted) or due for
        renewal (a write): the caller then awaits :meth:`load_key`.
        """
        cached = self._cached
        if cached is None:
            return UNKNOWN
        record = cached(key)
        if record is None or record is UNKNOWN:
            return record
        assert isinstance(record, SessionRecord)
        now = self.clock()
        if now >= record.expires_at or now >= record.absolute_expires_at:
            return UNKNOWN
        renew_after = self._renew_after.get(record.idle_timeout)
        if renew_after is None or now - record.last_seen_at >= renew_after:
            return UNKNOWN
        return record

    async def load_key(self, key: str) -> SessionRecord | None:
        """:meth:`load` by the token's store key (:func:`token_key`), for a
        caller that has checked and hashed the token already."""
        record = await self.store.get(key)
        if record is None:
            return None
        now = self.clock()
        if now >= record.expires_at or now >= record.absolute_expires_at:
            await self.store.delete(key)
            return None
        renew_after = self._renew_after.get(record.idle_timeout)
        if renew_after is None:
            renew_after = self._renew_after[record.idle_timeout] = self.config.renew_after(
                record.idle_timeout
            )
        if now - record.last_seen_at >= renew_after:
            renewed = record.touched(now)
            if not await self.store.touch(
                key, last_seen_at=renewed.last_seen_at, expires_at=renewed.expires_at
            ):
                return None
            record = renewed
        return record

    async def rotate(self, token: str) -> IssuedSession | None:
        """Give the session behind ``token`` a fresh id (privilege change).

        The old id stops working at once.  None when the session is gone.
        """
        record = await self.load(token)
        if record is None:
            return None
        fresh = new_token()
        now = self.clock()
        # The store builds the moved record from what it holds at the moment
        # of the move: roles or data changed since our load are kept.
        moved = await self.store.replace(
            record.key,
            token_key(fresh),
            last_seen_at=now,
            expires_at=min(now + record.idle_timeout, record.absolute_expires_at),
        )
        if moved is None:
            return None
        return IssuedSession(fresh, moved)

    async def destroy(self, token: str) -> SessionRecord | None:
        if not is_well_formed(token):
            return None
        return await self.store.delete(token_key(token))

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        now = self.clock()
        return [r for r in await self.store.list_user(user_id) if not r.is_expired(now)]

    async def revoke(self, user_id: str, public_id: str) -> None:
        """End one of the user's sessions, named by its public id.

        Raises NotFound when the user has no such session, so one user can
        never end another's.
        """
        for record in await self.store.list_user(user_id):
            if record.public_id == public_id:
                await self.store.delete(record.key)
                return
        raise NotFound("No such session.")

    async def revoke_all(self, user_id: str, *, keep: SessionRecord | None = None) -> int:
        return await self.store.delete_user(user_id, keep=keep.key if keep else None)
