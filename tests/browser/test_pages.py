"""Every page in real Chromium: it renders, its forms work with JavaScript
switched off, nothing fails to load (the favicon included), no console
error and no CSP violation; a screenshot of each (see ``screens.py``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import EMAIL, PASSWORD, Gatepass, Watch
from tests.browser.screens import VIEWPORT, shoot
from tests.conftest import free_port
from tests.oauth.conftest import gatepass

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Response

pytestmark = pytest.mark.browser

CHROME_ON_PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


class Loads:
    """Every response a context saw; subresources must all succeed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def on_response(self, response: Response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            self.failed.append(f"{response.status} {response.url}")


@pytest.fixture
def loads(context: BrowserContext) -> Loads:
    seen = Loads()
    context.on("response", seen.on_response)
    return seen


@pytest.fixture
def nojs(chromium: Browser, watch: Watch) -> Iterator[BrowserContext]:
    """A context with JavaScript off: the forms must work as plain HTML."""
    ctx = chromium.new_context(java_script_enabled=False, viewport=VIEWPORT)  # type: ignore[arg-type]
    ctx.set_default_timeout(10_000)
    ctx.on("console", lambda m: watch.console.append(f"{m.type}: {m.text}"))
    try:
        yield ctx
    finally:
        ctx.close()


def console_errors(watch: Watch, allowed_status: int | None = None) -> list[str]:
    """Console errors, less the one Chromium prints for a page whose own
    status is the error status the test asked for (a 404 page is a 404)."""
    errors = [m for m in watch.console if m.startswith("error")]
    if allowed_status is not None:
        errors = [m for m in errors if f"status of {allowed_status}" not in m]
    return errors + watch.page_errors


def visit(page: Page, url: str) -> Response:
    response = page.goto(url)
    assert response is not None
    return response


def test_home_and_sign_in_pages(
    context: BrowserContext, server: Gatepass, watch: Watch, loads: Loads
) -> None:
    page = context.new_page()
    page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
    assert visit(page, f"{server.url}/").status == 200
    assert page.title() == "Welcome · gatepass"
    assert page.get_by_role("link", name="Create an account").is_visible()
    shoot(page, "home")

    assert visit(page, f"{server.url}/login").status == 200
    assert page.get_by_role("link", name="Create an account").get_attribute("href") == "/register"
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon == "/static/favicon.svg"
    assert page.request.get(f"{server.url}{icon}").status == 200
    # Pages without the link (JSON ones) make browsers ask for /favicon.ico.
    assert page.request.get(f"{server.url}/favicon.ico").status == 200
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(244, 245, 247)"
    shoot(page, "sign-in")

    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", "not the password")
    page.click("form[action='/login'] button[type=submit]")
    page.get_by_role("alert").wait_for()
    assert page.get_by_role("alert").inner_text() == "Invalid email or password."
    assert page.input_value("input[name=email]") == EMAIL  # kept for the second try
    shoot(page, "sign-in-failed")
    assert loads.failed == []
    assert console_errors(watch, allowed_status=401) == []


def test_sign_up_works_without_javascript(nojs: BrowserContext, server: Gatepass) -> None:
    page = nojs.new_page()
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    visit(page, f"{server.url}/login")
    page.click("text=Create an account")
    page.wait_for_url(f"{server.url}/register")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "short")
    # The browser's own check (minlength) stops this one before it is sent.
    page.click("form[action='/register'] button[type=submit]")
    assert page.url == f"{server.url}/register"
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/register'] button[type=submit]")
    page.wait_for_url(f"{server.url}/account")
    assert email in page.inner_text("main")
    assert server.me(_cookie(nojs, server)).json()["email"] == email


def test_register_page_and_its_errors(
    context: BrowserContext, server: Gatepass, watch: Watch, loads: Loads
) -> None:
    page = context.new_page()
    page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
    visit(page, f"{server.url}/register")
    assert page.title() == "Create an account · gatepass"
    shoot(page, "register")
    page.fill("input[name=email]", EMAIL)  # taken
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/register'] button[type=submit]")
    page.get_by_role("alert").wait_for()
    assert "already exists" in page.get_by_role("alert").inner_text()
    assert loads.failed == []
    assert console_errors(watch, allowed_status=409) == []


