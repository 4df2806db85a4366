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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from gatepass.drivers.changes import Unknown
from gatepass.errors import InvalidGrant, InvalidToken
from gatepass.tokens.access import AccessClaims, AccessTokenCodec
from gatepass.tokens.refresh import (
    Family,
    RefreshStore,
    RotateOutcome,
    family_id_of,
    is_authentic,
    is_well_formed,
    new_token,
    successor,
    token_hash,
)
from gatepass.tokens.revocation import RevocationStore, family_marker
from gatepass.tokens.scopes import ScopePolicy

logger = logging.getLogger("gatepass.tokens")

RevocationMode = Literal["denylist", "allowlist"]
#: What a token family was issued for: a browser login in JWT mode, or an
#: API client's token pair.  Listed as the login's ``kind``.
FamilyKind = Literal["browser", "api"]
#: The user's current roles, or None when the user is gone or disabled.
RolesLoader = Callable[[str], Awaitable[tuple[str, ...] | None]]
#: Whether the user's email is verified now.
VerifiedLoader = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    claims: AccessClaims

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }
        # RFC 6749 §5.1: say which scopes the token carries (they may be
        # fewer than requested).
        body["scope"] = " ".join(self.claims.scopes)
        return body


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
    #: Which scopes each role may hold; requests are intersected with it.
    scopes: ScopePolicy = field(default_factory=ScopePolicy)
    #: Loads the user's current roles at every refresh, so a revoked role or
    #: a disabled account reaches the next access token (None: trust the
    #: roles recorded in the family when it was issued).
    roles_loader: RolesLoader | None = None
    #: Asked at a refresh of a family issued to an unverified user, so the
    #: ``email_verified`` claim turns true without a new login once the user
    #: verifies (only ever false -> true: nothing here un-verifies a login).
    verified_loader: VerifiedLoader | None = None
    clock: Callable[[], float] = field(default=time.time)

    async def issue(
        self,
        user_id: str,
        *,
        roles: tuple[str, ...] = (),
        scopes: tuple[str, ...] = (),
        kind: FamilyKind = "api",
        ip: str | None = None,
        user_agent: str | None = None,
        amr: tuple[str, ...] = (),
        auth_time: float | None = None,
        email_verified: bool | None = None,
        binding: dict[str, object] | None = None,
    ) -> TokenPair:
        """A new family (one login): an access token and the first refresh token.

        ``amr`` and ``auth_time`` (default: now) say how and when the user
        signed in; every access token of the family carries them, refreshed
        ones included (a refresh is not a new authentication).

        ``scopes`` are what the client asked for: the policy grants their
        intersection with what ``roles`` allow, and refuses unknown ones.
        """
        if not isinstance(user_id, str) or not user_id:
            raise TypeError("user_id must be a non-empty str")
        granted = self.scopes.grant(roles, scopes)
        now = self.clock()
        generation = await self.revocation.generation(user_id)
        refresh_token = new_token(self.server_key)
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
            data={
                "roles": list(roles),
                "scopes": list(granted),
                "kind": kind,
                "ip": ip,
                "ua": user_agent[:512] if user_agent else None,
                "amr": list(amr),
                "auth_time": now if auth_time is None else auth_time,
                "email_verified": email_verified,
                **({"dbsc": binding} if binding is not None else {}),
            },
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
            amr=_strings(family.data.get("amr")),
            auth_time=_number(family.data.get("auth_time")),
            email_verified=_flag(family.data.get("email_verified")),
            dbsc=_binding_claim(family.data.get("dbsc")),
        )
        if self.mode == "allowlist":
            await self.revocation.allow(claims.jti, claims.sub, until=claims.exp)
        return TokenPair(token, refresh_token, int(claims.exp - claims.iat), claims)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token.  Raises InvalidGrant for anything but a live one."""
        if not is_well_formed(refresh_token):
            raise InvalidGrant(reason="malformed")
        if not is_authentic(refresh_token, self.server_key):
            # Never issued here: a guess, or a secret made up for a family id
            # read from an access token.  Refused before the store, so it can
            # neither rotate nor revoke anything (SECURITY 39).
            raise InvalidGrant(reason="forged")
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
        if self.roles_loader is not None:
            roles = await self.roles_loader(family.user_id)
            if roles is None:
                await self.revoke_family(family.family_id, owner=family.user_id)
                raise InvalidGrant(reason="user")
            # Current roles, and only the scopes they still allow; the stored
            # family keeps what was granted at login (a role given back later
            # restores its scopes).
            family = replace(
                family,
                data={
                    **family.data,
                    "roles": list(roles),
                    "scopes": list(self.scopes.narrow(roles, _strings(family.data.get("scopes")))),
                },
            )
        if (
            family.data.get("email_verified") is False
            and self.verified_loader is not None
            and await self.verified_loader(family.user_id)
        ):
            family = replace(family, data={**family.data, "email_verified": True})
        return await self._access(family, next_token)

    async def verify(self, access_token: str) -> AccessClaims:
        """Signature, claims and revocation.  Raises InvalidToken.

        One store round trip (none when the store's local cache answers):
        the token's ``jti``, its family's marker (an ended login) and the
        user's generation are read together.
        """
        claims = self.codec.verify(access_token)
        if self.mode == "allowlist":
            allowed, generation = await self.revocation.check_allowed(
                claims.jti, claims.sub, family_id=claims.fid
            )
            denied = not allowed
        else:
            denied, generation = await self.revocation.check(
                claims.jti, claims.sub, family_id=claims.fid
            )
        return _judged(claims, denied, generation)

    def verify_cached(self, access_token: str) -> AccessClaims | Unknown:
        """:meth:`verify` with no I/O when the revocation store's local cache
        answers (the per-request path); ``UNKNOWN`` otherwise, and the caller
        awaits :meth:`verify`.  Raises InvalidToken as :meth:`verify` does."""
        claims = self.codec.verify(access_token)
        if self.mode == "allowlist":
            answer = self.revocation.cached_check_allowed(
                claims.jti, claims.sub, family_id=claims.fid
            )
            if isinstance(answer, Unknown):
                return answer
            return _judged(claims, not answer[0], answer[1])
        answer = self.revocation.cached_check(claims.jti, claims.sub, family_id=claims.fid)
        if isinstance(answer, Unknown):
            return answer
        return _judged(claims, answer[0], answer[1])

    async def _deny_family(self, family: Family) -> None:
        await self.revocation.deny(
            family_marker(family.family_id), family.user_id, until=family.absolute_expires_at
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

    async def revoke_family(self, family_id: str, *, owner: str) -> bool:
        """End a family and its access tokens, if ``owner`` owns it and it is live.

        Returns whether a live family was ended.
        """
        family = await self.refresh_store.get(family_id)
        if family is None or family.user_id != owner:
            return False
        await self.refresh_store.revoke(family.family_id)
        await self._deny_family(family)
        return self.is_live(family, generation=None)

    async def revoke_user(self, user_id: str) -> int:
        """End every token of the user: one generation bump, plus the families.

        Returns how many families were live.
        """
        await self.revocation.bump_generation(user_id)
        return await self.refresh_store.revoke_user(user_id)

    async def set_binding(self, family_id: str, binding: dict[str, object]) -> bool:
        """Record a device binding on a family (DBSC); False when it is gone."""
        family = await self.refresh_store.get(family_id)
        if family is None:
            return False
        return await self.refresh_store.set_data(family_id, {**family.data, "dbsc": binding})

    async def bound_access(self, family_id: str) -> tuple[str, int]:
        """A fresh access token of a family, carrying its current binding
        (issued when the binding changes; the refresh token stays as is)."""
        family = await self.refresh_store.get(family_id)
        if family is None or not await self.is_live_now(family):
            raise InvalidGrant(reason="unknown")
        pair = await self._access(family, "")
        return pair.access_token, pair.expires_in

    async def is_live_now(self, family: Family) -> bool:
        """Whether ``family`` can still refresh, the user's generation included."""
        return self.is_live(family, generation=await self.revocation.generation(family.user_id))

    def is_live(self, family: Family, *, generation: int | None) -> bool:
        """Whether ``family`` can still refresh (``generation``: the user's, if known)."""
        if family.revoked or self.clock() >= family.absolute_expires_at:
            return False
        return generation is None or family.generation >= generation

    async def live_families(self, user_id: str) -> list[Family]:
        """The user's families that can still refresh, oldest first."""
        generation = await self.revocation.generation(user_id)
        families = await self.refresh_store.list_user(user_id)
        return [f for f in families if self.is_live(f, generation=generation)]


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _binding_claim(value: object) -> dict[str, object] | None:
    """What access tokens carry of a family's device binding: only what the
    auth path checks (the DBSC session id, or the deadline to bind by), never
    the key."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("sid"), str):
        return {"sid": value["sid"]}
    if isinstance(value.get("by"), int | float):
        return {"by": value["by"]}
    return None


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _judged(claims: AccessClaims, denied: bool, generation: int) -> AccessClaims:
    """The verified claims, unless revoked (denied, or an older generation)."""
    if denied:
        raise InvalidToken(reason="revoked")
    if claims.gen < generation:
        raise InvalidToken(reason="generation")
    return claims
