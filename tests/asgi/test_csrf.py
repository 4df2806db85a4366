"""CSRF (SECURITY.md 23–26): attacks made for real against the middleware stack."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from gatepass.csrf import CSRFSigner
from tests.asgi.conftest import ALLOWED, ORIGIN, csrf


def logged_in(client: TestClient) -> str:
    token = csrf(client)
    r = client.post("/login", headers={"x-csrf-token": token})
    assert r.status_code == 200, r.text
    return client.get("/csrf").json()["csrf_token"]


def test_token_is_in_a_readable_cookie_equal_to_the_api_value(client: TestClient) -> None:
    r = client.get("/csrf")
    token = r.json()["csrf_token"]
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"__Host-gatepass-csrf={token}; Path=/; Secure; SameSite=Lax")
    assert "HttpOnly" not in cookie
    # Stable while the session does not change: the cookie is not reissued.
    again = client.get("/csrf")
    assert again.json()["csrf_token"] == token
    assert "set-cookie" not in again.headers


def test_login_itself_needs_the_token(client: TestClient) -> None:
    r = client.post("/login")
    assert r.status_code == 403
    assert r.json()["error"] == "csrf_failed"
    assert "__Host-gatepass=" not in r.headers.get("set-cookie", "")


def test_login_with_a_token_not_matching_the_cookie_fails(client: TestClient) -> None:
    csrf(client)
    # A valid anonymous token minted for the attacker's own browser:
    attacker = TestClient(client.app, base_url=ORIGIN)
    foreign = attacker.get("/csrf").json()["csrf_token"]
    assert client.post("/login", headers={"x-csrf-token": foreign}).status_code == 403


def test_token_rotates_at_login_and_old_one_stops_working(client: TestClient) -> None:
    before = csrf(client)
    r = client.post("/login", headers={"x-csrf-token": before})
    assert r.status_code == 200
    assert "__Host-gatepass-csrf=" in r.headers["set-cookie"]
    after = client.get("/csrf").json()["csrf_token"]
    assert after != before
    assert client.post("/change", headers={"x-csrf-token": before}).status_code == 403
    assert client.post("/change", headers={"x-csrf-token": after}).status_code == 200


def test_cookie_authenticated_change_without_token_is_403_not_401(client: TestClient) -> None:
    logged_in(client)
    r = client.post("/change")
    assert r.status_code == 403
    assert r.json()["error"] == "csrf_failed"


def test_another_sessions_token_fails(client: TestClient) -> None:
    logged_in(client)
    other = TestClient(client.app, base_url=ORIGIN)
    other_token = logged_in(other)
    assert client.post("/change", headers={"x-csrf-token": other_token}).status_code == 403


def test_a_tossed_csrf_cookie_does_not_help(client: TestClient) -> None:
    logged_in(client)
    # The attacker overwrites the CSRF cookie with a token of their own and
    # echoes it: the token is not bound to the victim's session.
    attacker = TestClient(client.app, base_url=ORIGIN)
    theirs = logged_in(attacker)
    client.cookies.set("__Host-gatepass-csrf", theirs, domain="app.example")
    r = client.post("/change", headers={"x-csrf-token": theirs})
    assert r.status_code == 403


def test_token_from_another_secret_fails(client: TestClient) -> None:
    logged_in(client)
    forged = CSRFSigner([b"z" * 32]).token_for("anything")
    assert client.post("/change", headers={"x-csrf-token": forged}).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"origin": "null"},
        {"origin": "https://evil.example"},
        {"origin": "https://app.example.evil.example"},
        {"origin": "http://app.example"},
        {"origin": "https://app.example:8443"},
        {"referer": "https://evil.example/page"},
        {"sec-fetch-site": "same-site", "origin": "https://sub.app.example"},
    ],
)
def test_cross_site_signals_fail_even_with_a_valid_token(
    client: TestClient, headers: dict[str, str]
) -> None:
    token = logged_in(client)
    r = client.post("/change", headers={"x-csrf-token": token, **headers})
    assert r.status_code == 403
    assert r.json()["error"] == "csrf_failed"


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "same-origin", "origin": "null"},  # no-referrer same-origin form post
        {"sec-fetch-site": "same-origin"},
        {"origin": ORIGIN},
        {"origin": ALLOWED, "sec-fetch-site": "same-site"},
        {"referer": ORIGIN + "/account"},
        {},
    ],
)
def test_legitimate_requests_pass(client: TestClient, headers: dict[str, str]) -> None:
    token = logged_in(client)
    r = client.post("/change", headers={"x-csrf-token": token, **headers})
    assert r.status_code == 200


def test_form_field_token_works_and_body_reaches_the_app(client: TestClient) -> None:
    token = logged_in(client)
    r = client.post(
        "/change",
        content=f"a=1&csrf_token={token}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert r.json()["body"] == f"a=1&csrf_token={token}"


def test_form_with_two_tokens_fails(client: TestClient) -> None:
    token = logged_in(client)
    r = client.post(
        "/change",
        content=f"csrf_token={token}&csrf_token=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 403


def test_safe_methods_need_no_token_and_change_nothing(client: TestClient) -> None:
    logged_in(client)
    assert client.get("/change").status_code == 200


def test_logout_needs_the_token_and_sends_clear_site_data(client: TestClient) -> None:
    token = logged_in(client)
    assert client.post("/logout").status_code == 403
    assert client.get("/change").status_code == 200  # still signed in
    r = client.post("/logout", headers={"x-csrf-token": token})
    assert r.status_code == 204
    assert "clear-site-data" in r.headers
    assert client.get("/change").status_code == 401
