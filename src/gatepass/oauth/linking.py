"""Which user an external identity signs in as.

The rules, in order:

1. A signed-in user who started the flow *links*: the identity joins that
   account (409 if it already belongs to another one).
2. A known (issuer, subject) signs in as its user.  Emails play no part.
3. An unknown identity with a *verified* email, from a provider configured
   with ``trust_email``, joins the account with that email if there is one.
   Without ``trust_email`` an existing account with that email is a 409:
   sign in with the password and link from there.  (Local accounts are not
   email-verified; linking by email alone would hand a pre-registered
   account to whoever registered the address first.)
4. Otherwise a new passwordless account is created, when
   ``create_users`` allows it.  An *unverified* email is never stored as
   the account's email (it could later collide with its real owner): the
   account gets a random ``…@oauth.invalid`` placeholder.  So an unverified
   email never links to, or blocks, any local account.
   With ``GATEPASS_EMAIL_VERIFICATION=required`` no such account is made
   at all: the sign-in is refused with ``email_unverified`` (a placeholder
   address can never be verified, so the account could never sign in).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import replace

from gatepass.errors import (
    Conflict,
    EmailUnverified,
    InvalidRequest,
    PermissionDenied,
    UserExists,
)
from gatepass.oauth.config import ProviderConfig
from gatepass.oauth.identities import ExternalIdentity, IdentityLinked, IdentityStore
from gatepass.oauth.profile import Profile
from gatepass.users.emails import normalize_email
from gatepass.users.model import User, UserStore

PLACEHOLDER_DOMAIN = "oauth.invalid"


class AccountLinker:
    def __init__(
        self,
        users: UserStore,
        identities: IdentityStore,
        *,
        create_users: bool = True,
        require_verified_email: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.users = users
        self.identities = identities
        self.create_users = create_users
        self.require_verified_email = require_verified_email
        self._clock = clock

    async def resolve(
        self, config: ProviderConfig, profile: Profile, *, link_user: str | None
    ) -> User:
        user = await self._resolve(config, profile, link_user=link_user)
        # A provider that asserts it verified the account's very address
        # counts as a verification (SPEC "Account lifecycle").
        if not user.email_verified and _verified_email(profile) == user.email:
            await self.users.set_email_verified(user.id, True)
            user = replace(user, email_verified=True)
        return user

    async def _resolve(
        self, config: ProviderConfig, profile: Profile, *, link_user: str | None
    ) -> User:
        known = await self.identities.get(profile.issuer, profile.subject)
        if link_user is not None:
            if known is not None and known.user_id != link_user:
                raise IdentityLinked(
                    f"This {config.title} account is already linked to another user."
                )
            user = await self._enabled(link_user)
            if known is None:
                await self._link(config, profile, user.id, email=None)
            return user
        if known is not None:
            return await self._enabled(known.user_id)

        email = _verified_email(profile)
        if email is not None:
            existing = await self.users.get_by_email(email)
            if existing is not None:
                if not config.trust_email:
                    raise Conflict(
                        f"An account with this email exists. Sign in with your password, "
                        f"then link {config.title} from your account page."
                    )
                await self._link(config, profile, existing.id, email=email)
                return await self._enabled(existing.id)
        if email is None and self.require_verified_email:
            raise unverified_refusal(config)
        if not self.create_users:
            raise PermissionDenied(
                f"No account is linked to this {config.title} sign-in. Sign in with your "
                "password, then link it from your account page."
            )
        user = await self._create(config, email)
        try:
            await self._link(config, profile, user.id, email=email)
        except IdentityLinked:
            # Another first login of the same identity won the race: its
            # account is the one.  Ours is left disabled, never reachable.
            await self.users.set_disabled(user.id, True)
            winner = await self.identities.get(profile.issuer, profile.subject)
            if winner is None:
                raise
            return await self._enabled(winner.user_id)
        return user

    async def _create(self, config: ProviderConfig, email: str | None) -> User:
        if email is not None:
            try:
                return await self.users.create(email, None, ())
            except UserExists:  # registered a moment ago: same answer as rule 3
                raise Conflict(
                    f"An account with this email exists. Sign in with your password, "
                    f"then link {config.title} from your account page."
                ) from None
        for _ in range(3):
            placeholder = f"{config.name}-{secrets.token_hex(10)}@{PLACEHOLDER_DOMAIN}"
            try:
                return await self.users.create(placeholder, None, ())
            except UserExists:
                continue
        raise UserExists()

    async def _link(
        self, config: ProviderConfig, profile: Profile, user_id: str, *, email: str | None
    ) -> None:
        await self.identities.add(
            ExternalIdentity(
                issuer=profile.issuer,
                subject=profile.subject,
                user_id=user_id,
                provider=config.name,
                email=email,
                created_at=self._clock(),
            )
        )

    async def _enabled(self, user_id: str) -> User:
        user = await self.users.get(user_id)
        if user is None or user.disabled:
            raise PermissionDenied("This account cannot sign in.")
        return user


def unverified_refusal(config: ProviderConfig) -> EmailUnverified:
    """The ``email_unverified`` refusal of a provider sign-in, in words that say why."""
    return EmailUnverified(
        f"{config.title} did not confirm an email address for this account, and this site "
        "needs a confirmed one. Sign in another way, or register with your email address."
    )


def _verified_email(profile: Profile) -> str | None:
    if not profile.email_verified or profile.email is None:
        return None
    try:
        return normalize_email(profile.email)
    except InvalidRequest:
        return None
