"""Signing a browser in and out, in either browser mode, in one place.

Every way a person signs in through a browser (the JSON login, the sign-in
and registration pages, the second step, a provider's callback, a password
change that renews the login) ends in :func:`sign_in`; every sign-out in
:func:`sign_out`.  ``GATEPASS_BROWSER_MODE`` decides what the login is: a
server-side session (``session``) or a token family in HttpOnly cookies
(``jwt``).  Anything a browser login must also get (a device-binding offer,
say) is added here once, for both modes.
"""

from __future__ import annotations

from starlette.requests import Request

from gatepass.asgi.dependencies import auth_of
from gatepass.identity import Identity
from gatepass.server import dbsc_routes
from gatepass.server.components import components
from gatepass.server.token_api import jwt_login, jwt_logout
from gatepass.users.model import User


async def sign_in(
    request: Request, user: User, *, amr: tuple[str, ...] = (), remember: bool = False
) -> None:
    """Start a browser login for ``user`` (the credentials were checked)."""
    parts = components(request)
    if parts.settings.browser_mode == "jwt":
        await jwt_login(request, user, amr=amr)
    else:
        await auth_of(request).login(user.id, user.roles, remember=remember, amr=amr)
    if parts.dbsc is not None:
        identity = request.scope.get("user")
        if isinstance(identity, Identity):
            # Both modes: the browser is offered to bind this login to a key.
            await dbsc_routes.offer(request, identity, user.roles)


async def sign_out(request: Request, identity: Identity | None) -> None:
    """End whatever authenticated this request, in either browser mode: the
    session, or the access token and its refresh family (and their cookies)."""
    if identity is not None and identity.scheme != "session":
        await jwt_logout(request)
    else:
        await auth_of(request).logout()
    parts = components(request)
    if parts.dbsc is not None:
        auth_of(request).set_cookies.append(parts.dbsc.cookies.spec.deletion_header())
