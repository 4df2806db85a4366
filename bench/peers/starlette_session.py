"""Starlette's own ``SessionMiddleware``: a signed cookie (itsdangerous), no store."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


async def plain(request: Request) -> Response:
    return PlainTextResponse("ok")


async def me(request: Request) -> Response:
    user = request.session.get("user")
    if user is None:
        return PlainTextResponse("unauthorized", status_code=401)
    return PlainTextResponse(user)


async def login(request: Request) -> Response:
    request.session["user"] = "bench-user"
    return PlainTextResponse("")


app = Starlette(
    routes=[
        Route("/plain", plain),
        Route("/me", me),
        Route("/_bench/login", login, methods=["POST"]),
    ],
    middleware=[Middleware(SessionMiddleware, secret_key="s" * 32, https_only=True)],
)
