"""A small app with the whole gatepass middleware stack, for ASGI-level tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from gatepass.asgi import AuthMiddleware, auth_of, require_user
from gatepass.asgi.cors import CORSMiddleware
from gatepass.asgi.csrf import CSRFMiddleware, csrf_token
from gatepass.asgi.headers import SecurityHeadersMiddleware
from gatepass.asgi.limits import RequestLimitsMiddleware
from gatepass.csrf import CSRFSigner
from gatepass.sessions.manager import SessionManager
from gatepass.stores.memory import MemorySessionStore

ORIGIN = "https://app.example"
ALLOWED = "https://spa.example"


async def login(request: Request) -> Response:
    await auth_of(request).login("user-1", ("user",))
    return JSONResponse({"ok": True})


async def logout(request: Request) -> Response:
    await auth_of(request).logout()
    return Response(status_code=204)


async def change(request: Request) -> Response:
    await require_user(request)
    body = await request.body()
    return JSONResponse({"changed": True, "body": body.decode()})


async def token(request: Request) -> Response:
    return JSONResponse({"csrf_token": csrf_token(request)})


async def page(request: Request) -> Response:
    return PlainTextResponse("page")


async def framed(request: Request) -> Response:
    return PlainTextResponse("framed", headers={"content-security-policy": "frame-ancestors *"})


def build(signer: CSRFSigner | None = None) -> Starlette:
    signer = signer or CSRFSigner([b"k" * 32])
    return Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/change", change, methods=["POST", "DELETE", "GET"]),
            Route("/csrf", token),
            Route("/page", page),
            Route("/framed", framed),
        ],
        middleware=[
            Middleware(RequestLimitsMiddleware, max_body_bytes=1024),
            Middleware(SecurityHeadersMiddleware),
            Middleware(CORSMiddleware, origins=[ALLOWED]),
            Middleware(AuthMiddleware, sessions=SessionManager(MemorySessionStore())),
            Middleware(CSRFMiddleware, signer=signer, trusted_origins=[ORIGIN, ALLOWED]),
        ],
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(build(), base_url=ORIGIN) as c:
        yield c


def csrf(client: TestClient) -> str:
    value: str = client.get("/csrf").json()["csrf_token"]
    return value
