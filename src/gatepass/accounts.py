"""Account operations that span users, passwords and sessions.

The server, the CLI and library users all go through here, so the security
rules hold whatever the entry point: an unknown email costs a dummy hash and
answers exactly like a wrong password; a new password or a disabled account
ends every session; a role change reaches the live sessions at once.
"""

from __future__ import annotations

from gatepass.errors import InvalidCredentials, InvalidRequest, NotFound, UserExists
from gatepass.sessions.manager import SessionManager
from gatepass.users.emails import normalize_email
from gatepass.users.model import User, UserStore
from gatepass.users.passwords import PasswordHasher


class Accounts:
    def __init__(
        self, users: UserStore, sessions: SessionManager, hasher: PasswordHasher
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.hasher = hasher

    async def register(self, email: str, password: str, roles: tuple[str, ...] = ()) -> User:
        """Create an account.  Raises WeakPassword, InvalidRequest or UserExists."""
        normalized = normalize_email(email)
        self.hasher.check_policy(password)
        # Checked before hashing only to save the hash cost on a duplicate;
        # the store's unique constraint is what actually decides a race.
        if await self.users.get_by_email(normalized) is not None:
            raise UserExists()
        password_hash = await self.hasher.hash(password)
        return await self.users.create(normalized, password_hash, tuple(roles))

    async def authenticate(self, email: str, password: str) -> User:
        """The enabled user with these credentials, or InvalidCredentials.

        Unknown, wrong and disabled all raise the same error after the same
        amount of hashing work.  A stored hash that is legacy (bcrypt) or made
        with older parameters is upgraded on success.
        """
        self.hasher.check_length(password)
        try:
            normalized = normalize_email(email)
        except InvalidRequest:
            # A malformed email is just another unknown user.
            normalized = None
        user = await self.users.get_by_email(normalized) if normalized else None
        if user is None or user.password_hash is None:
            await self.hasher.verify_dummy(password)
            raise InvalidCredentials()
        result = await self.hasher.verify(user.password_hash, password)
        if not result.ok or user.disabled:
            raise InvalidCredentials()
        if result.new_hash is not None:
            await self.users.set_password_hash(user.id, result.new_hash)
        return user

    async def get(self, email: str) -> User:
        user = await self.users.get_by_email(normalize_email(email))
        if user is None:
            raise NotFound("No such user.")
        return user

    async def set_password(self, user: User, password: str) -> None:
        """Set a new password and end every session of the user."""
        self.hasher.check_policy(password)
        await self.users.set_password_hash(user.id, await self.hasher.hash(password))
        await self.sessions.revoke_all(user.id)

    async def disable(self, user: User) -> None:
        await self.users.set_disabled(user.id, True)
        await self.sessions.revoke_all(user.id)

    async def enable(self, user: User) -> None:
        await self.users.set_disabled(user.id, False)

    async def grant_role(self, user: User, role: str) -> User:
        if role in user.roles:
            return user
        return await self._set_roles(user, (*user.roles, role))

    async def revoke_role(self, user: User, role: str) -> User:
        if role not in user.roles:
            return user
        return await self._set_roles(user, tuple(r for r in user.roles if r != role))

    async def _set_roles(self, user: User, roles: tuple[str, ...]) -> User:
        await self.users.set_roles(user.id, roles)
        # Live sessions carry a snapshot of the roles: rewrite it, so that a
        # revoked role stops working on the very next request.
        await self.sessions.store.set_roles(user.id, roles)
        refreshed = await self.users.get(user.id)
        if refreshed is None:
            raise NotFound("No such user.")
        return refreshed
