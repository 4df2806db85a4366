"""The gatepass app under load: plain routes and authenticated ones, side by side.

Configured by environment (``bench/run.py`` starts it under uvicorn or granian):

``BENCH_STORE``
    A store URL (``memory://``, ``sqlite:///…``, ``redis://…``, ``postgresql://…``,
    ``mongodb://…``)
    for sessions, refresh families and the revocation list.
``BENCH_CSRF=1``
    The browser stack: ``CSRFMiddleware`` inside ``AuthMiddleware`` (as
    ``gatepass serve`` stacks them) and the access token also read from the
    ``__Host-gatepass-at`` cookie (browser JWT mode).  Without it the stack is
    ``AuthMiddleware`` alone, like the peers' session middleware.

Routes: ``GET|POST /plain`` (the unauthenticated baseline), ``GET|POST /me``
(needs a session cookie, a Bearer token or the JWT cookie).  Helpers for the
runner, exempt from CSRF: ``POST /_bench/login`` mints a session without a
password, ``POST /_bench/token`` an access token, ``GET /_bench/csrf`` the CSRF
token of the caller, ``POST /_bench/deny?n=N`` puts N random jtis on the
denylist.  This app exists only for benchmarks on loopback.
"""

from __future__ import annotations

import os
import secrets
import time
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gatepass.asgi import AuthMiddleware, auth_of, require_user
from gatepass.asgi.bearer import ACCESS_COOKIE, BearerResolver
from gatepass.asgi.csrf import CSRFMiddleware, csrf_token
from gatepass.asgi.middleware import Receive, Scope, Send
from gatepass.csrf import CSRFSigner
from gatepass.identity import RolePermissions
from gatepass.sessions.manager import SessionManager
from gatepass.stores.urls import open_session_store
from gatepass.tokens.access import AccessTokenCodec
from gatepass.tokens.backends.urls import open_refresh_store, open_revocation_store
from gatepass.tokens.keys import DEFAULT_ALGORITHM, KeyRing
from gatepass.tokens.service import TokenService

BENCH_PATHS = ("/plain", "/_bench/login", "/_bench/token", "/_bench/csrf", "/_bench/deny")


async def plain(request: Request) -> Response:
    return PlainTextResponse("ok")


async def me(request: Request) -> Response:
    user = await require_user(request)
    return PlainTextResponse(user.user_id)


async def bench_login(request: Request) -> Response:
    issued = await auth_of(request).login("bench-user", ("user",))
    return PlainTextResponse(issued.token)


async def bench_token(request: Request) -> Response:
    pair = await request.app.state.tokens.issue("bench-user", roles=("user",))
    return PlainTextResponse(pair.access_token)


async def bench_csrf(request: Request) -> Response:
    return PlainTextResponse(csrf_token(request))


async def bench_deny(request: Request) -> Response:
    """N random jtis on the denylist, spread over 1000 users (small N: a loop)."""
    n = int(request.query_params.get("n", "1000"))
    tokens: TokenService = request.app.state.tokens
    until = time.time() + 3600
    for i in range(n):
        await tokens.revocation.deny(secrets.token_urlsafe(16), f"user-{i % 1000}", until=until)
    return PlainTextResponse(str(n))


class BenchApp:
    """Opens the store on the server's loop, then serves."""

    def __init__(self) -> None:
        self.inner: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        await self.inner(scope, receive, send)

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        @asynccontextmanager
        async def span(app: Starlette) -> Any:
            yield
            await store.close()

        url = os.environ["BENCH_STORE"]
        browser = os.environ.get("BENCH_CSRF") == "1"
        store = await open_session_store(url)
        ring = KeyRing.generate(os.environ.get("BENCH_ALG", DEFAULT_ALGORITHM), now=time.time())  # type: ignore[arg-type]
        tokens = TokenService(
            codec=AccessTokenCodec(ring, issuer="http://bench", audience="http://bench"),
            refresh_store=await open_refresh_store(url),
            revocation=await open_revocation_store(url),
            server_key=b"b" * 32,
        )
        permissions = RolePermissions()
        middleware = [
            Middleware(
                AuthMiddleware,
                sessions=SessionManager(store),
                permissions=permissions,
                bearer=BearerResolver(
                    tokens.verify,
                    permissions,
                    cookie=ACCESS_COOKIE if browser else None,
                    verify_cached=tokens.verify_cached,
                ),
            )
        ]
        if browser:
            middleware.append(
                Middleware(
                    CSRFMiddleware,
                    signer=CSRFSigner([b"c" * 32]),
                    trusted_origins=["http://127.0.0.1"],
                    exempt_paths=BENCH_PATHS,
                )
            )
        app = Starlette(
            routes=[
                Route("/plain", plain, methods=["GET", "POST"]),
                Route("/me", me, methods=["GET", "POST"]),
                Route("/_bench/login", bench_login, methods=["POST"]),
                Route("/_bench/token", bench_token, methods=["POST"]),
                Route("/_bench/csrf", bench_csrf, methods=["GET"]),
                Route("/_bench/deny", bench_deny, methods=["POST"]),
            ],
            middleware=middleware,
            lifespan=span,
        )
        app.state.tokens = tokens
        self.inner = app
        await app(scope, receive, send)


app = BenchApp()
