"""Requiring a user, roles or permissions: FastAPI dependencies and a decorator.

They read what :class:`~gatepass.asgi.middleware.AuthMiddleware` resolved;
none of them touches a store, so they cost a dictionary lookup.  They raise
:class:`~gatepass.errors.NotAuthenticated` (401) or
:class:`~gatepass.errors.PermissionDenied` (403); the middleware turns those
into responses.  In FastAPI::

    @app.get("/reports")
    async def reports(user: Identity = Depends(RequireRoles("admin"))): ...

In Starlette::

    @requires_user(roles=("admin",))
    async def reports(request: Request) -> Response: ...
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import HTTPConnection, Request

from gatepass.asgi.middleware import RequestAuth
from gatepass.errors import (
    ConfigurationError,
    InsufficientAuthentication,
    InsufficientScope,
    NotAuthenticated,
    PermissionDenied,
)
from gatepass.identity import Identity


def _identity(conn: HTTPConnection) -> Identity | None:
    user = conn.scope.get("user", _MISSING)
    if user is _MISSING:
        raise ConfigurationError("AuthMiddleware is not installed on this app.")
    return user if isinstance(user, Identity) else None


_MISSING = object()


async def current_user(request: Request) -> Identity | None:
    """The caller, or None when anonymous."""
    return _identity(request)


async def require_user(request: Request) -> Identity:
    """The caller; 401 when anonymous."""
    user = _identity(request)
    if user is None:
        raise NotAuthenticated()
    return user


def auth_of(conn: HTTPConnection) -> RequestAuth:
    """The per-request auth state: ``await auth_of(request).login(...)``."""
    auth = conn.scope.get("auth")
    if not isinstance(auth, RequestAuth):
        raise ConfigurationError("AuthMiddleware is not installed on this app.")
    return auth


class RequireRoles:
    """Dependency: the caller must have every one of ``roles``."""

    def __init__(self, *roles: str) -> None:
        self.roles = roles

    async def __call__(self, request: Request) -> Identity:
        user = await require_user(request)
        check(user, roles=self.roles)
        return user


class RequirePermissions:
    """Dependency: the caller must have every one of ``permissions``."""

    def __init__(self, *permissions: str) -> None:
        self.permissions = permissions

    async def __call__(self, request: Request) -> Identity:
        user = await require_user(request)
        check(user, permissions=self.permissions)
        return user


class RequireScopes:
    """Dependency: the caller's access token must grant every one of ``scopes``
    (403 ``insufficient_scope`` otherwise).  Session callers have no scopes."""

    def __init__(self, *scopes: str) -> None:
        self.scopes = scopes

    async def __call__(self, request: Request) -> Identity:
        user = await require_user(request)
        if not user.has_scopes(*self.scopes):
            raise InsufficientScope(required_permissions=self.scopes)
        return user


class RequireRecentAuth:
    """Dependency: the caller authenticated at most ``max_age`` seconds ago
    (403 ``insufficient_user_authentication`` otherwise: sign in again).

    "Authenticated" is the sign-in itself (``Identity.auth_time``), not the
    last request: a session kept alive for a week is not a recent sign-in,
    and neither is a refreshed access token.
    """

    def __init__(self, max_age: float, *, clock: Callable[[], float] = time.time) -> None:
        if max_age <= 0:
            raise ConfigurationError("RequireRecentAuth needs a positive max_age.")
        self.max_age = max_age
        self.clock = clock

    async def __call__(self, request: Request) -> Identity:
        user = await require_user(request)
        if user.auth_time is None or self.clock() - user.auth_time > self.max_age:
            raise InsufficientAuthentication("Sign in again to do this.")
        return user


class RequireMFA:
    """Dependency: the caller signed in with a second factor (403
    ``insufficient_user_authentication`` otherwise)."""

    async def __call__(self, request: Request) -> Identity:
        user = await require_user(request)
        if not user.has_second_factor:
            raise InsufficientAuthentication("This needs a sign-in with a second factor.")
        return user


def check(user: Identity, *, roles: tuple[str, ...] = (),
          permissions: tuple[str, ...] = ()) -> None:  # fmt: skip
    if not user.has_roles(*roles) or not user.has_permissions(*permissions):
        raise PermissionDenied(required_roles=roles, required_permissions=permissions)


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def requires_user(*, roles: tuple[str, ...] = (),
                  permissions: tuple[str, ...] = ()) -> Callable[[F], F]:  # fmt: skip
    """Decorator for Starlette endpoints taking ``request`` first."""

    def decorate(endpoint: F) -> F:
        @functools.wraps(endpoint)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            user = await require_user(request)
            check(user, roles=roles, permissions=permissions)
            return await endpoint(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
