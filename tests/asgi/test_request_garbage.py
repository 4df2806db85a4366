"""A request leaves nothing for the garbage collector (a deterministic budget).

Objects caught in a reference cycle outlive their request until a collector
pass finds them; under load those passes cost more than the middleware's
own work (issue 14's profile: the scope held the request's auth state, which
held the scope).  Each case runs requests with the collector off, then
counts what a collection finds: it must be nothing.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gatepass.asgi import AuthMiddleware, auth_of, current_user
from gatepass.sessions.manager import SessionManager
from gatepass.stores.memory import MemorySessionStore

Scope = dict[str, Any]


async def me(request: Request) -> Response:
    user = await current_user(request)
    return PlainTextResponse(user.user_id if user else "-")


async def login(request: Request) -> Response:
    issued = await auth_of(request).login("ada", ("user",))
    return PlainTextResponse(issued.token)


async def logout(request: Request) -> Response:
    await auth_of(request).logout()
    return PlainTextResponse("bye")


def make_app(sessions: SessionManager | None = None) -> Starlette:
    sessions = sessions or SessionManager(MemorySessionStore())
    return Starlette(
        routes=[
            Route("/me", me),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
        ],
        middleware=[Middleware(AuthMiddleware, sessions=sessions)],
    )


class Cycle:
    """One request as uvicorn holds it: the object whose method is ``send``
    keeps the scope, so anything the scope holds that keeps ``send`` is a
    reference cycle (the shape the first version of this test missed)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.status = 0
        self.body = b""

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        else:
            self.body += message.get("body", b"")


async def call(app: Any, method: str, path: str, cookie: str | None = None) -> tuple[int, bytes]:
    headers = [(b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    scope: Scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
                    "root_path": "", "scheme": "http", "query_string": b"", "headers": headers,
                    "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
                    "http_version": "1.1", "asgi": {"version": "3.0"}}  # fmt: skip
    cycle = Cycle(scope)
    await app(scope, cycle.receive, cycle.send)
    return cycle.status, cycle.body


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("case", ["anonymous", "session", "stale cookie", "login", "logout"])
def test_requests_leave_no_reference_cycles(case: str, collector_off: None) -> None:
    async def run() -> int:
        app = make_app()
        status, token = await call(app, "POST", "/login")
        assert status == 200
        cookie = f"__Host-gatepass={token.decode()}"
        gone = "__Host-gatepass=" + "A" * 43

        async def once() -> None:
            if case == "anonymous":
                assert await call(app, "GET", "/me") == (200, b"-")
            elif case == "session":
                assert await call(app, "GET", "/me", cookie) == (200, b"ada")
            elif case == "stale cookie":
                assert await call(app, "GET", "/me", gone) == (200, b"-")
            elif case == "login":
                assert (await call(app, "POST", "/login", cookie))[0] == 200
            else:
                fresh = "__Host-gatepass=" + (await call(app, "POST", "/login"))[1].decode()
                assert await call(app, "POST", "/logout", fresh) == (200, b"bye")

        for _ in range(5):  # warm every cache first
            await once()
        gc.collect()
        for _ in range(50):
            await once()
        return gc.collect()

    assert asyncio.run(run()) == 0
