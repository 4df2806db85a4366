"""``import gatepass``: the names, the version, and ``install`` giving an app the
server's own stack, layer for layer and in the same order."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

import gatepass
from gatepass.asgi.cors import CORSMiddleware
from gatepass.asgi.csrf import CSRFMiddleware
from gatepass.asgi.headers import SecurityHeadersMiddleware
from gatepass.asgi.limits import RequestLimitsMiddleware
from gatepass.asgi.middleware import AuthMiddleware
from gatepass.asgi.proxies import TrustedProxyMiddleware
from gatepass.server.app import create_app
from gatepass.server.html_errors import HTMLErrorPages

ROOT = Path(__file__).resolve().parents[2]
FULL_STACK = [
    # The scheme settled first (HSTS only over https), then the headers, so
    # the limits' own 413/431 answers carry them too.
    TrustedProxyMiddleware,
    SecurityHeadersMiddleware,
    RequestLimitsMiddleware,
    CORSMiddleware,
    AuthMiddleware,
    CSRFMiddleware,
]


def test_version_is_pyprojects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert gatepass.__version__ == project["version"]


def test_every_public_name_resolves() -> None:
    for name in gatepass.__all__:
        assert getattr(gatepass, name) is not None, name
    assert set(gatepass.__all__) <= set(dir(gatepass))
    with pytest.raises(AttributeError):
        _ = gatepass.no_such_name  # type: ignore[attr-defined]


def _layers(app: Any) -> list[type]:
    """The stack gatepass built in front of the app's router, outermost first."""
    stack = app.state.gatepass._stack
    found = []
    while type(stack) in (*FULL_STACK, HTMLErrorPages):
        found.append(type(stack))
        stack = stack.app
    return found


async def whoami(request: Request) -> Response:
    user = await gatepass.current_user(request)
    return JSONResponse({"user": user.user_id if user else None})


async def csrf(request: Request) -> Response:
    return JSONResponse({"csrf_token": gatepass.csrf_token(request)})


async def login(request: Request) -> Response:
    await gatepass.auth_of(request).login("u1")
    return JSONResponse({"ok": True})


def _app(tmp_path: Path, **kwargs: Any) -> Starlette:
    routes = [Route("/me", whoami), Route("/csrf", csrf), Route("/login", login, methods=["POST"])]
    app = Starlette(routes=routes)
    app.state.gatepass = gatepass.install(
        app, data_dir=tmp_path / "data", store_url="memory://", **kwargs
    )
    return app


def test_install_gives_the_servers_stack_in_the_servers_order(tmp_path: Path) -> None:
    server = create_app(gatepass.Settings(data_dir=tmp_path / "server"))
    with TestClient(_app(tmp_path)) as lib, TestClient(server):
        assert _layers(lib.app) == FULL_STACK
        # The server adds one named layer of its own: HTML error pages for
        # browsers, inside the security headers.
        assert _layers(server) == [*FULL_STACK[:2], HTMLErrorPages, *FULL_STACK[2:]]


def test_a_layer_is_turned_off_by_name_only(tmp_path: Path) -> None:
    app = _app(tmp_path, layers=gatepass.Layers(csrf=False, cors=False))
    with TestClient(app, base_url="https://testserver") as client:
        assert _layers(app) == [
            TrustedProxyMiddleware, SecurityHeadersMiddleware, RequestLimitsMiddleware,
            AuthMiddleware,
        ]  # fmt: skip
        # No CSRF layer: the cookie-less POST goes through.
        assert client.post("/login").status_code == 200


def test_the_installed_stack_protects_the_app(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path), base_url="https://testserver") as client:
        me = client.get("/me")
        assert me.json() == {"user": None}
        assert me.headers["x-frame-options"] == "DENY"  # security headers
        assert "default-src 'none'" in me.headers["content-security-policy"]
        # CSRF: an unsafe request without the token is refused, changing nothing.
        refused = client.post("/login")
        assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
        assert "__Host-gatepass" not in client.cookies
        # Request limits: an oversized header never reaches the app.
        assert client.get("/me", headers={"x-big": "a" * 9000}).status_code == 431
        # With the double-submit token, the login works and sets the session.
        token = client.get("/csrf").json()["csrf_token"]
        done = client.post("/login", headers={"x-csrf-token": token})
        assert done.status_code == 200 and "__Host-gatepass" in client.cookies
        assert done.headers["cache-control"] == "no-store"
        assert client.get("/me").json() == {"user": "u1"}


def test_parts_exist_only_while_running(tmp_path: Path) -> None:
    app = _app(tmp_path)
    auth: gatepass.Gatepass = app.state.gatepass
    with pytest.raises(RuntimeError, match="not started"):
        _ = auth.accounts
    with TestClient(app):
        assert auth.accounts is auth.components.accounts
    with pytest.raises(RuntimeError, match="not started"):
        _ = auth.tokens


def test_settings_or_fields_not_both(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        gatepass.install(Starlette(), gatepass.Settings(), store_url="memory://")


def test_a_failed_start_is_reported_without_the_url(tmp_path: Path) -> None:
    app = _app(tmp_path)
    app.state.gatepass.settings = gatepass.Settings(
        data_dir=tmp_path / "d", database_url="bogus://user:hunter2@db/x"
    )
    with pytest.raises(RuntimeError) as failed, TestClient(app):
        pass
    assert "hunter2" not in str(failed.value)
