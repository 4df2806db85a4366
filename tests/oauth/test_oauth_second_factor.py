"""A provider's sign-in does not skip a second factor (SECURITY 43/44).

An account with TOTP on that signs in through a provider is sent to the
second-step page with no login yet, in both browser modes; only the right
code finishes the sign-in, to the ``next`` the sign-in started with.
Linking a provider while signed in is not a sign-in and needs no code.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pyotp
import pytest

from tests.oauth.conftest import Gatepass, OpenIDProvider, gatepass, node_provider_env
from tests.oauth.harness import TX_COOKIE, Browser, _form, location, play_user
from tests.oauth.test_browser_oidc import chromium  # noqa: F401  # the fixture
from tests.oauth.test_oidc_flow import (
    authorize,
    callback_prefix,
    me,
    register_and_login,
    unique,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser as ChromiumBrowser

MFA_COOKIE = "__Host-gatepass-mfa"


@pytest.fixture(scope="module", params=["session", "jwt"])
def server(
    request: pytest.FixtureRequest, op: OpenIDProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gatepass]:
    tmp = tmp_path_factory.mktemp(f"gatepass-mfa-{request.param}")
    with gatepass(
        tmp, op.take_port(), GATEPASS_BROWSER_MODE=request.param, **node_provider_env(op)
    ) as served:
        yield served


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def turn_totp_on(browser: Browser, server: Gatepass) -> str:
    token = browser.get(f"{server.url}/auth/csrf").json()["csrf_token"]
    headers = {"x-csrf-token": token, "origin": server.url}
    setup = browser.request("POST", f"{server.url}/auth/mfa/totp/setup", headers=headers)
    assert setup.status_code == 200, setup.text
    secret: str = setup.json()["secret"]
    r = browser.request(
        "POST", f"{server.url}/auth/mfa/totp/confirm",
        json={"code": pyotp.TOTP(secret).now()}, headers=headers,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    return secret


def post_code(browser: Browser, server: Gatepass, page_url: str, code: str) -> httpx.Response:
    page = browser.get(page_url)
    assert page.status_code == 200, page.text
    action, fields = _form(page.text, page_url)
    assert action == f"{server.url}/login/second-step"
    return browser.request(
        "POST", action, data={**fields, "code": code},
        headers={"origin": server.url, "accept": "text/html"},
    )  # fmt: skip


def test_a_provider_sign_in_goes_through_the_second_step(
    server: Gatepass, browser: Browser
) -> None:
    local_id = register_and_login(browser, server, f"{unique()}@example.com")
    secret = turn_totp_on(browser, server)
    login = unique("mfa")
    # Linking while signed in is not a sign-in: no second step.
    linked = browser.get(authorize(browser, server, login))
    assert linked.status_code == 302 and location(linked) == f"{server.url}/account"
    assert me(browser, server)["id"] == local_id

    other = Browser()
    try:
        start = other.get(f"{server.url}/auth/oauth/node/start?next=%2F%3Fvia%3Dprovider")
        back = play_user(other, location(start), login, callback_prefix(server))
        r = other.get(back, headers={"accept": "text/html"})
        # One factor in: the second-step page, a token cookie, and no login.
        assert r.status_code == 303, r.text
        page_url = location(r)
        assert page_url.startswith(f"{server.url}/login/second-step?next=")
        set_cookies = r.headers.get_list("set-cookie")
        assert any(c.startswith(f"{MFA_COOKIE}=") and "HttpOnly" in c for c in set_cookies)
        assert any(c.startswith(f"{TX_COOKIE}=;") for c in set_cookies)
        # Nothing else: no session cookie, no token cookies.
        assert {c.split("=", 1)[0] for c in set_cookies} == {MFA_COOKIE, TX_COOKIE}
        assert other.get(f"{server.url}/auth/me").status_code == 401

        wrong = post_code(other, server, page_url, "000000" if pyotp.TOTP(secret).at(
            time.time() + 30) != "000000" else "111111")  # fmt: skip
        assert wrong.status_code == 401
        assert other.get(f"{server.url}/auth/me").status_code == 401

        done = post_code(other, server, page_url, pyotp.TOTP(secret).at(time.time() + 30))
        assert done.status_code == 303, done.text
        assert location(done) == f"{server.url}/?via=provider"
        assert me(other, server)["id"] == local_id
        assert MFA_COOKIE not in other.cookies(server.url)
    finally:
        other.close()
    assert "mfa_token" not in server.log_text()


@pytest.mark.browser
def test_the_second_step_after_a_provider_in_chromium(
    server: Gatepass,
    browser: Browser,
    chromium: ChromiumBrowser,  # noqa: F811  # the imported fixture
) -> None:
    """The token cookie is set on the callback of a cross-site redirect chain
    (provider on localhost, gatepass on 127.0.0.1) and must reach the page."""
    local_id = register_and_login(browser, server, f"{unique()}@example.com")
    secret = turn_totp_on(browser, server)
    login = unique("chromium-mfa")
    assert browser.get(authorize(browser, server, login)).status_code == 302  # linked
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"{server.url}/login?next=%2F%3Fvia%3Dchromium")
        page.get_by_role("link", name="Sign in with Node OP").click()
        page.wait_for_url(re.compile(r"^http://localhost:\d+/interaction/"))
        page.fill("input[name=login]", login)
        page.fill("input[name=password]", "anything")
        page.locator("button[type=submit]").first.click()
        page.wait_for_selector("input[name=prompt][value=consent]", state="attached")
        page.locator("button[type=submit]").first.click()  # consent
        page.wait_for_url(re.compile(re.escape(f"{server.url}/login/second-step")), timeout=15000)
        names = {c["name"] for c in context.cookies(server.url)}
        assert MFA_COOKIE in names and "__Host-gatepass" not in names
        page.fill("input[name=code]", pyotp.TOTP(secret).at(time.time() + 30))
        page.click("form[action='/login/second-step'] button[type=submit]")
        page.wait_for_url(f"{server.url}/?via=chromium")
        me_now = page.evaluate("async () => (await fetch('/auth/me')).json()")
        assert me_now["id"] == local_id
    finally:
        context.close()
