"""``starsessions`` with its Redis store: the session is loaded on the routes that use it."""

from __future__ import annotations

import os

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starsessions import SessionMiddleware, load_session
from starsessions.stores.redis import RedisStore


async def plain(request: Request) -> Response:
    return PlainTextResponse("ok")


async def me(request: Request) -> Response:
    await load_session(request)
    user = request.session.get("user")
    if user is None:
        return PlainTextResponse("unauthorized", status_code=401)
    return PlainTextResponse(user)


async def login(request: Request) -> Response:
    await load_session(request)
    request.session["user"] = "bench-user"
    return PlainTextResponse("")


store = RedisStore(
    connection=Redis.from_url(os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0"))
)
app = Starlette(
    routes=[
        Route("/plain", plain),
        Route("/me", me),
        Route("/_bench/login", login, methods=["POST"]),
    ],
    middleware=[Middleware(SessionMiddleware, store=store, lifetime=1800, rolling=True)],
)
