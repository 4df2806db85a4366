"""Litestar's server-side sessions with its Redis store."""

from __future__ import annotations

import os

from litestar import Litestar, MediaType, Request, get, post
from litestar.exceptions import NotAuthorizedException
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.stores.redis import RedisStore


@get("/plain", media_type=MediaType.TEXT)
async def plain() -> str:
    return "ok"


@get("/me", media_type=MediaType.TEXT)
async def me(request: Request) -> str:
    user = request.session.get("user") if request.session else None
    if user is None:
        raise NotAuthorizedException()
    return str(user)


@post("/_bench/login", media_type=MediaType.TEXT)
async def login(request: Request) -> str:
    request.set_session({"user": "bench-user"})
    return ""


store = RedisStore.with_client(url=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0"))
sessions = ServerSideSessionConfig(secure=True, httponly=True, max_age=1800)
app = Litestar(
    route_handlers=[plain, me, login],
    middleware=[sessions.middleware],
    stores={"sessions": store},
    debug=False,
)
