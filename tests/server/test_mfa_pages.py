"""The /account second-factor forms and the mandatory-factor policy, at the
server's injected clocks (the Chromium tests in tests/browser/test_mfa_pages.py
walk the same pages in a real browser; these pin the rules that need time
to pass or many cases)."""

from __future__ import annotations

import time
from pathlib import Path

import pyotp
import pytest
from starlette.testclient import TestClient

from gatepass.errors import ConfigurationError
from gatepass.server.mfa_policy import OPEN_PATHS
from gatepass.server.settings import Settings
from tests.server.conftest import PASSWORD, login_elsewhere, make_client, register
from tests.server.test_mfa_api import Clock, code, enrol, login_response, parts_of, with_clock

HTML = {"accept": "text/html"}


def csrf_of(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def account_form(client: TestClient, action: str, **fields: str) -> tuple[int, str]:
    page = client.get("/account", headers=HTML)
    assert page.status_code == 200, page.text
    r = client.post(action, data={"csrf_token": csrf_of(page.text), **fields}, headers=HTML,
                    follow_redirects=False)  # fmt: skip
    return r.status_code, r.text


def signed_in_with_totp(client: TestClient, clock: Clock) -> str:
    secret, _ = enrol(client, clock)
    token = login_response(client).json()["mfa_token"]
    r = client.post("/auth/mfa/verify", json={"mfa_token": token, "code": code(secret, clock)})
    assert r.status_code == 200, r.text
    clock.now += 30
    return secret


def test_disable_and_new_codes_need_a_recent_sign_in_or_a_credential(tmp_path: Path) -> None:
    clock = Clock()
    with make_client(tmp_path) as c:
        client = with_clock(c, clock)
        secret = signed_in_with_totp(client, clock)
        parts = parts_of(client)
        parts.sessions.clock = lambda: time.time() + 400  # the sign-in is 400 s old
        # Blank fields: the sign-in is too old.
        status, text = account_form(client, "/account/mfa/recovery-codes", password="", code="")
        assert status == 403 and "Enter your password or a code" in text
        status, _ = account_form(client, "/account/mfa/totp/disable")
        assert status == 403
        # A wrong password or code: refused, nothing changed.
        status, _ = account_form(client, "/account/mfa/totp/disable", password="wrong password!")
        assert status == 401
        status, _ = account_form(client, "/account/mfa/totp/disable", code="000000"
                                 if code(secret, clock) != "000000" else "111111")  # fmt: skip
        assert status == 401
        assert client.get("/auth/mfa").json()["totp"] is True
        # The password: new codes, shown once, never cached.
        page = client.get("/account", headers=HTML)
        r = client.post("/account/mfa/recovery-codes", headers=HTML, data={
            "csrf_token": csrf_of(page.text), "password": PASSWORD})  # fmt: skip
        assert r.status_code == 200 and r.text.count("<li><code>") == 10
        assert r.headers["cache-control"] == "no-store"
        # A code: off.
        status, text = account_form(client, "/account/mfa/totp/disable", code=code(secret, clock))
        assert status == 200 and "Two-step verification is off." in text
        assert client.get("/auth/mfa").json()["totp"] is False
        # Within 5 minutes of signing in, no credential is needed.
        parts.sessions.clock = time.time
        status, _ = account_form(client, "/account/mfa/recovery-codes")
        assert status == 409  # nothing to regenerate: TOTP is off


def test_setup_page_reads_and_confirm_checks_the_code(client: TestClient) -> None:
    clock = Clock()
    with_clock(client, clock)
    register(client)
    assert login_response(client).status_code == 200
    # No setup yet: a GET shows the start button and changes nothing.
    page = client.get("/account/mfa/totp", headers=HTML)
    assert page.status_code == 200 and 'action="/account/mfa/totp/setup"' in page.text
    assert client.get("/auth/mfa/totp/qr.svg").status_code == 404
    started = client.post("/account/mfa/totp/setup", headers=HTML, follow_redirects=False,
                          data={"csrf_token": csrf_of(page.text)})  # fmt: skip
    assert started.status_code == 303 and started.headers["location"] == "/account/mfa/totp"
    page = client.get("/account/mfa/totp", headers=HTML)
    assert "<svg" in page.text and "<script" not in page.text.split("<svg", 1)[1]
    secret = page.text.split('aria-label="Setup key">', 1)[1].split("<", 1)[0].replace(" ", "")
    wrong = "000000" if pyotp.TOTP(secret).at(clock.now) != "000000" else "111111"
    r = client.post("/account/mfa/totp/confirm", headers=HTML,
                    data={"csrf_token": csrf_of(page.text), "code": wrong})  # fmt: skip
    assert r.status_code == 401 and "not right" in r.text
    assert client.get("/auth/mfa").json()["totp"] is False
    r = client.post("/account/mfa/totp/confirm", headers=HTML, data={
        "csrf_token": csrf_of(page.text), "code": pyotp.TOTP(secret).at(clock.now)})  # fmt: skip
    assert r.status_code == 200 and r.text.count("<li><code>") == 10
    assert client.get("/auth/mfa").json()["totp"] is True
    # TOTP on: the setup page sends back to /account.
    again = client.get("/account/mfa/totp", headers=HTML, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/account"


def test_the_policy_setting_is_validated() -> None:
    assert Settings.load(environ={"GATEPASS_MFA_REQUIRED_ROLES": " admin, ops "}
                         ).mfa_required_roles == ("admin", "ops")  # fmt: skip
    assert Settings.load(environ={}).mfa_required_roles == ()
    for bad in ("admin,admin", "ad min", "x" * 65, "admin,ré"):
        with pytest.raises(ConfigurationError, match="GATEPASS_MFA_REQUIRED_ROLES"):
            Settings.load(environ={"GATEPASS_MFA_REQUIRED_ROLES": bad})


def admin_client(tmp_path: Path, clock: Clock, roles: str = "admin,ops") -> TestClient:
    client = make_client(tmp_path, mfa_required_roles=tuple(roles.split(",")))
    client.__enter__()
    with_clock(client, clock)
    user_id = register(client)
    parts = parts_of(client)
    assert client.portal is not None
    client.portal.call(parts.accounts.users.set_roles, user_id, ("ops",))
    return client


def test_a_one_factor_login_of_a_required_role_reaches_only_enrolment(tmp_path: Path) -> None:
    clock = Clock()
    client = admin_client(tmp_path, clock)
    try:
        assert login_response(client).status_code == 200
        # Open: exactly the documented list (spot checks of each kind).
        assert client.get("/auth/me").status_code == 200
        assert client.get("/auth/mfa").status_code == 200
        assert client.get("/auth/csrf").status_code == 200
        # Closed: the JSON API and forward auth answer 403 with the code...
        closed = [("GET", "/auth/sessions"), ("GET", "/auth/verify"),
                  ("POST", "/auth/password/change"), ("GET", "/admin/users")]  # fmt: skip
        for method, path in closed:
            r = client.request(method, path)
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error"] == "mfa_enrollment_required"
        # ...pages redirect to the setup page.
        r = client.get("/account", headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/account/mfa/totp"
        assert client.get("/account/mfa/totp", headers=HTML).status_code == 200
        # Enrolling (JSON API here) renews this login with the factor: open again.
        secret = client.post("/auth/mfa/totp/setup").json()["secret"]
        r = client.post("/auth/mfa/totp/confirm", json={"code": code(secret, clock)})
        assert r.status_code == 200, r.text
        assert client.get("/auth/sessions").status_code == 200
        assert client.get("/account", headers=HTML).status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_an_old_one_factor_login_of_an_enrolled_user_must_sign_in_again(tmp_path: Path) -> None:
    clock = Clock()
    client = admin_client(tmp_path, clock)
    try:
        other = login_elsewhere(client)  # another browser, before enrolment
        assert login_response(client).status_code == 200
        secret = client.post("/auth/mfa/totp/setup").json()["secret"]
        assert client.post("/auth/mfa/totp/confirm",
                           json={"code": code(secret, clock)}).status_code == 200  # fmt: skip
        client.cookies.clear()
        client.cookies.set("__Host-gatepass", other)
        assert client.get("/auth/me").status_code == 200
        r = client.get("/auth/sessions")
        assert (r.status_code, r.json()["error"]) == (403, "insufficient_user_authentication")
        r = client.get("/account", headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Faccount"
    finally:
        client.__exit__(None, None, None)


def test_roles_outside_the_list_and_two_factor_logins_are_untouched(tmp_path: Path) -> None:
    clock = Clock()
    client = admin_client(tmp_path, clock, roles="admin")  # the user is "ops"
    try:
        assert login_response(client).status_code == 200
        assert client.get("/auth/sessions").status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_the_open_list_is_what_the_docs_say() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "mfa.md").read_text()
    for path in OPEN_PATHS:
        assert f"`{path}`" in docs, path


def page_first_step(client: TestClient) -> str:
    """The sign-in form's first step; the second-step page's CSRF token."""
    login = client.get("/login", headers=HTML)
    form = {"csrf_token": csrf_of(login.text), "email": "ada@example.com", "password": PASSWORD}
    r = client.post("/login", headers=HTML, follow_redirects=False, data=form)
    assert r.status_code == 303 and r.headers["location"].startswith("/login/second-step")
    return csrf_of(client.get(r.headers["location"], headers=HTML).text)


def test_the_second_step_page_is_throttled_like_passwords(client: TestClient) -> None:
    clock = Clock()
    with_clock(client, clock)
    secret, _ = enrol(client, clock)
    bad = "000000" if code(secret, clock) != "000000" else "111111"
    seen = []
    for _ in range(4):
        token = page_first_step(client)
        for _ in range(5):
            r = client.post("/login/second-step", headers=HTML, follow_redirects=False,
                            data={"csrf_token": token, "code": bad})  # fmt: skip
            seen.append(r.status_code)
            if r.status_code == 429:
                assert "Too many attempts" in r.text and int(r.headers["retry-after"]) >= 1
    assert 429 in seen and set(seen) <= {401, 429}
    # Backing off: even the right code waits, and no login is made.
    token = page_first_step(client)
    r = client.post("/login/second-step", headers=HTML, follow_redirects=False,
                    data={"csrf_token": token, "code": code(secret, clock)})  # fmt: skip
    assert r.status_code == 429
    assert client.get("/auth/me").status_code == 401


def test_an_empty_code_spends_no_attempt(client: TestClient) -> None:
    clock = Clock()
    with_clock(client, clock)
    secret, _ = enrol(client, clock)
    token = page_first_step(client)
    for _ in range(6):
        r = client.post("/login/second-step", headers=HTML,
                        data={"csrf_token": token, "code": "  "})  # fmt: skip
        assert r.status_code == 400
    r = client.post("/login/second-step", headers=HTML, follow_redirects=False,
                    data={"csrf_token": token, "code": code(secret, clock)})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/account"


def test_the_sign_in_page_sends_such_a_user_straight_to_the_setup_page(tmp_path: Path) -> None:
    client = admin_client(tmp_path, Clock())
    try:
        login = client.get("/login?next=%2F", headers=HTML)
        form = {"csrf_token": csrf_of(login.text), "email": "ada@example.com",
                "password": PASSWORD, "next": "/"}  # fmt: skip
        r = client.post("/login", headers=HTML, follow_redirects=False, data=form)
        # Not to `next` (an app behind forward auth would only answer 403).
        assert r.status_code == 303 and r.headers["location"] == "/account/mfa/totp"
        assert client.get("/auth/me").status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_in_jwt_mode_confirming_replaces_the_token_family(tmp_path: Path) -> None:
    clock = Clock()
    with make_client(tmp_path, browser_mode="jwt") as c:
        client = with_clock(c, clock)
        register(client)
        assert login_response(client).status_code == 200
        old_access = client.cookies.get("__Host-gatepass-at")
        old_refresh = client.cookies.get("__Host-gatepass-rt")
        assert old_access and old_refresh
        secret = client.post("/auth/mfa/totp/setup").json()["secret"]
        r = client.post("/auth/mfa/totp/confirm", json={"code": code(secret, clock)})
        assert r.status_code == 200, r.text
        assert client.cookies.get("__Host-gatepass-at") != old_access
        [login] = client.get("/auth/sessions").json()  # only the new family is left
        assert login["current"]
        # The one-factor family is over: its tokens no longer work.
        client.cookies.clear()
        client.cookies.set("__Host-gatepass-at", str(old_access))
        assert client.get("/auth/me").status_code == 401
        client.cookies.clear()
        client.cookies.set("__Host-gatepass-rt", str(old_refresh))
        assert client.post("/auth/refresh").status_code == 401
