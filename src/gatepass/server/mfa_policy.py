"""A second factor made mandatory for some roles (``GATEPASS_MFA_REQUIRED_ROLES``).

A login is *one-factor* when its ``amr`` has no second factor
(:attr:`~gatepass.identity.Identity.has_second_factor`).  A one-factor login
of a user who holds one of the roles can do only what enrolment needs
(:data:`OPEN_PATHS`); anything else is refused, whichever way the login
came (session cookie, browser JWT cookie, Bearer token from ``/auth/token``):

* while the account has no factor: pages redirect (303) to the TOTP setup
  page ``/account/mfa/totp``; every other request — the JSON API, Bearer
  calls, forward auth's ``/auth/verify`` — answers 403
  ``mfa_enrollment_required``;
* once it has one (a login made before enrolment, or a token of that
  time): pages send the user to ``/login`` to sign in again, with the second
  step; other requests answer 403 ``insufficient_user_authentication``.

Confirming TOTP from a browser login renews that login with ``otp`` in its
``amr`` (:func:`gatepass.server.signin.renew_with_factor`), so a browser
carries on at once; a Bearer client gets new tokens through
``/auth/token`` and ``/auth/mfa/verify``.

The roles are the login's (``Identity.roles``): those recorded at sign-in,
or with ``GATEPASS_JWT_STATEFUL`` read from the user store on each request.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse

from gatepass.asgi.types import ASGIApp, Receive, Scope, Send
from gatepass.errors import InsufficientAuthentication, MFAEnrollmentRequired
from gatepass.identity import Identity
from gatepass.server.components import components

#: The TOTP setup page that a one-factor login is walked to.
SETUP_PAGE = "/account/mfa/totp"

#: What a one-factor login of such a user may still reach: who am I, signing
#: out, CSRF tokens and the refresh of a browser token, enrolment (API and
#: pages), signing in again (it makes a new login and does not use this
#: one), and what carries no user data at all.
OPEN_PATHS = frozenset({
    "/auth/me", "/auth/logout", "/logout", "/auth/csrf", "/auth/refresh",
    "/auth/mfa", "/auth/mfa/totp/setup", "/auth/mfa/totp/qr.svg", "/auth/mfa/totp/confirm",
    SETUP_PAGE, "/account/mfa/totp/setup", "/account/mfa/totp/confirm",
    "/login", "/login/second-step", "/auth/login", "/auth/token", "/auth/mfa/verify",
    "/healthz", "/readyz", "/favicon.ico", "/openapi.json", "/.well-known/jwks.json",
})  # fmt: skip
OPEN_PREFIXES = ("/static/",)


def one_factor_refused(roles: frozenset[str], identity: object) -> bool:
    """Whether ``identity`` is a login that the policy confines to enrolment."""
    return (
        bool(roles)
        and isinstance(identity, Identity)
        and not identity.has_second_factor
        and not roles.isdisjoint(identity.roles)
    )


def enrolment_required(request: Request) -> bool:
    """For a route that just signed someone in: should they be sent to the setup page?"""
    roles = frozenset(components(request).settings.mfa_required_roles)
    return one_factor_refused(roles, request.scope.get("user"))


class MFAPolicyMiddleware:
    """Inside gatepass's stack (``scope["user"]`` is resolved), before the routes."""

    def __init__(self, app: ASGIApp, *, roles: tuple[str, ...]) -> None:
        self.app = app
        self.roles = frozenset(roles)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not one_factor_refused(self.roles, scope.get("user"))
            or path in OPEN_PATHS
            or path.startswith(OPEN_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        identity = scope["user"]
        assert isinstance(identity, Identity)
        enrolled = bool(await components(request).mfa.methods(identity.user_id))
        page = (
            not path.startswith("/auth/")
            and scope["method"] in ("GET", "POST")
            and "text/html" in request.headers.get("accept", "")
        )
        if page:
            target = f"/login?next={quote(path, safe='')}" if enrolled else SETUP_PAGE
            await RedirectResponse(target, status_code=303)(scope, receive, send)
            return
        if enrolled:
            raise InsufficientAuthentication("Sign in again with your second factor.")
        raise MFAEnrollmentRequired()
