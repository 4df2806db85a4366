"""Access tokens on requests: ``Authorization: Bearer`` and the browser JWT cookie.

RFC 6750 behaviour: a malformed or invalid bearer token is a 401
``invalid_token`` (never "anonymous": the client meant to authenticate and
must learn that it failed); another scheme in ``Authorization`` is not ours
and is ignored.  In browser JWT mode the access token sits in an HttpOnly
``__Host-`` cookie; an invalid one there makes the caller anonymous, like a
stale session cookie, and the page refreshes or signs in again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gatepass.asgi.types import CookieReader, Scope, credentials
from gatepass.cookies import CookieSpec
from gatepass.dbsc import DATA_KEY, BoundCookies
from gatepass.drivers.changes import UNKNOWN, Unknown
from gatepass.errors import InvalidToken
from gatepass.identity import Identity, RolePermissions, Scheme
from gatepass.tokens.access import AccessClaims

Verifier = Callable[[str], Awaitable[AccessClaims]]
#: The same check with no I/O when a local cache answers, else ``UNKNOWN``
#: (:meth:`gatepass.tokens.service.TokenService.verify_cached`).
CachedVerifier = Callable[[str], AccessClaims | Unknown]
#: Loads the current roles of a user, or None when the user is gone or
#: disabled: the "stateful JWT" option.
RolesLoader = Callable[[str], Awaitable[tuple[str, ...] | None]]

ACCESS_COOKIE = CookieSpec(name="__Host-gatepass-at")


class BearerResolver:
    def __init__(
        self,
        verify: Verifier,
        permissions: RolePermissions,
        *,
        cookie: CookieSpec | None = None,
        roles_loader: RolesLoader | None = None,
        bound: BoundCookies | None = None,
        verify_cached: CachedVerifier | None = None,
    ) -> None:
        """``cookie`` enables browser JWT mode (the access token in that cookie);
        ``bound`` enforces device-bound logins (see :mod:`gatepass.dbsc`);
        ``verify_cached``, the same check as ``verify`` answered from local
        caches without a coroutine when it can be, saves the per-request await."""
        self.bound = bound
        self.verify = verify
        self.verify_cached = verify_cached
        self.permissions = permissions
        self.cookie = cookie
        self._read_cookie = CookieReader(cookie.name, str) if cookie is not None else None
        self.roles_loader = roles_loader

    async def resolve(self, scope: Scope) -> Identity | None:
        return await self.resolve_headers(*credentials(scope))

    async def resolve_headers(
        self, authorization: str | None, cookie: str | None
    ) -> Identity | None:
        """:meth:`resolve` from the request's ``Authorization`` and ``Cookie``
        values, for a caller that has read them already."""
        if authorization is not None:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() != "bearer":
                return None
            # Only the framing is checked here: the codec validates the token
            # itself strictly (alphabet, segments, size) before anything else.
            if not credentials or " " in credentials:
                raise InvalidToken(reason="malformed")
            return await self._identity(credentials, "bearer", cookie)
        if self._read_cookie is not None:
            value = self._read_cookie(cookie)
            if value is not None:
                try:
                    return await self._identity(value, "jwt-cookie", cookie)
                except InvalidToken:
                    return None
        return None

    async def _identity(self, token: str, scheme: Scheme, cookie: str | None) -> Identity:
        cached = self.verify_cached
        claims = cached(token) if cached is not None else UNKNOWN
        if isinstance(claims, Unknown):
            claims = await self.verify(token)
        if (
            DATA_KEY in claims.raw
            and self.bound is not None
            and not self.bound.check(cookie, claims.raw[DATA_KEY])
        ):
            # A device-bound browser login's token without its bound cookie
            # (as a cookie, or copied into an Authorization header).
            raise InvalidToken(reason="unbound")
        roles: tuple[str, ...] | None = None
        if self.roles_loader is not None:
            roles = await self.roles_loader(claims.sub)
            if roles is None:
                raise InvalidToken(reason="user")
        return self.permissions.identity_for_claims(claims, scheme, roles)
