"""Second factors through the pages, in real Chromium, in both browser modes.

A person registers on /register, turns TOTP on, signs out, and signs in
again: the password leads to /login/second-step, and only the right code
(computed with pyotp from the secret) makes a login.  Also: recovery codes
(spent once), wrong and reused codes, the token voided after five wrong
codes, ``next`` and "keep me signed in" carried across the second step, the
token bound to its browser, and the form's CSRF check.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pyotp
import pytest

from tests.browser.screens import VIEWPORT, shoot
from tests.browser.spa import api
from tests.conftest import free_port
from tests.oauth.conftest import Gatepass, gatepass

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
MFA_COOKIE = "__Host-gatepass-mfa"
WRONG = "That code is not right"


@pytest.fixture(scope="module", params=["session", "jwt"])
def site(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gatepass]:  # fmt: skip
    tmp = tmp_path_factory.mktemp(f"mfa-pages-{request.param}")
    with gatepass(
        tmp, free_port(), GATEPASS_BROWSER_MODE=request.param, GATEPASS_REGISTRATION_LIMIT="0"
    ) as served:
        yield served
    log = served.log_text()
    assert PASSWORD not in log and f"{MFA_COOKIE}=" not in log


@pytest.fixture
def ctx(context: BrowserContext) -> BrowserContext:
    """The shared fixture's context: JS on, external requests and CSP violations fail."""
    return context


def signed_in(page: Page) -> bool:
    status, _ = api(page, "GET", "/auth/me")
    assert status in (200, 401)
    return status == 200


def register(page: Page, site: Gatepass) -> str:
    email = f"mfa-{uuid.uuid4().hex[:10]}@example.com"
    page.goto(f"{site.url}/register")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/register'] button[type=submit]")
    page.wait_for_url(f"{site.url}/account")
    return email


def enrol_by_api(page: Page) -> tuple[str, list[str]]:
    status, setup = api(page, "POST", "/auth/mfa/totp/setup")
    assert status == 200, setup
    secret = setup["secret"]
    status, done = api(page, "POST", "/auth/mfa/totp/confirm", {"code": pyotp.TOTP(secret).now()})
    assert status == 200, done
    return secret, done["recovery_codes"]


def enrol(page: Page, site: Gatepass, *, screenshots: bool = False) -> tuple[str, list[str]]:
    """Turn TOTP on through /account as a person would; the secret shown on the
    page and the recovery codes."""
    page.goto(f"{site.url}/account")
    assert "Off." in page.inner_text("#mfa-heading + p")
    page.click("button:has-text('Set up an authenticator app')")
    page.wait_for_url(f"{site.url}/account/mfa/totp")
    # The QR code is inline SVG drawn by the server; the key is there as text.
    assert page.locator(".qr svg path").count() >= 1
    secret = page.inner_text("code.secret").replace(" ", "")
    assert len(secret) >= 16
    if screenshots:
        shoot(page, "mfa-setup")
    with page.expect_navigation() as nav:
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        page.click("button:has-text('Turn on two-step verification')")
    response = nav.value
    assert response is not None and response.status == 200
    assert response.headers["cache-control"] == "no-store"
    codes = page.locator("ul.codes code").all_inner_texts()
    assert len(codes) == 10
    if screenshots:
        shoot(page, "mfa-recovery-codes")
    page.click("a:has-text('back to your account')")
    page.wait_for_url(f"{site.url}/account")
    assert "On:" in page.inner_text("#mfa-heading + p")
    if screenshots:
        shoot(page, "account-mfa")
    return secret, codes


