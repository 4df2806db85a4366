"""The app under load: one plain route and one session-authenticated route.

Configured by environment (the bench runner starts it under uvicorn):
``BENCH_STORE`` is a session store URL.  ``POST /_bench/login`` mints a
session without a password; this app exists only for benchmarks on loopback.
"""

from __future__ import annotations

import os
import time
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gatepass.asgi import AuthMiddleware, auth_of, require_user
from gatepass.asgi.bearer import BearerResolver
from gatepass.asgi.middleware import Receive, Scope, Send
from gatepass.identity import RolePermissions
from gatepass.sessions.manager import SessionManager
from gatepass.stores.urls import open_session_store
from gatepass.tokens.access import AccessTokenCodec
from gatepass.tokens.backends.urls import open_refresh_store, open_revocation_store
from gatepass.tokens.keys import DEFAULT_ALGORITHM, KeyRing
from gatepass.tokens.service import TokenService


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
        store = await open_session_store(url)
        ring = KeyRing.generate(os.environ.get("BENCH_ALG", DEFAULT_ALGORITHM), now=time.time())  # type: ignore[arg-type]
        tokens = TokenService(
            codec=AccessTokenCodec(ring, issuer="http://bench", audience="http://bench"),
            refresh_store=await open_refresh_store(url),
            revocation=await open_revocation_store(url),
            server_key=b"b" * 32,
        )
        app = Starlette(
            routes=[
                Route("/plain", plain),
                Route("/me", me),
                Route("/_bench/login", bench_login, methods=["POST"]),
                Route("/_bench/token", bench_token, methods=["POST"]),
            ],
            lifespan=span,
        )
        app.state.tokens = tokens
        permissions = RolePermissions()
        app.add_middleware(
            AuthMiddleware,
            sessions=SessionManager(store),
            permissions=permissions,
            bearer=BearerResolver(tokens.verify, permissions),
        )
        self.inner = app
        await app(scope, receive, send)


app = BenchApp()
