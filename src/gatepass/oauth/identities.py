"""External identities: (issuer, subject) → user.

An account at a provider is named by the pair (issuer, subject), never by its
email: emails change hands and are not always verified, while ``sub`` is
stable and unique per issuer (OIDC Core §5.7).  Stores enforce the pair's
uniqueness, so two concurrent first logins cannot create two links.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gatepass.drivers.ids import user_id as checked
from gatepass.errors import Conflict

__all__ = [
    "ExternalIdentity",
    "IdentityLinked",
    "IdentityStore",
    "MemoryIdentityStore",
]


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    issuer: str
    subject: str
    user_id: str
    #: The configured provider name it was linked through (for display).
    provider: str
    #: The provider's email at link time, only if it was verified.
    email: str | None = None
    created_at: float = 0.0


class IdentityLinked(Conflict):
    code = "identity_linked"
    default_detail = "This external account is already linked to a user."


class IdentityStore(Protocol):
    """Where external identities live; same database as the users.

    Every method raises :class:`~gatepass.errors.StoreUnavailable` when the
    backend cannot be reached.
    """

    async def get(self, issuer: str, subject: str) -> ExternalIdentity | None: ...

    async def add(self, identity: ExternalIdentity) -> None:
        """Link; raises :class:`IdentityLinked` when (issuer, subject) is taken."""

    async def list_user(self, user_id: str) -> list[ExternalIdentity]:
        """The user's identities, oldest first."""

    async def remove(self, issuer: str, subject: str, user_id: str) -> bool:
        """Unlink, only if it belongs to ``user_id``; True when a row went."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryIdentityStore:
    """For tests and single-process development."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._rows: dict[tuple[str, str], ExternalIdentity] = {}
        self._clock = clock

    async def get(self, issuer: str, subject: str) -> ExternalIdentity | None:
        return self._rows.get((issuer, subject))

    async def add(self, identity: ExternalIdentity) -> None:
        checked(identity.user_id)
        key = (identity.issuer, identity.subject)
        if key in self._rows:
            raise IdentityLinked()
        self._rows[key] = identity

    async def list_user(self, user_id: str) -> list[ExternalIdentity]:
        checked(user_id)
        found = [i for i in self._rows.values() if i.user_id == user_id]
        return sorted(found, key=lambda i: i.created_at)

    async def remove(self, issuer: str, subject: str, user_id: str) -> bool:
        row = self._rows.get((issuer, subject))
        if row is None or row.user_id != checked(user_id):
            return False
        del self._rows[(issuer, subject)]
        return True

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
