"""Linking and unlinking a provider from /account, in Chromium, against the
real OpenID provider: the signed-in user clicks "Link Node OP", passes the
provider's login and consent, comes back to /account with it linked, and
unlinks it with a plain form."""

from __future__ import annotations

import re
import secrets
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.browser.screens import VIEWPORT, shoot
from tests.oauth.conftest import Gatepass
from tests.oauth.test_browser_oidc import chromium  # noqa: F401 (the fixture)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"


def test_link_then_unlink_a_provider(server: Gatepass, chromium: Browser) -> None:  # noqa: F811
    email = f"linker-{uuid.uuid4().hex[:8]}@example.com"
    context = chromium.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    console: list[str] = []
    # Ours only: the provider's dev pages fail to load their web fonts.
    context.on("console", lambda m: console.append(f"{m.type}: {m.text}")
               if m.location.get("url", "").startswith(server.url) else None)  # fmt: skip
    try:
        page = context.new_page()
        page.goto(f"{server.url}/register")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("form[action='/register'] button[type=submit]")
        page.wait_for_url(f"{server.url}/account")

        page.get_by_role("link", name="Link Node OP").click()
        page.wait_for_url(re.compile(r"^http://localhost:\d+/interaction/"))
        page.fill("input[name=login]", f"linked-{secrets.token_hex(4)}")
        page.fill("input[name=password]", "anything")
        page.locator("button[type=submit]").first.click()
        page.wait_for_selector("input[name=prompt][value=consent]", state="attached")
        page.locator("button[type=submit]").first.click()
        page.wait_for_url(f"{server.url}/account", timeout=15000)

        section = page.locator("section[aria-labelledby=linked]")
        linked = section.locator("li", has=page.get_by_role("button", name="Unlink Node OP"))
        assert linked.count() == 1 and "Linked " in linked.inner_text()
        assert section.get_by_role("link", name="Link Node OP").count() == 0
        assert email in page.inner_text("main")  # still the same account
        shoot(page, "account-providers")

        linked.get_by_role("button").click()
        page.get_by_role("status").wait_for()
        assert page.get_by_role("status").inner_text() == "Node OP is unlinked."
        assert section.get_by_role("link", name="Link Node OP").count() == 1
        assert [m for m in console if m.startswith("error")] == []
    finally:
        context.close()
    assert "Traceback" not in server.log_text()
