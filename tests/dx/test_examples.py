"""The examples under ``examples/``, each run by uvicorn on a loopback port and
driven over HTTP: registration and login behind CSRF, a CSRF-protected POST,
security headers, Bearer tokens, logout ending the session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
SESSION = "__Host-gatepass"
CSRF = "__Host-gatepass-csrf"

pytestmark = pytest.mark.slow


class Example:
    """A running example and a client that says exactly which cookies it sends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def call(
        self,
        method: str,
        path: str,
        *,
        session: str | None = None,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
        json: object = None,
    ) -> httpx.Response:
        """``csrf``: on an unsafe method, first fetch a token for this session
        and send it as a same-origin browser page would."""
        sent = {"origin": self.url, **(headers or {})}
        cookies = [f"{SESSION}={session}"] if session else []
        if csrf and method != "GET":
            fetched = self.call("GET", "/csrf", session=session)
            token = fetched.json()["csrf_token"]
            sent["x-csrf-token"] = token
            cookies.append(f"{CSRF}={token}")
        if cookies:
            sent["cookie"] = "; ".join(cookies)
        self.http.cookies.clear()
        return self.http.request(method, path, headers=sent, json=json)


def _session_of(response: httpx.Response) -> str | None:
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(f"{SESSION}="):
            token = value.split(";")[0].partition("=")[2]
            return token or None
    return None


@pytest.fixture(params=["fastapi_app", "starlette_app", "litestar_app"])
def example(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Example]:
    with serve(request.param, tmp_path) as running:
        yield running


@pytest.fixture
def litestar_example(tmp_path: Path) -> Iterator[Example]:
    with serve("litestar_app", tmp_path) as running:
        yield running


@contextmanager
def serve(module: str, tmp_path: Path) -> Iterator[Example]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GATEPASS_DATA_DIR": str(tmp_path / "data"),
        "GATEPASS_PUBLIC_URL": url,
    }
    log = (tmp_path / "server.log").open("w")
    argv = [sys.executable, "-m", "uvicorn", f"{module}:app", "--app-dir",
            str(ROOT / "examples"), "--host", "127.0.0.1", "--port", str(port),
            "--no-server-header"]  # fmt: skip
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/csrf", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((tmp_path / "server.log").read_text())
                time.sleep(0.2)
        yield Example(url)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_sessions_csrf_headers_tokens_logout(example: Example) -> None:
    creds = {"email": "ada@example.com", "password": PASSWORD}

    # Registration is a state change: without the CSRF token it is refused.
    refused = example.call("POST", "/register", json=creds, csrf=False)
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    assert example.call("POST", "/register", json=creds).status_code == 201

    login = example.call("POST", "/login", json=creds)
    assert login.status_code == 200, login.text
    session = _session_of(login)
    assert session is not None
    assert login.headers["cache-control"] == "no-store"

    me = example.call("GET", "/me", session=session)
    assert me.status_code == 200 and me.json()["via"] == "session"
    # The safe stack's headers are on every answer.
    assert me.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in me.headers["content-security-policy"]
    assert me.headers["x-content-type-options"] == "nosniff"
    assert "server" not in me.headers

    # A CSRF-protected POST: refused without the token, and from another site.
    no_token = example.call("POST", "/notes", session=session, csrf=False)
    assert no_token.status_code == 403 and no_token.json()["error"] == "csrf_failed"
    cross = example.call("POST", "/notes", session=session,
                         headers={"sec-fetch-site": "cross-site"})  # fmt: skip
    assert cross.status_code == 403
    assert example.call("POST", "/notes", session=session).status_code == 201

    # Bearer tokens: no cookie, no CSRF token needed.
    pair = example.call("POST", "/token", json=creds, csrf=False)
    assert pair.status_code == 200, pair.text
    bearer = {"authorization": f"Bearer {pair.json()['access_token']}"}
    me = example.call("GET", "/me", headers=bearer)
    assert me.json() == {"id": login.json()["id"], "via": "bearer"}
    assert example.call("POST", "/notes", headers=bearer, csrf=False).status_code == 201
    # Scopes: the token grants "reports"; a session has no scopes.
    assert example.call("GET", "/reports", headers=bearer).json() == {"for": me.json()["id"]}
    no_scope = example.call("GET", "/reports", session=session)
    assert no_scope.status_code == 403 and no_scope.json()["error"] == "insufficient_scope"
    forged = example.call("GET", "/me", headers={"authorization": "Bearer x.y.z"})
    assert forged.status_code == 401
    assert forged.headers["www-authenticate"].startswith("Bearer")
    wrong = example.call("POST", "/token", json={**creds, "password": "wrong password!"},
                         csrf=False)  # fmt: skip
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"

    # Logout ends the session server-side: the old cookie no longer works.
    assert example.call("POST", "/logout", session=session).status_code == 204
    after = example.call("GET", "/me", session=session)
    assert after.status_code == 401