def next_code(secret: str) -> str:
    """The next time step's code: later than any used so far, and within the window."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def sign_out(page: Page, site: Gatepass) -> None:
    page.goto(f"{site.url}/account")  # a fresh form (a renewed login has a new CSRF token)
    page.click("header form[action='/logout'] button")
    page.wait_for_url(f"{site.url}/login")
    assert not signed_in(page)


def password_step(page: Page, site: Gatepass, email: str, *, next_path: str | None = None,
                  remember: bool = False) -> None:  # fmt: skip
    page.goto(f"{site.url}/login" + (f"?next={quote(next_path, safe='')}" if next_path else ""))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    if remember:
        page.check("input[name=remember]")
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{site.url}/login/second-step**")


def enter_code(page: Page, code: str) -> int:
    with page.expect_navigation() as nav:
        page.fill("input[name=code]", code)
        page.click("form[action='/login/second-step'] button[type=submit]")
    response = nav.value
    assert response is not None
    return response.status


def mfa_cookie(context: BrowserContext, site: Gatepass) -> dict[str, Any] | None:
    found = [c for c in context.cookies(site.url) if c["name"] == MFA_COOKIE]
    return dict(found[0]) if found else None


def test_totp_sign_in_through_the_second_step_page(ctx: BrowserContext, site: Gatepass) -> None:
    page = ctx.new_page()
    page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
    email = register(page, site)
    secret, _ = enrol(page, site, screenshots=True)
    sign_out(page, site)

    password_step(page, site, email, next_path="/?from=second-step", remember=True)
    # One factor in: no login of either kind, only the HttpOnly token cookie.
    assert not signed_in(page)
    cookie = mfa_cookie(ctx, site)
    assert cookie is not None and cookie["httpOnly"] and cookie["secure"]
    assert cookie["sameSite"] == "Lax" and cookie["expires"] > time.time()
    assert MFA_COOKIE not in page.evaluate("document.cookie")
    assert "recovery codes" in page.content()
    shoot(page, "second-step")

    assert enter_code(page, next_code(secret)) == 200
    assert page.url == f"{site.url}/?from=second-step"  # `next` kept across the step
    assert signed_in(page)
    assert mfa_cookie(ctx, site) is None  # single use, and gone from the browser
    names = {c["name"]: c for c in ctx.cookies(site.url)}
    if "__Host-gatepass" in names:  # session mode: "keep me signed in" kept too
        assert names["__Host-gatepass"]["expires"] > time.time() + 3600


def test_a_recovery_code_signs_in_once(ctx: BrowserContext, site: Gatepass) -> None:
    page = ctx.new_page()
    email = register(page, site)
    _, codes = enrol(page, site)
    sign_out(page, site)

    password_step(page, site, email)
    assert enter_code(page, codes[0].upper()) == 200  # any case
    assert page.url == f"{site.url}/account"
    assert signed_in(page)
    status, factors = api(page, "GET", "/auth/mfa")
    assert status == 200 and factors["recovery_codes_left"] == 9
    sign_out(page, site)

    password_step(page, site, email)
    assert enter_code(page, codes[0]) == 401  # spent
    assert WRONG in page.content()
    assert not signed_in(page)
    assert enter_code(page, codes[1]) == 200
    assert signed_in(page)


def test_wrong_then_reused_codes_are_refused(ctx: BrowserContext, site: Gatepass) -> None:
    page = ctx.new_page()
    email = register(page, site)
    secret, _ = enrol_by_api(page)
    sign_out(page, site)

    password_step(page, site, email)
    assert enter_code(page, "000000" if next_code(secret) != "000000" else "111111") == 401
    assert WRONG in page.content() and page.url.startswith(f"{site.url}/login/second-step")
    assert not signed_in(page)
    code = next_code(secret)
    assert enter_code(page, code) == 200
    assert signed_in(page)
    sign_out(page, site)

    # The same code again, on a fresh second step: refused.
    password_step(page, site, email)
    assert enter_code(page, code) == 401
    assert WRONG in page.content()
    assert not signed_in(page)


def test_five_wrong_codes_void_the_token(ctx: BrowserContext, site: Gatepass) -> None:
    page = ctx.new_page()
    email = register(page, site)
    secret, _ = enrol_by_api(page)
    sign_out(page, site)

    password_step(page, site, email, next_path="/")
    right = next_code(secret)
    wrong = "123456" if right != "123456" else "654321"
    for _ in range(5):
        assert enter_code(page, wrong) == 401
        assert WRONG in page.content()
    # The sixth try finds the token void, even with the right code.
    assert enter_code(page, right) == 200
    assert page.url.startswith(f"{site.url}/login?restart=1")
    assert "too many wrong codes" in page.content()
    assert page.input_value("input[name=next]") == "/"
    assert mfa_cookie(ctx, site) is None
    assert not signed_in(page)
    # The same right code still works on a new sign-in: the void token spent nothing.
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{site.url}/login/second-step**")
    assert enter_code(page, right) == 200
    assert page.url == f"{site.url}/"
    assert signed_in(page)


def test_the_token_is_bound_to_its_browser(
    ctx: BrowserContext, chromium: Browser, site: Gatepass
) -> None:
    page = ctx.new_page()
    email = register(page, site)
    secret, _ = enrol_by_api(page)
    sign_out(page, site)
    password_step(page, site, email)
    stolen = mfa_cookie(ctx, site)
    assert stolen is not None

    # Another browser (another User-Agent) with the stolen cookie and the right code.
    thief = chromium.new_context(user_agent="Thief/1.0")
    try:
        thief.add_cookies([{k: stolen[k] for k in
                            ("name", "value", "domain", "path", "secure", "httpOnly",
                             "sameSite", "expires")}])  # type: ignore[misc]  # fmt: skip
        other = thief.new_page()
        other.goto(f"{site.url}/login/second-step")
        assert enter_code(other, next_code(secret)) == 200
        assert other.url.startswith(f"{site.url}/login?restart=1")
        assert not signed_in(other)
    finally:
        thief.close()
    # The owner's token counted the thief's try as an attempt but is still good.
    assert enter_code(page, next_code(secret)) == 200
    assert signed_in(page)


def test_no_token_no_page_and_csrf_is_checked(ctx: BrowserContext, site: Gatepass) -> None:
    page = ctx.new_page()
    page.goto(f"{site.url}/login/second-step?next=%2F")
    assert page.url == f"{site.url}/login?next=%2F"
    email = register(page, site)
    secret, _ = enrol_by_api(page)
    sign_out(page, site)
    password_step(page, site, email)
    # A post without the CSRF token is refused before the code is looked at.
    status = page.evaluate(
        """async (code) => (await fetch('/login/second-step', {method: 'POST',
            headers: {'content-type': 'application/x-www-form-urlencoded'},
            body: 'code=' + code})).status""",
        next_code(secret),
    )
    assert status == 403
    assert not signed_in(page)
    # A forged token cookie leads back to the first step.
    ctx.add_cookies([{"name": MFA_COOKIE, "value": "totp." + "A" * 43, "domain": "127.0.0.1",
                      "path": "/", "secure": True, "httpOnly": True,
                      "sameSite": "Lax"}])  # fmt: skip
    page.goto(f"{site.url}/login/second-step")
    assert enter_code(page, next_code(secret)) == 200
    assert page.url.startswith(f"{site.url}/login?restart=1")
    assert not signed_in(page)


def test_new_codes_and_turning_off_from_the_account_page(
    ctx: BrowserContext, site: Gatepass
) -> None:
    page = ctx.new_page()
    register(page, site)
    secret, codes = enrol(page, site)
    # A wrong password is refused and changes nothing.
    page.fill("#mfa_password", "not the password at all")
    with page.expect_navigation() as nav:
        page.click("button:has-text('New recovery codes')")
    assert nav.value is not None and nav.value.status == 401
    assert "not right" in page.content()
    # With the password: ten new codes, the old ones void.
    page.fill("#mfa_password", PASSWORD)
    with page.expect_navigation() as nav:
        page.click("button:has-text('New recovery codes')")
    assert nav.value is not None and nav.value.status == 200
    fresh = page.locator("ul.codes code").all_inner_texts()
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    # Turning it off with a code from the app.
    page.goto(f"{site.url}/account")
    page.fill("#mfa_code", next_code(secret))
    with page.expect_navigation() as nav:
        page.click("button:has-text('Turn off two-step verification')")
    assert nav.value is not None and nav.value.status == 200
    assert "Two-step verification is off." in page.content()
    status, factors = api(page, "GET", "/auth/mfa")
    assert status == 200 and factors["totp"] is False and factors["recovery_codes_left"] == 0


@pytest.fixture(scope="module", params=["session", "jwt"])
def policy_site(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gatepass]:  # fmt: skip
    tmp = tmp_path_factory.mktemp(f"mfa-policy-{request.param}")
    with gatepass(
        tmp, free_port(), GATEPASS_BROWSER_MODE=request.param, GATEPASS_REGISTRATION_LIMIT="0",
        GATEPASS_MFA_REQUIRED_ROLES="admin,ops",
    ) as served:  # fmt: skip
        yield served


def add_admin(site: Gatepass) -> str:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    done = subprocess.run(
        [sys.executable, "-m", "gatepass", "users", "add", email, "--password-stdin",
         "--role", "admin"],
        input=PASSWORD + "\n", capture_output=True, text=True, env=site.env, timeout=60,
        cwd=Path(site.env["GATEPASS_DATA_DIR"]).parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return email


def bearer(site: Gatepass, token: str, path: str) -> httpx.Response:
    return httpx.get(f"{site.url}{path}", headers={"authorization": f"Bearer {token}"})


def test_an_admin_without_a_factor_is_walked_through_enrolment(
    ctx: BrowserContext, policy_site: Gatepass
) -> None:
    site = policy_site
    email = add_admin(site)
    page = ctx.new_page()
    page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
    page.goto(f"{site.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    # Signed in, but every page leads to the setup page...
    page.wait_for_url(f"{site.url}/account/mfa/totp")
    assert "Your role needs two-step verification" in page.content()
    page.goto(f"{site.url}/account")
    assert page.url == f"{site.url}/account/mfa/totp"
    # ...and the API answers 403 mfa_enrollment_required but for enrolment.
    assert api(page, "GET", "/auth/me")[0] == 200
    assert api(page, "GET", "/auth/mfa")[0] == 200
    status, body = api(page, "GET", "/auth/sessions")
    assert (status, body["error"]) == (403, "mfa_enrollment_required")
    status, body = api(page, "POST", "/auth/sessions/revoke-others")
    assert (status, body["error"]) == (403, "mfa_enrollment_required")
    status, body = api(page, "GET", "/auth/verify")
    assert (status, body["error"]) == (403, "mfa_enrollment_required")  # forward auth too
    # A Bearer token from /auth/token is confined the same way.
    token = httpx.post(f"{site.url}/auth/token", json={"email": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    one_factor = token.json()["access_token"]
    assert bearer(site, one_factor, "/auth/me").status_code == 200
    r = bearer(site, one_factor, "/auth/sessions")
    assert (r.status_code, r.json()["error"]) == (403, "mfa_enrollment_required")

    # Enrolment through the pages; this browser's login then carries the factor.
    page.click("button:has-text('Set up an authenticator app')")
    page.wait_for_url(f"{site.url}/account/mfa/totp")
    secret = page.inner_text("code.secret").replace(" ", "")
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("button:has-text('Turn on two-step verification')")
    assert len(page.locator("ul.codes code").all_inner_texts()) == 10
    page.click("a:has-text('back to your account')")
    page.wait_for_url(f"{site.url}/account")
    assert api(page, "GET", "/auth/sessions")[0] == 200
    assert api(page, "GET", "/auth/verify")[0] == 200
    # The old one-factor token now has to sign in again, with the second step.
    r = bearer(site, one_factor, "/auth/sessions")
    assert (r.status_code, r.json()["error"]) == (403, "insufficient_user_authentication")
    first = httpx.post(f"{site.url}/auth/token", json={"email": email, "password": PASSWORD})
    assert first.status_code == 401 and first.json()["error"] == "mfa_required"
    second = httpx.post(f"{site.url}/auth/mfa/verify", json={
        "mfa_token": first.json()["mfa_token"], "code": next_code(secret)})  # fmt: skip
    assert second.status_code == 200, second.text
    assert bearer(site, second.json()["access_token"], "/auth/sessions").status_code == 200
