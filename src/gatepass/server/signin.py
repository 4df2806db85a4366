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

from contextlib import suppress

from starlette.requests import Request

from gatepass.asgi.dependencies import auth_of
from gatepass.errors import NotFound
from gatepass.identity import Identity
from gatepass.logins import current_login_id
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
    await _offer_binding(request, user)


async def _offer_binding(request: Request, user: User) -> None:
    """With device-bound sessions on, offer the browser to bind the login
    this request just started (either mode) to a key it keeps."""
    if components(request).dbsc is not None:
        identity = request.scope.get("user")
        if isinstance(identity, Identity):
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


async def renew_with_factor(request: Request, identity: Identity, user: User,
                            amr: tuple[str, ...]) -> bool:  # fmt: skip
    """After the user proved a second factor while signed in (confirming TOTP):
    replace this browser login by a fresh one whose ``amr`` adds ``amr``,
    under a new id (a privilege change), keeping "remember me".  The old
    login ends (and with it any device binding: the new login is offered
    one afresh).  A Bearer client cannot be handed new tokens here: False,
    and its token stays as it was (it signs in again with its factor).
    """
    upgraded = tuple(dict.fromkeys((*identity.amr, *amr)))
    if identity.scheme == "session":
        record = auth_of(request).record
        remember = record.remember if record is not None else False
        # login() destroys the current session first.
        await auth_of(request).login(user.id, user.roles, remember=remember, amr=upgraded)
        await _offer_binding(request, user)
        return True
    if identity.scheme == "jwt-cookie":
        old = current_login_id(identity)
        await jwt_login(request, user, amr=upgraded)
        if old is not None:
            with suppress(NotFound):  # ended meanwhile (signed out elsewhere)
                await components(request).accounts.logins.end(user.id, old)
        await _offer_binding(request, user)
        return True
    return False
