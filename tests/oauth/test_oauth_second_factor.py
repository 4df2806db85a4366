"""A provider's sign-in does not skip a second factor (SECURITY 43/44).

Until the second step has its page, an account with TOTP on cannot sign in
through a provider at all (fail closed); linking a provider while signed in
still works."""

from __future__ import annotations

from collections.abc import Iterator

import pyotp
import pytest

from tests.oauth.conftest import Gatepass
from tests.oauth.harness import Browser
from tests.oauth.test_oidc_flow import (
    assert_refused,
    authorize,
    finish,
    me,
    register_and_login,
    unique,
)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def turn_totp_on(browser: Browser, server: Gatepass) -> None:
    token = browser.get(f"{server.url}/auth/csrf").json()["csrf_token"]
    headers = {"x-csrf-token": token, "origin": server.url}
    setup = browser.request("POST", f"{server.url}/auth/mfa/totp/setup", headers=headers)
    assert setup.status_code == 200, setup.text
    code = pyotp.TOTP(setup.json()["secret"]).now()
    r = browser.request(
        "POST", f"{server.url}/auth/mfa/totp/confirm", json={"code": code}, headers=headers
    )
    assert r.status_code == 200, r.text


def test_a_provider_sign_in_cannot_skip_totp(server: Gatepass, browser: Browser) -> None:
    local_id = register_and_login(browser, server, f"{unique()}@example.com")
    turn_totp_on(browser, server)
    login = unique("mfa")
    # Linking while signed in is not a sign-in: allowed.
    assert finish(browser, authorize(browser, server, login)).status_code == 302
    assert me(browser, server)["id"] == local_id
    other = Browser()
    try:
        r = finish(other, authorize(other, server, login))
        assert_refused(r, 403, "forbidden")
        assert other.get(f"{server.url}/auth/me").status_code == 401
    finally:
        other.close()