def test_account_page_devices_and_buttons_without_javascript(
    nojs: BrowserContext, server: Gatepass, watch: Watch
) -> None:
    email = server.register()
    phone = server.request(
        "POST", "/auth/login", json={"email": email, "password": PASSWORD},
        headers={"user-agent": CHROME_ON_PHONE},
    )  # fmt: skip
    assert phone.status_code == 200
    laptop = server.login(email)  # python-httpx

    page = nojs.new_page()
    visit(page, f"{server.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{server.url}/account")

    rows = page.locator("ul.rows li")
    assert rows.count() == 3
    first = rows.first.inner_text()
    assert "Headless Chrome on Linux" in first and "This device" in first
    assert "Last active now" in first and "Signed in" in first
    texts = page.inner_text("main")
    assert "Safari on iPhone" in texts and "Python (httpx)" in texts
    assert "Mozilla/5.0" not in texts
    labels = page.locator("button").all_inner_texts()
    assert labels.count("Sign out") == 1
    assert labels.count("Sign out of this device") == 2
    assert labels.count("Sign out everywhere else") == 1
    shoot(page, "account")

    # One device by its own button, then every other one; all as plain forms.
    rows.filter(has_text="Safari on iPhone").get_by_role("button").click()
    page.wait_for_url(f"{server.url}/account")
    assert rows.count() == 2
    page.get_by_role("button", name="Sign out everywhere else").click()
    page.wait_for_url(f"{server.url}/account")
    assert rows.count() == 1
    assert server.me(laptop).status_code == 401
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(f"{server.url}/login")
    assert [m for m in watch.console if m.startswith("error")] == []


def test_html_404_page(
    context: BrowserContext, server: Gatepass, watch: Watch, loads: Loads
) -> None:
    page = context.new_page()
    page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
    response = visit(page, f"{server.url}/no/such/page")
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert page.title() == "Page not found · gatepass"
    shoot(page, "not-found")
    assert loads.failed == []
    # fetch() asks for anything: it still gets the JSON error.
    status, body = page.evaluate(
        "fetch('/no/such/page').then(async r => [r.status, await r.json()])"
    )
    assert (status, body["error"]) == (404, "not_found")
    assert console_errors(watch, allowed_status=404) == []


def test_unreachable_provider_is_not_offered_and_fails_as_a_page(
    context: BrowserContext, watch: Watch, loads: Loads, tmp_path_factory: pytest.TempPathFactory
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    tmp = tmp_path_factory.mktemp("dead-provider")
    with gatepass(
        tmp, free_port(),
        GATEPASS_OAUTH_PROVIDERS="corp", GATEPASS_OAUTH_CORP_ISSUER=dead,
        GATEPASS_OAUTH_CORP_CLIENT_ID="corp", GATEPASS_OAUTH_CORP_TITLE="Corp SSO",
    ) as served:  # fmt: skip
        page = context.new_page()
        page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
        visit(page, f"{served.url}/login")
        assert "Corp SSO" not in page.content()
        response = visit(page, f"{served.url}/auth/oauth/corp/start?next=/account")
        assert response.status == 503
        assert page.title() == "Sign-in failed · gatepass"
        text = page.inner_text("main")
        assert "Sign-in with Corp SSO is unavailable right now" in text
        assert "{" not in text  # not raw JSON
        shoot(page, "provider-unavailable")
    assert loads.failed == []
    assert console_errors(watch, allowed_status=503) == []


def _cookie(context: BrowserContext, server: Gatepass) -> str:
    [value] = [c["value"] for c in context.cookies(server.url) if c["name"] == "__Host-gatepass"]
    return value


def test_screenshots_are_small_pngs() -> None:
    from tests.browser.screens import SCREENSHOTS

    shots = sorted(SCREENSHOTS.glob("*.png"))
    if not shots:
        pytest.skip("no screenshots yet (GATEPASS_UPDATE_SCREENSHOTS=1 makes them)")
    for shot in shots:
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) < 400_000, shot.name
        assert re.fullmatch(r"[a-z-]+\.png", shot.name)