def test_fastapi_docs_page_gets_its_own_csp_and_nothing_else_does(tmp_path: Path) -> None:
    with serve("fastapi_app", tmp_path) as example:
        docs = example.call("GET", "/docs")
        assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
        assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
        assert docs.headers["x-frame-options"] == "DENY"
        other = example.call("GET", "/csrf").headers["content-security-policy"]
        assert "cdn.jsdelivr.net" not in other and "unsafe-inline" not in other


def test_fastapi_docs_declare_the_bearer_and_session_schemes(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        os.environ["GATEPASS_DATA_DIR"] = str(tmp_path / "data")
        import fastapi_app  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "examples"))
        del os.environ["GATEPASS_DATA_DIR"]
    doc = fastapi_app.app.openapi()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["Bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An access token: `Authorization: Bearer <token>`.",
    }  # fmt: skip
    assert schemes["Session"]["type"] == "apiKey" and schemes["Session"]["in"] == "cookie"
    # The lock icons: protected operations list the schemes, public ones do not.
    me = doc["paths"]["/me"]["get"]
    assert {name for requirement in me["security"] for name in requirement} == {
        "Bearer", "Session"
    }  # fmt: skip
    reports = doc["paths"]["/reports"]["get"]
    assert {"Bearer": ["reports"]} in reports["security"]
    assert "security" not in doc["paths"]["/csrf"]["get"]


def test_litestar_sessions_are_listed_and_revoked(litestar_example: Example) -> None:
    example = litestar_example
    creds = {"email": "bob@example.com", "password": PASSWORD}
    assert example.call("POST", "/register", json=creds).status_code == 201
    first = _session_of(example.call("POST", "/login", json=creds))
    # A planted (attacker-chosen) session id is never adopted: login mints a new one.
    second = _session_of(example.call("POST", "/login", json=creds, session=first))
    assert first and second and first != second
    assert example.call("GET", "/me", session=first).status_code == 401  # replaced at login
    third = _session_of(example.call("POST", "/login", json=creds))
    pair = example.call("POST", "/token", json=creds, csrf=False).json()
    bearer = {"authorization": f"Bearer {pair['access_token']}"}
    assert example.call("GET", "/me", headers=bearer).status_code == 200
    # Every login, whatever its kind: two cookie sessions and a token pair.
    listed = example.call("GET", "/sessions", session=second).json()
    assert sorted(s["kind"] for s in listed) == ["api", "session", "session"]
    assert [s["current"] for s in listed].count(True) == 1
    for other in (s["id"] for s in listed if not s["current"]):
        ended = example.call("DELETE", f"/sessions/{other}", session=second)
        assert ended.status_code == 204
    assert example.call("GET", "/me", session=third).status_code == 401
    assert example.call("GET", "/me", headers=bearer).status_code == 401
    assert example.call("GET", "/me", session=second).status_code == 200
