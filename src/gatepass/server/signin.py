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
from gatepass.server.components import components
from gatepass.server.token_api import jwt_login, jwt_logout
from gatepass.users.model import User


async def sign_in(
    request: Request, user: User, *, amr: tuple[str, ...] = (), remember: bool = False
) -> None:
    """Start a browser login for ``user`` (the credentials were checked)."""
    if components(request).settings.browser_mode == "jwt":
        await jwt_login(request, user, amr=amr)
    else:
        await auth_of(request).login(user.id, user.roles, remember=remember, amr=amr)


async def sign_out(request: Request, identity: Identity | None) -> None:
    """End whatever authenticated this request, in either browser mode: the
    session, or the access token and its refresh family (and their cookies)."""
    if identity is not None and identity.scheme != "session":
        await jwt_logout(request)
    else:
        await auth_of(request).logout()
