"""The browser security layer as the server wires it (SECURITY.md 21–31)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.server.conftest import PASSWORD, make_client, register


def plain(client: TestClient) -> TestClient:
    """A client that adds no CSRF token by itself, as an attacker's page.

    Not entered as a context manager: the app's lifespan belongs to ``client``.
    """
    return TestClient(client.app, base_url="https://testserver")


def test_login_without_token_is_403_and_sets_no_session(client: TestClient) -> None:
    register(client)
    attacker = plain(client)
    r = attacker.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert r.status_code == 403
    assert r.json()["error"] == "csrf_failed"
    assert not [c for c in r.headers.get_list("set-cookie") if c.startswith("__Host-gatepass=")]


def test_cross_site_form_post_to_logout_is_refused(client: TestClient) -> None:
    register(client)
    client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    session = client.cookies["__Host-gatepass"]
    r = client.post(
        "/logout",
        content=b"",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "sec-fetch-site": "cross-site",
            "origin": "http://localhost:9999",
            "x-csrf-token": "",
        },
    )
    assert r.status_code == 403
    assert client.get("/auth/me").status_code == 200
    assert client.cookies["__Host-gatepass"] == session


def test_get_never_logs_out(client: TestClient) -> None:
    register(client)
    client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert client.get("/auth/logout").status_code == 405
    assert client.get("/logout").status_code == 405
    assert client.get("/auth/me").status_code == 200


def test_json_endpoints_refuse_simple_content_types(client: TestClient) -> None:
    for content_type in ("text/plain", "multipart/form-data; boundary=x"):
        r = client.post(
            "/auth/register",
            content=b'{"email":"eve@example.com","password":"long enough pass"}',
            headers={"content-type": content_type},
        )
        assert r.status_code == 400
    eve = {"email": "eve@example.com", "password": "long enough pass"}
    assert client.post("/auth/login", json=eve).status_code == 401


def test_forms_embed_the_token_that_matches_the_cookie(client: TestClient) -> None:
    page = client.get("/login")
    token = client.cookies["__Host-gatepass-csrf"]
    assert f'name="csrf_token" value="{token}"' in page.text


def test_pages_carry_security_headers_and_no_banner(client: TestClient) -> None:
    r = client.get("/login")
    assert "object-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert "server" not in r.headers


def test_a_one_megabyte_password_is_refused_before_hashing(client: TestClient) -> None:
    r = client.post("/auth/login", json={"email": "ada@example.com", "password": "x" * 1_000_000})
    assert r.status_code == 413


def test_twenty_bad_passwords_are_throttled_and_forwarded_for_does_not_help(
    client: TestClient,
) -> None:
    register(client)
    statuses = []
    for i in range(20):
        r = client.post(
            "/auth/login",
            json={"email": "ada@example.com", "password": f"wrong password {i}"},
            headers={"x-forwarded-for": f"198.51.100.{i}"},  # untrusted peer: ignored
        )
        statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5
    assert 429 in statuses
    limited = client.post(
        "/auth/login",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"x-forwarded-for": "203.0.113.77"},
    )
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("peer", "recorded"),
    [
        ("127.0.0.1", "198.51.100.7"),  # our proxy: its X-Forwarded-For is believed
        ("192.0.2.9", "192.0.2.9"),  # anyone else: the header is ignored
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    tmp_path: Path, peer: str, recorded: str
) -> None:
    with make_client(tmp_path, peer=(peer, 40000), trusted_proxies=("127.0.0.1",)) as client:
        register(client)
        r = client.post(
            "/auth/login",
            json={"email": "ada@example.com", "password": PASSWORD},
            headers={"x-forwarded-for": "203.0.113.1, 198.51.100.7"},
        )
        assert r.status_code == 200
        assert client.get("/auth/sessions").json()[0]["ip"] == recorded


@pytest.mark.parametrize("path", ["/auth/csrf", "/login"])
def test_csrf_cookie_is_readable_host_cookie(client: TestClient, path: str) -> None:
    r = client.get(path)
    cookies = r.headers.get_list("set-cookie")
    cookie = next(c for c in cookies if c.startswith("__Host-gatepass-csrf="))
    assert "HttpOnly" not in cookie
    assert "Secure" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie


def test_csrf_cookie_only_where_a_browser_needs_it(client: TestClient) -> None:
    # A page without a form, and an API call, get no CSRF cookie.
    assert not client.get("/").headers.get_list("set-cookie")
    assert not client.get("/healthz").headers.get_list("set-cookie")
