"""Who is making the request: the object apps see as ``request.user``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from gatepass.sessions.record import SessionRecord

if TYPE_CHECKING:
    from gatepass.tokens.access import AccessClaims

#: How the caller authenticated: a session cookie, an ``Authorization:
#: Bearer`` header, or (browser JWT mode) an access token in an HttpOnly
#: cookie.  Only "bearer" carries no ambient credential, so only it is exempt
#: from CSRF checks.
Scheme = Literal["session", "bearer", "jwt-cookie"]


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller.

    Compatible with Starlette's ``BaseUser`` duck type (``is_authenticated``,
    ``display_name``, ``identity``), so ``request.user`` works in Starlette and
    FastAPI apps without further glue.
    """

    user_id: str
    roles: frozenset[str]
    permissions: frozenset[str]
    scheme: Scheme
    session: SessionRecord | None = None
    #: The verified access-token claims (token schemes only).
    claims: AccessClaims | None = None
    scopes: frozenset[str] = frozenset()
    #: How the user signed in (RFC 8176 values: "pwd", "otp", "mfa"...).
    amr: tuple[str, ...] = ()
    #: When the user last authenticated (epoch seconds), None if unknown.
    auth_time: float | None = None

    @property
    def has_second_factor(self) -> bool:
        """Whether this login was made with a second factor."""
        return "otp" in self.amr or "mfa" in self.amr or "hwk" in self.amr

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.user_id

    @property
    def identity(self) -> str:
        return self.user_id

    def has_roles(self, *roles: str) -> bool:
        return all(role in self.roles for role in roles)

    def has_permissions(self, *permissions: str) -> bool:
        return all(p in self.permissions for p in permissions)

    def has_scopes(self, *scopes: str) -> bool:
        return all(s in self.scopes for s in scopes)


@dataclass(frozen=True, slots=True)
class Anonymous:
    """The caller when no valid credentials came with the request."""

    @property
    def is_authenticated(self) -> bool:
        return False

    @property
    def display_name(self) -> str:
        return ""

    @property
    def identity(self) -> str:
        return ""


ANONYMOUS = Anonymous()


class RolePermissions:
    """Maps roles to permissions; the union over a caller's roles is cached.

    Built once from configuration: ``RolePermissions({"admin": {"users:read"}})``.
    """

    def __init__(self, mapping: Mapping[str, set[str] | frozenset[str]] | None = None) -> None:
        self._mapping = {role: frozenset(perms) for role, perms in (mapping or {}).items()}
        self._cache: dict[tuple[str, ...], frozenset[str]] = {}
        # Stores with a local cache hand back the same record object on every
        # request until it changes, so the identity built from it can be
        # reused; a changed record is a different object and misses.
        self._identities: dict[str, Identity] = {}
        self._token_identities: dict[str, Identity] = {}

    def for_roles(self, roles: tuple[str, ...]) -> frozenset[str]:
        cached = self._cache.get(roles)
        if cached is None:
            perms: set[str] = set()
            for role in roles:
                perms |= self._mapping.get(role, frozenset())
            cached = frozenset(perms)
            if len(self._cache) < 4096:
                self._cache[roles] = cached
        return cached

    def identity_for(self, record: SessionRecord) -> Identity:
        cached = self._identities.get(record.key)
        if cached is not None and cached.session is record:
            return cached
        identity = Identity(
            user_id=record.user_id,
            roles=frozenset(record.roles),
            permissions=self.for_roles(record.roles),
            scheme="session",
            session=record,
            amr=_strings(record.data.get("amr")),
            auth_time=_number(record.data.get("auth_time"), default=record.created_at),
        )
        if len(self._identities) >= 10_000:
            self._identities.clear()
        self._identities[record.key] = identity
        return identity

    def identity_for_claims(
        self, claims: AccessClaims, scheme: Scheme, roles: tuple[str, ...] | None = None
    ) -> Identity:
        """The caller behind verified access-token claims; ``roles`` overrides
        the token's (the "stateful JWT" option loads them per request)."""
        if roles is None:
            # Verified claims are cached and shared, so the identity built
            # from them can be too (the same object means the same token).
            cached = self._token_identities.get(claims.jti)
            if cached is not None and cached.claims is claims and cached.scheme == scheme:
                return cached
        effective = claims.roles if roles is None else roles
        identity = Identity(
            user_id=claims.sub,
            roles=frozenset(effective),
            permissions=self.for_roles(tuple(effective)),
            scheme=scheme,
            claims=claims,
            scopes=frozenset(claims.scopes),
            amr=claims.amr,
            auth_time=claims.auth_time,
        )
        if roles is None:
            if len(self._token_identities) >= 10_000:
                self._token_identities.clear()
            self._token_identities[claims.jti] = identity
        return identity


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _number(value: object, *, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default
