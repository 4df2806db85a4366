"""Second factors through the JSON API (SPEC "Multi-factor authentication",
SECURITY 43-45): enrolment, the two-step sign-in for /auth/login and
/auth/token, mfa_token misuse, recovery codes, re-authentication, step-up
claims and the admin reset.  Real stores; codes computed by pyotp at the
server's injected clock."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from starlette.testclient import TestClient

from gatepass.server.components import Components
from tests.server.conftest import PASSWORD, make_client, register
from tests.server.test_cli import EMAIL, cli_json, run_cli


class Clock:
    def __init__(self) -> None:
        now = time.time()
        self.now = now - now % 30 + 15  # mid-step

    def __call__(self) -> float:
        return self.now


def parts_of(client: TestClient) -> Components:
    parts: Components = client.app.state.gatepass.components  # type: ignore[attr-defined]
    return parts


@pytest.fixture
def clock() -> Clock:
    return Clock()


def with_clock(client: TestClient, clock: Clock) -> TestClient:
    parts_of(client).mfa.clock = clock
    return client


@pytest.fixture
def client(tmp_path: Path, clock: Clock) -> Iterator[TestClient]:
    with make_client(tmp_path) as c:
        yield with_clock(c, clock)


def login_response(client: TestClient, **extra: Any) -> httpx.Response:
    return client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD, **extra})


def enrol(client: TestClient, clock: Clock) -> tuple[str, list[str]]:
    """Register, sign in, turn TOTP on; the secret and the recovery codes."""
    register(client)
    assert login_response(client).status_code == 200
    setup = client.post("/auth/mfa/totp/setup")
    assert setup.status_code == 200, setup.text
    secret: str = setup.json()["secret"]
    assert setup.json()["otpauth_uri"].startswith("otpauth://totp/")
    confirm = client.post("/auth/mfa/totp/confirm", json={"code": pyotp.TOTP(secret).at(clock.now)})
    assert confirm.status_code == 200, confirm.text
    codes: list[str] = confirm.json()["recovery_codes"]
    assert client.post("/auth/logout").status_code == 204
    clock.now += 30  # the confirming code's step is spent
    return secret, codes


def code(secret: str, clock: Clock) -> str:
    return str(pyotp.TOTP(secret).at(clock.now))


def wrong(secret: str, clock: Clock) -> str:
    return "000000" if code(secret, clock) != "000000" else "111111"


def first_step(client: TestClient, path: str = "/auth/login") -> str:
    r = client.post(path, json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["error"] == "mfa_required"
    assert body["methods"] == ["totp", "recovery_code"]
    assert not any(c.startswith("__Host-gatepass=") for c in r.headers.get_list("set-cookie"))
    assert "access_token" not in body and "refresh_token" not in body
    token: str = body["mfa_token"]
    return token


def verify(client: TestClient, token: str, value: str, **kw: Any) -> httpx.Response:
    return client.post("/auth/mfa/verify", json={"mfa_token": token, "code": value}, **kw)


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def test_enrol_and_sign_in_with_totp_on_every_store(store_client: TestClient) -> None:
    clock = Clock()
    client = with_clock(store_client, clock)
    secret, codes = enrol(client, clock)
    assert len(codes) == 10
    assert client.get("/auth/me").status_code == 401
    token = first_step(client)
    assert client.get("/auth/me").status_code == 401  # no session after the first step
    r = verify(client, token, code(secret, clock))
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == EMAIL
    assert r.headers["cache-control"] == "no-store"
    assert client.get("/auth/me").status_code == 200
    state = client.get("/auth/mfa").json()
    assert state == {"totp": True, "recovery_codes_left": 10, "passkeys": 0,
                     "methods": ["totp", "recovery_code"]}  # fmt: skip
    [login] = client.get("/auth/sessions").json()
    assert login["current"] and login["kind"] == "session"
    # The session records how and when the user signed in.
    parts = parts_of(client)
    user_id = client.get("/auth/me").json()["id"]
    assert client.portal is not None
    [record] = client.portal.call(parts.sessions.store.list_user, user_id)
    assert record.data["amr"] == ["pwd", "otp"]
    assert abs(record.data["auth_time"] - time.time()) < 30


def test_setup_shows_a_server_rendered_qr_code(client: TestClient) -> None:
    register(client)
    login_response(client)
    assert client.get("/auth/mfa/totp/qr.svg").status_code == 404  # no setup yet
    client.post("/auth/mfa/totp/setup")
    r = client.get("/auth/mfa/totp/qr.svg")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.headers["cache-control"] == "no-store"
    svg = r.text
    assert svg.startswith("<svg") and "<path" in svg
    assert "<script" not in svg and "href" not in svg and "http" not in svg.split(">", 1)[1]
    # Anonymous callers get nothing.
    client.post("/auth/logout")
    assert client.get("/auth/mfa/totp/qr.svg").status_code == 401


def test_setup_and_confirm_need_a_signed_in_user(client: TestClient) -> None:
    register(client)
    assert client.post("/auth/mfa/totp/setup").status_code == 401
    assert client.post("/auth/mfa/totp/confirm", json={"code": "123456"}).status_code == 401
    login_response(client)
    r = client.post("/auth/mfa/totp/confirm", json={"code": "123456"})
    assert r.status_code == 409  # nothing to confirm
    assert client.post("/auth/mfa/recovery-codes").status_code == 409  # no factor


def test_a_wrong_confirmation_code_leaves_totp_off(client: TestClient, clock: Clock) -> None:
    register(client)
    login_response(client)
    secret = client.post("/auth/mfa/totp/setup").json()["secret"]
    r = client.post("/auth/mfa/totp/confirm", json={"code": wrong(secret, clock)})
    assert r.status_code == 401 and r.json()["error"] == "invalid_code"
    assert client.get("/auth/mfa").json()["totp"] is False
    assert client.post("/auth/mfa/totp/setup").status_code == 200  # may start again


def test_a_wrong_password_never_yields_an_mfa_token(client: TestClient, clock: Clock) -> None:
    enrol(client, clock)
    r = client.post("/auth/login", json={"email": EMAIL, "password": "not the password"})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_credentials" and "mfa_token" not in r.json()
    r = client.post("/auth/token", json={"email": EMAIL, "password": "not the password"})
    assert r.status_code == 401 and "mfa_token" not in r.json()


def test_the_second_step_needs_csrf_after_a_browser_login(client: TestClient,
                                                          clock: Clock) -> None:  # fmt: skip
    secret, _ = enrol(client, clock)
    token = first_step(client)
    r = verify(client, token, code(secret, clock), headers={"x-csrf-token": "forged"})
    assert r.status_code == 403 and r.json()["error"] == "csrf_failed"
    assert client.get("/auth/me").status_code == 401
    r = verify(client, token, code(secret, clock))  # BrowserClient sends the real token
    assert r.status_code == 200, r.text


def test_the_token_flow_needs_no_csrf_and_tokens_carry_amr(client: TestClient,
                                                          clock: Clock) -> None:  # fmt: skip
    secret, _ = enrol(client, clock)
    client.cookies = httpx.Cookies()
    token = first_step(client, "/auth/token")
    r = verify(client, token, code(secret, clock), headers={"x-csrf-token": "not needed"})
    assert r.status_code == 200, r.text
    pair = r.json()
    assert pair["token_type"] == "Bearer" and pair["refresh_token"]
    assert not any(c.startswith("__Host-gatepass=") for c in r.headers.get_list("set-cookie"))
    access = claims(pair["access_token"])
    assert access["amr"] == ["pwd", "otp"]
    assert abs(access["auth_time"] - time.time()) < 5  # the server's own clock
    me = client.get("/auth/me", headers={"authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200
    # A refresh is not a new sign-in: amr and auth_time are kept.
    refreshed = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    again = claims(refreshed["access_token"])
    assert again["amr"] == ["pwd", "otp"] and again["auth_time"] == access["auth_time"]


def test_without_a_factor_login_is_one_step_with_amr_pwd(client: TestClient) -> None:
    register(client)
    r = client.post("/auth/token", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 200
    assert claims(r.json()["access_token"])["amr"] == ["pwd"]


def test_an_mfa_token_is_single_use(client: TestClient, clock: Clock) -> None:
    secret, _ = enrol(client, clock)
    token = first_step(client)
    assert verify(client, token, code(secret, clock)).status_code == 200
    clock.now += 30
    r = verify(client, token, code(secret, clock))
    assert r.status_code == 401 and r.json()["error"] == "invalid_mfa_token"


def test_five_wrong_codes_void_the_mfa_token(client: TestClient, clock: Clock) -> None:
    secret, _ = enrol(client, clock)
    token = first_step(client)
    for _ in range(5):
        r = verify(client, token, wrong(secret, clock))
        assert r.status_code == 401 and r.json()["error"] == "invalid_code"
    r = verify(client, token, code(secret, clock))
    assert r.status_code == 401 and r.json()["error"] == "invalid_mfa_token"
    assert client.get("/auth/me").status_code == 401
    # A fresh first step works (the owner is not locked out by five typos).
    assert verify(client, first_step(client), code(secret, clock)).status_code == 200


def test_an_mfa_token_expires_after_five_minutes(client: TestClient, clock: Clock) -> None:
    secret, _ = enrol(client, clock)
    token = first_step(client)
    clock.now += 301
    r = verify(client, token, code(secret, clock))
    assert r.status_code == 401 and r.json()["error"] == "invalid_mfa_token"


def test_an_mfa_token_is_bound_to_the_first_steps_client(client: TestClient,
                                                         clock: Clock) -> None:  # fmt: skip
    secret, _ = enrol(client, clock)
    token = first_step(client)
    r = verify(client, token, code(secret, clock), headers={"user-agent": "curl/8.0"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_mfa_token"
    assert client.get("/auth/me").status_code == 401
    assert verify(client, token, code(secret, clock)).status_code == 200


def test_an_mfa_token_is_useless_anywhere_else(client: TestClient, clock: Clock) -> None:
    secret, _ = enrol(client, clock)
    token = first_step(client)
    bearer = {"authorization": f"Bearer {token}"}
    assert client.get("/auth/me", headers=bearer).status_code == 401
    assert client.get("/auth/me", headers={"cookie": f"__Host-gatepass={token}"}).status_code == 401
    assert client.post("/auth/mfa/totp/setup", headers=bearer).status_code == 401
    r = client.post("/auth/refresh", json={"refresh_token": token})
    assert r.status_code == 401 and r.json()["error"] == "invalid_grant"
    assert client.get("/auth/verify", headers=bearer).status_code == 401
    # And it still finishes its own sign-in.
    assert verify(client, token, code(secret, clock)).status_code == 200


def test_a_recovery_code_signs_in_once(client: TestClient, clock: Clock) -> None:
    _, codes = enrol(client, clock)
    r = verify(client, first_step(client), codes[0])
    assert r.status_code == 200, r.text
    assert client.get("/auth/mfa").json()["recovery_codes_left"] == 9
    client.post("/auth/logout")
    r = verify(client, first_step(client), codes[0])
    assert r.status_code == 401 and r.json()["error"] == "invalid_code"


def test_browser_jwt_mode_finishes_with_token_cookies(tmp_path: Path, clock: Clock) -> None:
    with make_client(tmp_path, browser_mode="jwt") as c:
        client = with_clock(c, clock)
        secret, _ = enrol(client, clock)
        token = first_step(client)
        r = verify(client, token, code(secret, clock))
        assert r.status_code == 200, r.text
        names = [h.split("=", 1)[0] for h in r.headers.get_list("set-cookie")]
        assert "__Host-gatepass-at" in names or any(n.endswith("-at") for n in names), names
        assert client.get("/auth/me").status_code == 200


def test_turning_totp_off_needs_reauthentication(client: TestClient, clock: Clock) -> None:
    secret, _ = enrol(client, clock)
    assert verify(client, first_step(client), code(secret, clock)).status_code == 200
    parts = parts_of(client)
    parts.sessions.clock = lambda: time.time() + 400  # the sign-in is 400 s old
    r = client.request("DELETE", "/auth/mfa/totp")
    assert r.status_code == 403 and r.json()["error"] == "insufficient_user_authentication"
    r = client.request("DELETE", "/auth/mfa/totp", json={"password": "not the password"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_credentials"
    r = client.request("DELETE", "/auth/mfa/totp", json={"code": wrong(secret, clock)})
    assert r.status_code == 401 and r.json()["error"] == "invalid_code"
    assert client.get("/auth/mfa").json()["totp"] is True
    clock.now += 30
    r = client.request("DELETE", "/auth/mfa/totp", json={"code": code(secret, clock)})
    assert r.status_code == 204
    assert client.get("/auth/mfa").json() == {"totp": False, "recovery_codes_left": 0,
                                              "passkeys": 0, "methods": []}  # fmt: skip
    client.post("/auth/logout")
    assert login_response(client).status_code == 200  # one step again


def test_turning_totp_off_with_the_password(client: TestClient, clock: Clock) -> None:
    secret, _ = enrol(client, clock)
    assert verify(client, first_step(client), code(secret, clock)).status_code == 200
    parts_of(client).sessions.clock = lambda: time.time() + 400
    r = client.request("DELETE", "/auth/mfa/totp", json={"password": PASSWORD})
    assert r.status_code == 204


def test_regenerating_recovery_codes_needs_a_recent_sign_in(client: TestClient,
                                                            clock: Clock) -> None:  # fmt: skip
    secret, old = enrol(client, clock)
    assert verify(client, first_step(client), code(secret, clock)).status_code == 200
    r = client.post("/auth/mfa/recovery-codes")  # signed in seconds ago
    assert r.status_code == 200
    new = r.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    parts_of(client).sessions.clock = lambda: time.time() + 400
    r = client.post("/auth/mfa/recovery-codes")
    assert r.status_code == 403 and r.json()["error"] == "insufficient_user_authentication"
    r = client.post("/auth/mfa/recovery-codes", json={"password": PASSWORD})
    assert r.status_code == 200
    client.post("/auth/logout")
    parts_of(client).sessions.clock = time.time
    r = verify(client, first_step(client), new[0])  # replaced: the first new set is void
    assert r.status_code == 401


def test_wrong_codes_are_throttled_per_account(client: TestClient, clock: Clock) -> None:
    secret, _ = enrol(client, clock)
    statuses = []
    for _ in range(4):
        token = first_step(client)
        statuses += [verify(client, token, wrong(secret, clock)).status_code for _ in range(5)]
    assert 429 in statuses
    r = verify(client, first_step(client), code(secret, clock))
    assert r.status_code in (401, 429)  # backing off: even the right code waits
    assert r.json()["error"] in ("rate_limited", "invalid_mfa_token")


def test_mfa_reset_removes_factors_and_ends_every_login(tmp_path: Path, clock: Clock) -> None:
    data_dir = tmp_path / "data"
    with make_client(tmp_path) as c:
        client = with_clock(c, clock)
        secret, _ = enrol(client, clock)
        assert verify(client, first_step(client), code(secret, clock)).status_code == 200
        listed = cli_json(data_dir, "users", "list")
        assert listed[0]["mfa"] == ["totp", "recovery_code"]
        result = run_cli(data_dir, "mfa", "reset", EMAIL)
        assert result.returncode == 0, result.stderr
        assert "second factors removed; 1 login ended" in result.stdout
        assert client.get("/auth/me").status_code == 401
        assert cli_json(data_dir, "users", "list")[0]["mfa"] == []
        assert login_response(client).status_code == 200
        unknown = run_cli(data_dir, "mfa", "reset", "nobody@example.com")
        assert unknown.returncode == 1 and "Traceback" not in unknown.stderr


def test_the_sign_in_page_does_not_skip_the_second_factor(client: TestClient,
                                                          clock: Clock) -> None:  # fmt: skip
    secret, _ = enrol(client, clock)
    r = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "next": "/account"},
                    follow_redirects=False)  # fmt: skip
    # On to the second step: a token cookie and no session.
    assert r.status_code == 303
    assert r.headers["location"] == "/login/second-step?next=%2Faccount"
    set_cookies = r.headers.get_list("set-cookie")
    assert not any(c.startswith("__Host-gatepass=") for c in set_cookies)
    [mfa] = [c for c in set_cookies if c.startswith("__Host-gatepass-mfa=")]
    assert "HttpOnly" in mfa and "Secure" in mfa and "Max-Age=300" in mfa
    assert client.get("/auth/me").status_code == 401
    page = client.get("/login/second-step?next=%2Faccount")
    assert page.status_code == 200 and 'name="code"' in page.text
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {"csrf_token": token, "code": code(secret, clock)}
    done = client.post("/login/second-step", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert client.get("/auth/me").status_code == 200
    user_id = client.get("/auth/me").json()["id"]
    assert client.portal is not None
    [record] = client.portal.call(parts_of(client).sessions.store.list_user, user_id)
    assert record.data["amr"] == ["pwd", "otp"]


def test_confirming_totp_renews_the_browser_login_with_otp(client: TestClient,
                                                           clock: Clock) -> None:  # fmt: skip
    register(client)
    assert login_response(client).status_code == 200
    user_id = client.get("/auth/me").json()["id"]
    parts = parts_of(client)
    assert client.portal is not None
    [before] = client.portal.call(parts.sessions.store.list_user, user_id)
    assert before.data["amr"] == ["pwd"]
    secret = client.post("/auth/mfa/totp/setup").json()["secret"]
    confirm = client.post("/auth/mfa/totp/confirm", json={"code": code(secret, clock)})
    assert confirm.status_code == 200, confirm.text
    # The same browser goes on, under a new session that carries the factor;
    # the one-factor session is gone.
    assert client.get("/auth/me").status_code == 200
    [after] = client.portal.call(parts.sessions.store.list_user, user_id)
    assert after.data["amr"] == ["pwd", "otp"]
    assert after.public_id != before.public_id
