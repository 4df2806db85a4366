"""Once through Chromium: "Sign in with …" on /login, the provider's dev
login and consent pages, back to gatepass, signed in on /account.

The provider is on ``localhost`` and gatepass on ``127.0.0.1``: two sites,
so the transaction cookie (SameSite=Lax) must survive a cross-site
top-level redirect back to the callback, exactly as with a real provider.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.conftest import IN_CI
from tests.oauth.conftest import Gatepass

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # The provider's pages import Google Fonts: nothing but loopback resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]  # fmt: skip


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is not installed (apt-get install chromium)"
        pytest.fail(reason) if IN_CI else pytest.skip(reason)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing") if IN_CI else pytest.skip("playwright is missing")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_sign_in_with_the_provider_in_a_real_browser(server: Gatepass, chromium: Browser) -> None:
    login = f"chromium-{secrets.token_hex(4)}"
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"{server.url}/login?next=/account")
        page.get_by_role("link", name="Sign in with Node OP").click()
        page.wait_for_url(re.compile(r"^http://localhost:\d+/interaction/"))
        page.fill("input[name=login]", login)
        page.fill("input[name=password]", "anything")
        page.locator("button[type=submit]").first.click()
        page.wait_for_selector("input[name=prompt][value=consent]", state="attached")
        page.locator("button[type=submit]").first.click()  # consent
        page.wait_for_url(f"{server.url}/account", timeout=15000)
        assert f"{login}@example.com" in page.content()
        cookies = {c["name"]: c for c in context.cookies(server.url)}
        session = cookies["__Host-gatepass"]
        assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
        assert "__Host-gatepass-oauth" not in cookies  # the transaction is over
    finally:
        context.close()
