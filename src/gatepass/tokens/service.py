"""Issuing, refreshing, verifying and revoking tokens: the one place the rules live.

* An access token is a short-lived JWT; a refresh token is opaque, stored
  only as a hash, and rotated on every use (see :mod:`.refresh`).
* Reusing a rotated refresh token revokes its whole family, and every access
  token of that family stops working with it (their ``fid`` is checked).
* "Log out everywhere", a new password and a disabled account bump the user's
  generation: one write that ends every token issued before it.
* Revocation is checked on every request: the denylist (or allowlist) by
  ``jti`` and the generation, in one store round trip, O(1) whatever the
  list's size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gatepass.errors import InvalidGrant, InvalidToken
from gatepass.tokens.access import AccessClaims, AccessTokenCodec
from gatepass.tokens.refresh import (
    Family,
    RefreshStore,
    RotateOutcome,
    family_id_of,
    is_well_formed,
    new_token,
    successor,
    token_hash,
)
from gatepass.tokens.revocation import RevocationStore

logger = logging.getLogger("gatepass.tokens")

RevocationMode = Literal["denylist", "allowlist"]


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    claims: AccessClaims

    def as_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }


@dataclass
class TokenService:
    codec: AccessTokenCodec
    refresh_store: RefreshStore
    revocation: RevocationStore
    #: Derives successors (see refresh.successor); the server's HMAC secret.
    server_key: bytes
    refresh_ttl: int = 14 * 24 * 3600
    #: Two tabs refreshing at once both get the same successor inside this
    #: window; a replay after it revokes the family.
    grace: float = 10.0
    mode: RevocationMode = "denylist"
    clock: Callable[[], float] = field(default=time.time)

    async def issue(
        self, user_id: str, *, roles: tuple[str, ...] = (), scopes: tuple[str, ...] = ()
    ) -> TokenPair:
        """A new family: an access token and the first refresh token."""
        now = self.clock()
        generation = await self.revocation.generation(user_id)
        refresh_token = new_token()
        family_id = family_id_of(refresh_token)
        assert family_id is not None
        family = Family(
            family_id=family_id,
            user_id=user_id,
            created_at=now,
            absolute_expires_at=now + self.refresh_ttl,
            current_hash=token_hash(refresh_token),
            previous_hash=None,
            rotated_at=None,
            generation=generation,
            revoked=False,
            data={"roles": list(roles), "scopes": list(scopes)},
        )
        await self.refresh_store.create(family)
        return await self._access(family, refresh_token)

    async def _access(self, family: Family, refresh_token: str) -> TokenPair:
        token, claims = self.codec.issue(
            family.user_id,
            roles=_strings(family.data.get("roles")),
            scopes=_strings(family.data.get("scopes")),
            fid=family.family_id,
            gen=family.generation,
        )
        if self.mode == "allowlist":
            await self.revocation.allow(claims.jti, claims.sub, until=claims.exp)
        return TokenPair(token, refresh_token, int(claims.exp - claims.iat), claims)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token.  Raises InvalidGrant for anything but a live one."""
        if not is_well_formed(refresh_token):
            raise InvalidGrant(reason="malformed")
        family_id = refresh_token.split(".", 1)[0]
        next_token = successor(refresh_token, self.server_key)
        now = self.clock()
        outcome, family = await self.refresh_store.rotate(
            family_id, token_hash(refresh_token), token_hash(next_token), now=now, grace=self.grace
        )
        if outcome is RotateOutcome.REUSED:
            # The signature of a stolen token being replayed: the family is
            # already revoked by the store; end its access tokens too.
            logger.warning("refresh token reuse detected; family revoked (user %s)",
                           family.user_id if family else "?")  # fmt: skip
            if family is not None:
                await self._deny_family(family)
            raise InvalidGrant(reason="reused")
        if outcome not in (RotateOutcome.ROTATED, RotateOutcome.GRACE) or family is None:
            raise InvalidGrant(reason=outcome.name.lower())
        if family.generation < await self.revocation.generation(family.user_id):
            # Password changed, account disabled or "log out everywhere" since.
            await self.refresh_store.revoke(family.family_id)
            raise InvalidGrant(reason="generation")
        return await self._access(family, next_token)

    async def verify(self, access_token: str) -> AccessClaims:
        """Signature, claims and revocation.  Raises InvalidToken."""
        claims = self.codec.verify(access_token)
        if self.mode == "allowlist":
            allowed, generation = await self.revocation.check_allowed(claims.jti, claims.sub)
            denied = not allowed
        else:
            denied, generation = await self.revocation.check(claims.jti, claims.sub)
        if denied:
            raise InvalidToken(reason="revoked")
        if claims.gen < generation:
            raise InvalidToken(reason="generation")
        if claims.fid is not None:
            # Revoking a family denies a marker for it: the same O(1) lookup.
            family_denied, _ = await self.revocation.check(_family_marker(claims.fid), claims.sub)
            if family_denied:
                raise InvalidToken(reason="family")
        return claims

    async def _deny_family(self, family: Family) -> None:
        await self.revocation.deny(
            _family_marker(family.family_id), family.user_id, until=family.absolute_expires_at
        )

    async def revoke_access(self, claims: AccessClaims) -> None:
        if self.mode == "allowlist":
            await self.revocation.disallow(claims.jti, claims.sub)
        await self.revocation.deny(claims.jti, claims.sub, until=claims.exp)

    async def revoke_refresh(self, refresh_token: str) -> None:
        """Revoke the family of a refresh token (RFC 7009: unknown is not an error)."""
        if not is_well_formed(refresh_token):
            return
        family = await self.refresh_store.get(refresh_token.split(".", 1)[0])
        if family is None:
            return
        presented = token_hash(refresh_token)
        if presented not in (family.current_hash, family.previous_hash):
            return
        await self.refresh_store.revoke(family.family_id)
        await self._deny_family(family)

    async def revoke_family(self, family_id: str, *, owner: str) -> None:
        """End a family and its access tokens, if ``owner`` owns it."""
        family = await self.refresh_store.get(family_id)
        if family is not None and family.user_id == owner:
            await self.refresh_store.revoke(family.family_id)
            await self._deny_family(family)

    async def revoke_user(self, user_id: str) -> None:
        """End every token of the user: one generation bump, plus the families."""
        await self.revocation.bump_generation(user_id)
        await self.refresh_store.revoke_user(user_id)


def _family_marker(family_id: str) -> str:
    return f"family:{family_id}"


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str))
    return ()
