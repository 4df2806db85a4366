"""gatepass for Litestar: a plugin, guards and dependencies.

::

    from litestar import Litestar
    from gatepass.litestar import GatepassPlugin, RequireRoles, require_user

    gp = GatepassPlugin(gatepass.Settings(database_url="sqlite:///app.db"))
    app = Litestar([...], plugins=[gp], guards=[])

What the plugin does, in Litestar's idioms:

* **lifespan**: the stores open at start-up and close at shut-down;
* **middleware**: the same ordered stack as ``gatepass serve`` and
  :func:`gatepass.install` (limits, headers, CORS, proxies, auth, CSRF) in
  front of every route handler.  Litestar runs middleware per route, so a
  path with no route (404) is answered by Litestar alone;
* **exception handler**: every :class:`~gatepass.errors.GatepassError` gets
  its one HTTP answer (:mod:`gatepass.asgi.errors`): 401 with
  ``WWW-Authenticate``, 403, 429, 503…;
* **dependencies**: ``user: CurrentUser`` (the
  :class:`~gatepass.identity.Identity`, 401 when anonymous),
  ``current_user: OptionalUser`` (or None), ``auth`` (the
  :class:`~gatepass.asgi.middleware.RequestAuth`:
  ``await auth.login(user_id)`` issues a fresh session id, destroying the
  presented one, so fixation cannot survive a login), ``gatepass`` (the
  :class:`~gatepass.integration.Gatepass`, for ``accounts``, ``sessions``
  (list and revoke a user's logins) and ``tokens``);
* **guards**: :func:`require_user`, :class:`RequireRoles`,
  :class:`RequirePermissions`, :class:`RequireScopes`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from litestar import Litestar, Request, Response
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Dependency
from litestar.plugins import InitPluginProtocol

from gatepass.asgi.errors import error_parts
from gatepass.asgi.middleware import RequestAuth
from gatepass.asgi.stack import Layers, build_stack
from gatepass.asgi.types import ASGIApp, Receive, Scope, Send
from gatepass.errors import GatepassError, InsufficientScope, NotAuthenticated
from gatepass.identity import Identity, RolePermissions
from gatepass.integration import Gatepass
from gatepass.server.components import Components
from gatepass.server.settings import Settings


class _Layered:
    """One route handler behind the stack, built once the stores are open."""

    def __init__(self, app: ASGIApp, gatepass: Gatepass) -> None:
        self.app = app
        self.gatepass = gatepass
        self._built: tuple[Components, ASGIApp] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = self.gatepass.components
        if self._built is None or self._built[0] is not parts:
            self._built = (parts, build_stack(self.app, parts, self.gatepass.layers))
        await self._built[1](scope, receive, send)


def _error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, GatepassError)
    status, headers, body = error_parts(exc)
    return Response(
        content=body,
        status_code=status,
        headers={k.decode("latin-1"): v.decode("latin-1") for k, v in headers
                 if k != b"content-length"},
        media_type="application/json",
    )  # fmt: skip


class GatepassPlugin(InitPluginProtocol):
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        layers: Layers | None = None,
        permissions: RolePermissions | None = None,
    ) -> None:
        self.gatepass = Gatepass(settings, layers=layers, permissions=permissions)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        gatepass = self.gatepass

        @asynccontextmanager
        async def lifespan(app: Litestar) -> AsyncIterator[None]:
            await gatepass.open()
            try:
                yield
            finally:
                await gatepass.stop()

        def layered(app: Any) -> Any:  # Litestar's ASGIApp: a narrower scope type than ours
            return _Layered(app, gatepass)

        app_config.lifespan.insert(0, lifespan)  # first opened, last closed
        app_config.middleware.insert(0, layered)  # outermost
        app_config.exception_handlers[GatepassError] = _error_response
        app_config.dependencies.setdefault("user", Provide(_user, sync_to_thread=False))
        app_config.dependencies.setdefault(
            "current_user", Provide(_current_user, sync_to_thread=False)
        )
        app_config.dependencies.setdefault("auth", Provide(_auth, sync_to_thread=False))
        app_config.dependencies.setdefault(
            "gatepass", Provide(lambda: gatepass, sync_to_thread=False)
        )
        app_config.signature_namespace.update(
            {"Identity": Identity, "RequestAuth": RequestAuth, "Gatepass": Gatepass}
        )
        return app_config


def _identity(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Identity) else None


def _current_user(request: Request[Any, Any, Any]) -> Identity | None:
    return _identity(request)


def _user(request: Request[Any, Any, Any]) -> Identity:
    user = _identity(request)
    if user is None:
        raise NotAuthenticated()
    return user


#: ``user: CurrentUser`` in a handler: the caller (401 when anonymous).  The
#: middleware verified it; Litestar is told not to re-validate the object.
CurrentUser = Annotated[Identity, Dependency(skip_validation=True)]
#: ``current_user: OptionalUser``: the caller or None.
OptionalUser = Annotated[Identity | None, Dependency(skip_validation=True)]


def _auth(request: Request[Any, Any, Any]) -> RequestAuth:
    auth = request.scope.get("auth")
    if not isinstance(auth, RequestAuth):
        raise NotAuthenticated()
    return auth


def require_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 401 when anonymous."""
    if _identity(connection) is None:
        raise NotAuthenticated()


class RequireRoles:
    """Guard: the caller must have every one of ``roles`` (401 anonymous, 403 otherwise)."""

    def __init__(self, *roles: str) -> None:
        self.roles = roles

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        from gatepass.asgi.dependencies import check

        user = _identity(connection)
        if user is None:
            raise NotAuthenticated()
        check(user, roles=self.roles)


class RequirePermissions:
    """Guard: the caller must have every one of ``permissions``."""

    def __init__(self, *permissions: str) -> None:
        self.permissions = permissions

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        from gatepass.asgi.dependencies import check

        user = _identity(connection)
        if user is None:
            raise NotAuthenticated()
        check(user, permissions=self.permissions)


class RequireScopes:
    """Guard: the caller's access token must grant every one of ``scopes``."""

    def __init__(self, *scopes: str) -> None:
        self.scopes = scopes

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        user = _identity(connection)
        if user is None:
            raise NotAuthenticated()
        if not user.has_scopes(*self.scopes):
            raise InsufficientScope(required_permissions=self.scopes)


__all__ = [
    "CurrentUser",
    "GatepassPlugin",
    "OptionalUser",
    "RequirePermissions",
    "RequireRoles",
    "RequireScopes",
    "require_user",
]
