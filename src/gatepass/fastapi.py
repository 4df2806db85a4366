"""FastAPI dependencies that also declare gatepass's security schemes.

The caller is resolved once per request by the middleware
(:func:`gatepass.install`); these dependencies only read the result, like
:mod:`gatepass.asgi.dependencies`, and in addition declare the two ways in
as OpenAPI security schemes, so ``/docs`` shows the lock icons and the
Bearer scheme::

    from gatepass.fastapi import CurrentUser, RequireRoles, require_user

    @app.get("/me")
    async def me(user: CurrentUser): ...

    @app.get("/reports")
    async def reports(user: Identity = Security(require_user, scopes=["reports"])): ...

    @app.get("/admin", dependencies=[Security(RequireRoles("admin"))])
    async def admin(): ...

The scheme objects never decide anything: a cookie or header they see is
only a declaration.  What counts is what the middleware verified.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request, Security
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from gatepass.asgi import dependencies
from gatepass.errors import InsufficientScope, NotAuthenticated
from gatepass.identity import Identity

#: ``Authorization: Bearer <access token>`` (a JWT from the token endpoint).
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    bearerFormat="JWT",
    description="An access token: `Authorization: Bearer <token>`.",
)
#: The session cookie set at sign-in.  Unsafe requests it authenticates also
#: need the CSRF token in ``X-CSRF-Token``.
session_scheme = APIKeyCookie(
    name="__Host-gatepass",
    auto_error=False,
    scheme_name="Session",
    description="The session cookie; unsafe methods also need `X-CSRF-Token`.",
)

_Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]
_Cookie = Annotated[str | None, Security(session_scheme)]


async def current_user(request: Request, _bearer: _Bearer, _cookie: _Cookie) -> Identity | None:
    """The caller, or None when anonymous."""
    return await dependencies.current_user(request)


async def require_user(
    request: Request, security_scopes: SecurityScopes, _bearer: _Bearer, _cookie: _Cookie
) -> Identity:
    """The caller (401 when anonymous); with ``Security(require_user,
    scopes=[...])`` the access token must grant those scopes (403)."""
    user = await dependencies.current_user(request)
    if user is None:
        raise NotAuthenticated()
    if security_scopes.scopes and not user.has_scopes(*security_scopes.scopes):
        raise InsufficientScope(required_permissions=tuple(security_scopes.scopes))
    return user


#: ``user: CurrentUser`` in a path operation: the caller, 401 when anonymous.
CurrentUser = Annotated[Identity, Security(require_user)]
#: ``user: OptionalUser``: the caller or None.
OptionalUser = Annotated[Identity | None, Security(current_user)]


class RequireRoles:
    """The caller must have every one of ``roles`` (403 otherwise)."""

    def __init__(self, *roles: str) -> None:
        self.roles = roles

    async def __call__(self, user: Identity = Depends(require_user)) -> Identity:  # noqa: B008
        dependencies.check(user, roles=self.roles)
        return user


class RequirePermissions:
    """The caller must have every one of ``permissions`` (403 otherwise)."""

    def __init__(self, *permissions: str) -> None:
        self.permissions = permissions

    async def __call__(self, user: Identity = Depends(require_user)) -> Identity:  # noqa: B008
        dependencies.check(user, permissions=self.permissions)
        return user


#: Swagger UI loads its script and stylesheet from a CDN and starts with an
#: inline script, which the default policy forbids.  This policy allows
#: exactly that, on the docs page only; every other page keeps the default.
SWAGGER_UI_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; "
    "object-src 'none'"
)


def swagger_ui(app: FastAPI, path: str = "/docs") -> None:
    """Serve Swagger UI at ``path`` under :data:`SWAGGER_UI_CSP`.

    Create the app with ``FastAPI(docs_url=None)`` and call this: FastAPI's
    own ``/docs`` would be blocked by the default Content-Security-Policy.
    """

    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json",
                                   title=f"{app.title} - Swagger UI")  # fmt: skip
        page.headers["content-security-policy"] = SWAGGER_UI_CSP
        return page

    app.add_api_route(path, docs, include_in_schema=False, methods=["GET"])


__all__ = [
    "SWAGGER_UI_CSP",
    "CurrentUser",
    "OptionalUser",
    "RequirePermissions",
    "RequireRoles",
    "bearer_scheme",
    "current_user",
    "require_user",
    "session_scheme",
    "swagger_ui",
]
