"""Account operations that span users, passwords and sessions.

The server, the CLI and library users all go through here, so the security
rules hold whatever the entry point: an unknown email costs a dummy hash and
answers exactly like a wrong password; a new password or a disabled account
ends every session; a role change reaches the live sessions at once.
"""

from __future__ import annotations

import re

from gatepass.errors import (
    EmailUnverified,
    InvalidCredentials,
    InvalidRequest,
    NotFound,
    UserExists,
)
from gatepass.logins import Logins
from gatepass.sessions.manager import SessionManager
from gatepass.throttle import LoginThrottle
from gatepass.tokens.service import TokenService
from gatepass.users.emails import normalize_email
from gatepass.users.model import User, UserStore
from gatepass.users.passwords import PasswordHasher

#: Role names: a conservative alphabet, so a role can never smuggle a
#: separator, a space or a line break into a header (X-Auth-Roles), a log
#: line or a listing.
ROLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def check_role(role: str) -> str:
    if not ROLE_NAME.fullmatch(role):
        raise InvalidRequest(
            "A role is 1-64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit."
        )
    return role


class Accounts:
    def __init__(
        self,
        users: UserStore,
        sessions: SessionManager,
        hasher: PasswordHasher,
        *,
        throttle: LoginThrottle | None = None,
        tokens: TokenService | None = None,
        require_verified_email: bool = False,
    ) -> None:
        self.users = users
        #: GATEPASS_EMAIL_VERIFICATION=required: a right password of an
        #: unverified account gets EmailUnverified, never a session or token.
        self.require_verified_email = require_verified_email
        self.sessions = sessions
        self.hasher = hasher
        self.throttle = throttle
        self.tokens = tokens
        self.logins = Logins(sessions, tokens)

    async def register(self, email: str, password: str, roles: tuple[str, ...] = ()) -> User:
        """Create an account.  Raises WeakPassword, InvalidRequest or UserExists."""
        normalized = normalize_email(email)
        for role in roles:
            check_role(role)
        self.hasher.check_policy(password)
        # Checked before hashing only to save the hash cost on a duplicate;
        # the store's unique constraint is what actually decides a race.
        if await self.users.get_by_email(normalized) is not None:
            raise UserExists()
        password_hash = await self.hasher.hash(password)
        return await self.users.create(normalized, password_hash, tuple(roles))

    async def authenticate(
        self, email: str, password: str, *, client_ip: str | None = None
    ) -> User:
        """The enabled user with these credentials, or InvalidCredentials.

        Unknown, wrong and disabled all raise the same error after the same
        amount of hashing work.  A stored hash that is legacy (bcrypt) or made
        with older parameters is upgraded on success.  With a throttle, a
        client in back-off gets RateLimited before any hashing, and every
        outcome is counted (unknown accounts exactly like known ones).
        """
        self.hasher.check_length(password)
        if self.throttle is not None:
            await self.throttle.check(email, client_ip)
        try:
            user = await self._verify(email, password)
        except InvalidCredentials:
            if self.throttle is not None:
                await self.throttle.failure(email, client_ip)
            raise
        if self.throttle is not None:
            await self.throttle.success(email, client_ip)
        if self.require_verified_email and not user.email_verified:
            raise EmailUnverified()
        return user

    async def check_password(self, user: User, password: str, *, client_ip: str | None) -> None:
        """InvalidCredentials unless ``password`` is the user's (a signed-in
        user proving it again); throttled and counted exactly like a login."""
        self.hasher.check_length(password)
        if self.throttle is not None:
            await self.throttle.check(user.email, client_ip)
        try:
            await self._verify(user.email, password)
        except InvalidCredentials:
            if self.throttle is not None:
                await self.throttle.failure(user.email, client_ip)
            raise
        if self.throttle is not None:
            await self.throttle.success(user.email, client_ip)

    async def change_password(self, user: User, password: str) -> None:
        """Store a new password without ending any login (the caller decides
        which to keep).  WeakPassword or InvalidRequest for a bad one."""
        self.hasher.check_policy(password)
        await self.users.set_password_hash(user.id, await self.hasher.hash(password))

    async def _verify(self, email: str, password: str) -> User:
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

    async def set_password(self, user: User, password: str) -> int:
        """Set a new password and end every login of the user; returns how many."""
        self.hasher.check_policy(password)
        await self.users.set_password_hash(user.id, await self.hasher.hash(password))
        return await self.end_everything(user.id)

    async def disable(self, user: User) -> int:
        await self.users.set_disabled(user.id, True)
        return await self.end_everything(user.id)

    async def end_everything(self, user_id: str) -> int:
        """Every login of the user, whatever its kind, at once ("log out everywhere")."""
        return await self.logins.end_all(user_id)

    async def enable(self, user: User) -> None:
        await self.users.set_disabled(user.id, False)

    async def grant_role(self, user: User, role: str) -> User:
        check_role(role)
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
