"""Accounts in a dict: for development, tests of apps, and single-process use.

Like the other in-process stores, a product feature rather than a test double:
it passes the same contract suite as the SQL stores.  Nothing survives the
process and nothing is shared between workers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from gatepass.drivers.ids import user_id as checked
from gatepass.errors import InvalidRequest, UserExists
from gatepass.users.model import User


class MemoryUserStore:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._users: dict[str, User] = {}
        self._by_email: dict[str, str] = {}

    async def create(
        self, email: str, password_hash: str | None, roles: tuple[str, ...] = ()
    ) -> User:
        # No await between the check and the insert: atomic on the event loop.
        if email in self._by_email:
            raise UserExists()
        user = User(
            id=uuid.uuid4().hex,
            email=email,
            password_hash=password_hash,
            roles=tuple(roles),
            created_at=self._clock(),
        )
        self._users[user.id] = user
        self._by_email[email] = user.id
        return user

    async def get(self, user_id: str) -> User | None:
        return self._users.get(checked(user_id))

    async def get_by_email(self, email: str) -> User | None:
        user_id = self._by_email.get(email)
        return None if user_id is None else self._users[user_id]

    async def list(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        if limit < 0 or offset < 0:
            raise InvalidRequest("limit and offset must not be negative.")
        ordered = sorted(self._users.values(), key=lambda u: (u.created_at, u.id))
        return ordered[offset : offset + limit]

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self._update(user_id, lambda u: replace(u, password_hash=password_hash))

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        self._update(user_id, lambda u: replace(u, disabled=disabled))

    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> None:
        self._update(user_id, lambda u: replace(u, roles=tuple(roles)))

    async def set_email_verified(self, user_id: str, verified: bool) -> None:
        self._update(user_id, lambda u: replace(u, email_verified=verified))

    async def set_email(self, user_id: str, email: str, *, expected: str) -> bool:
        # No await between the checks and the writes: atomic on the event loop.
        user = self._users.get(checked(user_id))
        if user is None or user.email != expected:
            return False
        if self._by_email.get(email, user.id) != user.id:
            raise UserExists()
        del self._by_email[user.email]
        self._by_email[email] = user.id
        self._users[user.id] = replace(user, email=email, email_verified=True)
        return True

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _update(self, user_id: str, change: Callable[[User], User]) -> None:
        # An unknown id is a no-op, as in the SQL stores (an UPDATE of no row).
        user = self._users.get(checked(user_id))
        if user is not None:
            self._users[user_id] = change(user)
