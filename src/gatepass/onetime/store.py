"""The contract every one-time token store honours.

A one-time token is what a reset or verification link carries.  The store
sees only its SHA-256 (hex), never the token: a copy of the database gives
no working link.  Each token has a *purpose* (``"reset"``, ``"verify"``), a
user, a short piece of *data* (the address a verification link was mailed
to) and an expiry by the caller's clock.

``take`` is the only way to use a token, and it removes it: of any number of
concurrent takes of one token, on any number of servers, exactly one gets
the grant.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable


class Grant(NamedTuple):
    """What a taken token was issued for."""

    user_id: str
    data: str


@runtime_checkable
class OneTimeTokenStore(Protocol):
    async def put(
        self, token_hash: str, *, purpose: str, user_id: str, data: str, expires_at: float
    ) -> None:
        """Keep a new token (hashes are random: a collision is not a case to handle)."""
        ...

    async def take(self, token_hash: str, *, purpose: str, now: float) -> Grant | None:
        """Atomically remove the token and return its grant.

        None when the token is unknown, already taken, dropped, of another
        purpose (left in place), or expired (``expires_at <= now``).
        """
        ...

    async def drop_user(self, user_id: str, purpose: str) -> int:
        """Void every outstanding token of the user for ``purpose``; returns how many."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Delete expired tokens; returns how many (stores with native expiry: 0)."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
