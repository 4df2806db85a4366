"""A gatepass server app in-process, on each real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gatepass.server.app import create_app
from gatepass.server.settings import Settings

PASSWORD = "correct horse battery staple"


class BrowserClient(TestClient):
    """A client that behaves like the server's own pages and SPA clients: on
    every state-changing request it sends the CSRF token for its current
    session (fetched from ``/auth/csrf`` with the same cookies), unless the
    test sets ``X-CSRF-Token`` itself.  CSRF attacks are tested elsewhere
    with plain clients; here the token is not the point."""

    def request(self, method: str, url: Any, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        headers = dict(kwargs.pop("headers", None) or {})
        names = {k.lower() for k in headers}
        if method.upper() not in ("GET", "HEAD", "OPTIONS") and "x-csrf-token" not in names:
            cookie = {k: v for k, v in headers.items() if k.lower() == "cookie"}
            answer = super().request("GET", "/auth/csrf", headers=cookie)
            if answer.status_code != 200:  # e.g. a store outage: let the request meet it
                return super().request(method, url, headers=headers, **kwargs)
            token = answer.json()["csrf_token"]
            headers["x-csrf-token"] = token
            if cookie and token != self.cookies.get("__Host-gatepass-csrf"):
                # An explicit Cookie header replaces the jar: carry the
                # double-submit cookie along for anonymous requests.
                key = next(iter(cookie))
                headers[key] = f"{cookie[key]}; __Host-gatepass-csrf={token}"
        return super().request(method, url, headers=headers, **kwargs)


def session_cookie(response: httpx.Response) -> str:
    """The one Set-Cookie of the session cookie (the CSRF cookie may be beside it)."""
    [value] = [
        c for c in response.headers.get_list("set-cookie") if c.startswith("__Host-gatepass=")
    ]
    return value


def make_client(
    tmp_path: Path, *, peer: tuple[str, int] = ("testclient", 50000), **overrides: object
) -> TestClient:
    settings = Settings(data_dir=tmp_path / "data", **overrides)  # type: ignore[arg-type]
    # https: the session cookie is Secure, and the client jar honours that.
    return BrowserClient(create_app(settings), base_url="https://testserver", client=peer)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path) as c:
        yield c


def register(client: TestClient, email: str = "ada@example.com", password: str = PASSWORD) -> str:
    r = client.post("/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    user_id: str = r.json()["id"]
    return user_id


def login_elsewhere(
    client: TestClient, email: str = "ada@example.com", password: str = PASSWORD
) -> str:
    """Log in as another browser would: without this client's cookies, and
    without storing the new one.  (A second TestClient would run on another
    event loop, which pooled database connections do not survive.)"""
    saved = client.cookies
    client.cookies = httpx.Cookies()
    try:
        return login(client, email, password)
    finally:
        client.cookies = saved


def status_as(client: TestClient, method: str, path: str, token: str) -> int:
    """The status of a request made with only ``token`` as the session cookie
    (the client's own jar is set aside, so no second cookie sneaks in)."""
    saved = client.cookies
    client.cookies = httpx.Cookies()
    try:
        headers = {"cookie": f"__Host-gatepass={token}"}
        return client.request(method, path, headers=headers).status_code
    finally:
        client.cookies = saved


def login(client: TestClient, email: str = "ada@example.com", password: str = PASSWORD) -> str:
    r = client.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    token: str = client.cookies["__Host-gatepass"]
    return token


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres", "mongodb"])
def store_client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[TestClient]:
    """A client of a server whose sessions live in each real store.

    Users (and their second factors and one-time link tokens) live in
    PostgreSQL or MongoDB for those cases and in SQLite otherwise.
    """
    kind = request.param
    overrides: dict[str, object] = {}
    if kind == "memory":
        overrides["session_store_url"] = "memory://"
    elif kind == "redis":
        overrides["session_store_url"] = request.getfixturevalue("isolated_redis_url")
    elif kind == "postgres":
        dsn = request.getfixturevalue("postgres_url")
        overrides["database_url"] = dsn
        overrides["session_store_url"] = dsn
    elif kind == "mongodb":  # the nx-27017 emulator (see docs/storage.md)
        # Everything on MongoDB: sessions, tokens and throttling, users,
        # second factors and one-time link tokens.
        url = request.getfixturevalue("mongodb_url")
        overrides["database_url"] = overrides["session_store_url"] = url
    with make_client(tmp_path, **overrides) as c:
        yield c
