"""User accounts: the record and the store protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class User:
    id: str
    #: Normalised with :func:`gatepass.users.emails.normalize_email`.
    email: str
    #: An Argon2id (or legacy bcrypt) hash; None for accounts that only sign
    #: in through an external provider.
    password_hash: str | None
    roles: tuple[str, ...] = ()
    disabled: bool = False
    created_at: float = 0.0
    #: The owner proved they read mail at ``email`` (a verification link, a
    #: provider that asserts it, or an admin).
    email_verified: bool = False


class UserStore(Protocol):
    """Where accounts live.  Emails passed in are already normalised.

    Every method raises :class:`~gatepass.errors.StoreUnavailable` when the
    backend cannot be reached.
    """

    async def create(
        self, email: str, password_hash: str | None, roles: tuple[str, ...] = ()
    ) -> User:
        """Create an account; raises UserExists when the email is taken."""

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def list(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        """Accounts ordered by creation time."""

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def set_disabled(self, user_id: str, disabled: bool) -> None: ...

    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> None: ...

    async def set_email_verified(self, user_id: str, verified: bool) -> None: ...

    async def set_email(self, user_id: str, email: str, *, expected: str) -> bool:
        """Atomically move the account to ``email``, verified, if its address
        is still ``expected``; whether it moved.  Raises UserExists when
        another account has ``email`` (the unique constraint decides races)."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
