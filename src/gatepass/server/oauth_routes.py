"""``GET /auth/oauth/{provider}/start`` and ``/callback``: social and OIDC sign-in.

Both are GETs: ``/start`` only sets the transaction cookie and redirects,
and the callback is protected by the state bound to that cookie, not by a
CSRF token.  A failed callback answers 400 (or 409/403/503) with a clear
message — an HTML page for browsers, the JSON error otherwise — clears the
transaction cookie, and never starts a session.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatepass.asgi.dependencies import current_user
from gatepass.asgi.errors import error_parts
from gatepass.cookies import read_cookie
from gatepass.errors import (
    GatepassError,
    NotFound,
    OAuthFailed,
    ProviderUnavailable,
)
from gatepass.oauth.transaction import TRANSACTION_COOKIE, TRANSACTION_TTL
from gatepass.server.components import components
from gatepass.server.mfa_policy import SETUP_PAGE, enrolment_required
from gatepass.server.rendering import error_page
from gatepass.server.second_step import page_second_step
from gatepass.server.signin import sign_in

if TYPE_CHECKING:  # the OAuth libraries are the optional extra gatepass[oauth]
    from gatepass.oauth.providers import Provider
    from gatepass.oauth.service import OAuthService

logger = logging.getLogger("gatepass.oauth")

NO_STORE = {"cache-control": "no-store"}


def _service(request: Request) -> OAuthService:
    service = components(request).oauth
    if service is None:
        raise NotFound("No such sign-in provider.")
    return service


async def start(request: Request) -> Response:
    identity = await current_user(request)
    try:
        service = _service(request)
        url, _, sealed = await service.begin(
            request.path_params["provider"],
            # Local, or an app on a host the access rules name (forward auth).
            next_path=components(request).safe_next(request.query_params.get("next")),
            link_user=identity.user_id if identity is not None else None,
        )
    except GatepassError as exc:  # e.g. the provider is unreachable: a page, not raw JSON
        logger.warning("OAuth start via %r refused: %s", request.path_params["provider"],
                       exc.code)  # fmt: skip
        return _failure(request, exc)
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
        signed_in = identity is not None and identity.user_id == user.id
        if not signed_in:
            # A provider's sign-in is one factor: an account with a second
            # one goes on to the second-step page, with no login yet.
            # (Linking a provider while signed in is not a sign-in.)
            second = await page_second_step(
                request, user, amr=(), remember=False, next_path=tx.next_path
            )
            if second is not None:
                second.headers.append("set-cookie", TRANSACTION_COOKIE.deletion_header())
                return second
        await sign_in(request, user)
    except GatepassError as exc:
        reason = exc.reason if isinstance(exc, OAuthFailed) else exc.code
        logger.warning("OAuth callback via %r refused: %s", name, reason)
        return _failure(request, exc)
    target = SETUP_PAGE if enrolment_required(request) else tx.next_path
    response = RedirectResponse(target, status_code=302, headers=NO_STORE)
    response.headers.append("set-cookie", TRANSACTION_COOKIE.deletion_header())
    return response


def _failure(request: Request, exc: GatepassError) -> Response:
    status, headers, body = error_parts(exc)
    if "text/html" in request.headers.get("accept", ""):
        detail = exc.detail
        if isinstance(exc, ProviderUnavailable):
            title = _title(request, exc.provider)
            detail = (f"Sign-in with {title} is unavailable right now. Try again in a few "
                      "minutes, or sign in another way.")  # fmt: skip
        response: Response = error_page(request, status, "Sign-in failed", detail)
    else:
        response = Response(body, status_code=status)
        for key, value in headers:
            response.headers[key.decode()] = value.decode()
    response.headers.append("set-cookie", TRANSACTION_COOKIE.deletion_header())
    return response


#: Paths whose query carries a secret: the OAuth callback's code and state,
#: the reset and verification links' tokens.
SECRET_QUERY_PATHS = ("/auth/oauth/", "/password/reset", "/email/verify")


class RedactOAuthQuery(logging.Filter):
    """Strips the query from access-log lines of :data:`SECRET_QUERY_PATHS`.

    The OAuth callback's query holds the authorization code and the state,
    a reset or verification link's holds its token; none may reach a log,
    and uvicorn's access log prints the full path.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2]
            if path.startswith(SECRET_QUERY_PATHS) and "?" in path:
                record.args = (*args[:2], path.split("?", 1)[0] + "?…", *args[3:])
        return True


ACCESS_LOG_FILTER = RedactOAuthQuery()


def _title(request: Request, name: str) -> str:
    service = components(request).oauth
    provider = service.providers.get(name) if service is not None else None
    return provider.title if provider is not None else "this provider"


def offered_providers(request: Request) -> list[Provider]:
    """The providers to offer on the sign-in page: those whose discovery
    worked.  One that is down is not offered (its button would only lead to
    an error page); its discovery is retried in the background, so it comes
    back by itself."""
    service = components(request).oauth
    if service is None:
        return []
    offered = []
    for provider in service.providers.values():
        if provider.status == "ok":
            offered.append(provider)
        else:
            _rediscover(request, provider)
    return offered


def _rediscover(request: Request, provider: Provider) -> None:
    """At most one background rediscovery per provider and per interval."""
    running: dict[str, asyncio.Task[None]] = request.app.state.rediscovering
    if provider.name in running or not provider.rediscovery_due():
        return
    task = asyncio.create_task(provider.discover(), name=f"rediscover:{provider.name}")
    running[provider.name] = task
    task.add_done_callback(lambda _: running.pop(provider.name, None))


@dataclass(frozen=True, slots=True)
class LinkedProvider:
    title: str
    issuer: str
    subject: str
    email: str | None
    since: str


async def linked_providers(
    request: Request, user_id: str
) -> tuple[list[LinkedProvider], list[Provider]]:
    """The user's linked identities, and the working providers not linked yet."""
    service = components(request).oauth
    if service is None:
        return [], []
    linked = []
    names = set()
    for ident in await service.identities.list_user(user_id):
        provider = service.providers.get(ident.provider)
        names.add(ident.provider)
        since = datetime.fromtimestamp(ident.created_at, UTC).strftime("%-d %b %Y")
        linked.append(
            LinkedProvider(
                title=provider.title if provider is not None else ident.provider,
                issuer=ident.issuer,
                subject=ident.subject,
                email=ident.email,
                since=since,
            )
        )
    linkable = [p for p in offered_providers(request) if p.name not in names]
    return linked, linkable


routes = [
    Route("/auth/oauth/{provider}/start", start, methods=["GET"]),
    Route("/auth/oauth/{provider}/callback", callback, methods=["GET"]),
]
