"""``GET /auth/oauth/{provider}/start`` and ``/callback``: social and OIDC sign-in.

Both are GETs: ``/start`` only sets the transaction cookie and redirects,
and the callback is protected by the state bound to that cookie, not by a
CSRF token.  A failed callback answers 400 (or 409/403/503) with a clear
message — an HTML page for browsers, the JSON error otherwise — clears the
transaction cookie, and never starts a session.
"""

from __future__ import annotations

import logging
from html import escape

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatepass.asgi.dependencies import auth_of, current_user
from gatepass.asgi.errors import error_parts
from gatepass.cookies import read_cookie
from gatepass.errors import GatepassError, NotFound, OAuthFailed, PermissionDenied
from gatepass.oauth.service import OAuthService
from gatepass.oauth.transaction import TRANSACTION_COOKIE, TRANSACTION_TTL
from gatepass.redirects import safe_next
from gatepass.server.components import components
from gatepass.server.token_api import jwt_login

logger = logging.getLogger("gatepass.oauth")

NO_STORE = {"cache-control": "no-store"}


def _service(request: Request) -> OAuthService:
    service = components(request).oauth
    if service is None:
        raise NotFound("No such sign-in provider.")
    return service


async def start(request: Request) -> Response:
    service = _service(request)
    identity = await current_user(request)
    url, _, sealed = await service.begin(
        request.path_params["provider"],
        next_path=safe_next(request.query_params.get("next")),
        link_user=identity.user_id if identity is not None else None,
    )
    response = RedirectResponse(url, status_code=302, headers=NO_STORE)
    response.headers.append(
        "set-cookie", TRANSACTION_COOKIE.header(sealed, max_age=TRANSACTION_TTL)
    )
    return response


async def callback(request: Request) -> Response:
    name = request.path_params["provider"]
    identity = await current_user(request)
    try:
        service = _service(request)
        user, tx = await service.finish(
            name,
            request.query_params.multi_items(),
            read_cookie(request.headers.get("cookie"), TRANSACTION_COOKIE.name),
            current_user=identity.user_id if identity is not None else None,
        )
        parts = components(request)
        signed_in = identity is not None and identity.user_id == user.id
        if not signed_in and await parts.mfa.methods(user.id):
            # A provider's sign-in is one factor; the second step has no page
            # yet (issue 12, next round): fail closed rather than skip it.
            # (Linking a provider while signed in is not a sign-in.)
            raise PermissionDenied("This account needs its second factor to sign in.")
        if parts.settings.browser_mode == "jwt":
            await jwt_login(request, user)
        else:
            await auth_of(request).login(user.id, user.roles)
    except GatepassError as exc:
        reason = exc.reason if isinstance(exc, OAuthFailed) else exc.code
        logger.warning("OAuth callback via %r refused: %s", name, reason)
        return _failure(request, exc)
    response = RedirectResponse(tx.next_path, status_code=302, headers=NO_STORE)
    response.headers.append("set-cookie", TRANSACTION_COOKIE.deletion_header())
    return response


def _failure(request: Request, exc: GatepassError) -> Response:
    status, headers, body = error_parts(exc)
    if "text/html" in request.headers.get("accept", ""):
        from gatepass.server.pages import page

        html = (
            f"<p class=error role=alert>{escape(exc.detail)}</p>"
            '<p><a href="/login">Back to sign-in</a></p>'
        )
        response: Response = page("Sign-in failed", html, status)
    else:
        response = Response(body, status_code=status)
        for key, value in headers:
            response.headers[key.decode()] = value.decode()
    response.headers.append("set-cookie", TRANSACTION_COOKIE.deletion_header())
    return response


class RedactOAuthQuery(logging.Filter):
    """Strips the query from access-log lines of ``/auth/oauth/`` requests.

    The callback's query holds the authorization code and the state, which
    must never reach a log; uvicorn's access log prints the full path.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2]
            if path.startswith("/auth/oauth/") and "?" in path:
                record.args = (*args[:2], path.split("?", 1)[0] + "?…", *args[3:])
        return True


ACCESS_LOG_FILTER = RedactOAuthQuery()


def provider_links(request: Request, next_path: str) -> str:
    """The login page's "Sign in with …" links ('' when no provider is configured)."""
    service = components(request).oauth
    if service is None or not service.providers:
        return ""
    from urllib.parse import quote

    query = escape(quote(next_path, safe=""))
    items = "".join(
        f'<li><a href="/auth/oauth/{escape(p.name)}/start?next={query}">'
        f"Sign in with {escape(p.title)}</a></li>"
        for p in service.providers.values()
    )
    return f"<ul class=providers>{items}</ul>"


routes = [
    Route("/auth/oauth/{provider}/start", start, methods=["GET"]),
    Route("/auth/oauth/{provider}/callback", callback, methods=["GET"]),
]
