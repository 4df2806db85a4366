"""Step-up for apps: RequireRecentAuth(max_age) and RequireMFA on a real
middleware stack, with sessions that record how and when the user signed in."""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from gatepass.asgi import AuthMiddleware, RequireMFA, RequireRecentAuth, auth_of
from gatepass.sessions.manager import SessionManager
from gatepass.stores.memory import MemorySessionStore


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def make_app(clock: Clock) -> Starlette:
    recent = RequireRecentAuth(300, clock=clock)
    mfa = RequireMFA()

    async def login(request: Request) -> Response:
        amr = tuple(request.query_params["amr"].split(","))
        await auth_of(request).login("user-1", (), amr=amr)
        return JSONResponse({})

    async def sensitive(request: Request) -> Response:
        user = await recent(request)
        return JSONResponse({"auth_time": user.auth_time})

    async def admin(request: Request) -> Response:
        user = await mfa(request)
        return JSONResponse({"amr": list(user.amr)})

    return Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/sensitive", sensitive),
            Route("/admin", admin),
        ],
        middleware=[
            Middleware(AuthMiddleware, sessions=SessionManager(MemorySessionStore(), clock=clock))
        ],
    )


def test_recent_auth_is_the_sign_in_time_not_the_last_request() -> None:
    clock = Clock()
    with TestClient(make_app(clock), base_url="https://testserver") as client:
        assert client.get("/sensitive").status_code == 401
        client.post("/login?amr=pwd")
        r = client.get("/sensitive")
        assert r.status_code == 200 and abs(r.json()["auth_time"] - clock.now) < 1
        for _ in range(4):  # activity keeps the session alive...
            clock.now += 100
            assert client.get("/admin").status_code == 403
        r = client.get("/sensitive")  # ...but the sign-in is 400 s old
        assert r.status_code == 403
        assert r.json()["error"] == "insufficient_user_authentication"
        client.post("/login?amr=pwd")  # signing in again steps up
        assert client.get("/sensitive").status_code == 200


def test_require_mfa_needs_a_second_factor_in_amr() -> None:
    clock = Clock()
    with TestClient(make_app(clock), base_url="https://testserver") as client:
        assert client.get("/admin").status_code == 401
        client.post("/login?amr=pwd")
        r = client.get("/admin")
        assert r.status_code == 403 and r.json()["error"] == "insufficient_user_authentication"
        client.post("/login?amr=pwd,otp")
        r = client.get("/admin")
        assert r.status_code == 200 and r.json()["amr"] == ["pwd", "otp"]
