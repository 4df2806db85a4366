"""The account lifecycle in real Chromium, through the mail a real SMTP server
(aiosmtpd on loopback) receives: confirm the email, change the password on
/account, forget it and reset it.  Forms are used with JavaScript switched
off; every page is also opened with JavaScript on to check that it renders
with no console error, no failed load and no CSP violation.  Screenshots go
to docs/screenshots (see screens.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller

from tests.browser.conftest import Watch
from tests.browser.screens import VIEWPORT, shoot
from tests.browser.test_pages import Loads, console_errors, visit
from tests.conftest import free_port, remember_secret
from tests.mail.conftest import Inbox
from tests.oauth.conftest import Gatepass, gatepass

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase 42"
NEWEST_PASSWORD = "and yet another passphrase 7"


class Mailbox(Inbox):
    port: int = 0


@pytest.fixture(scope="module")
def inbox() -> Iterator[Mailbox]:
    handler = Mailbox()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, inbox: Mailbox) -> Iterator[Gatepass]:
    tmp = tmp_path_factory.mktemp("account-pages")
    port = inbox.port
    with gatepass(
        tmp, free_port(), GATEPASS_SMTP_URL=f"smtp://127.0.0.1:{port}",
        GATEPASS_MAIL_FROM="Acme Login <login@acme.example>", GATEPASS_REGISTRATION_LIMIT="0",
    ) as served:  # fmt: skip
        yield served
    # The links' tokens reached the server as URLs and form fields: none may
    # be in its log (the access-log filter drops the query of link pages).
    log = served.log_text()
    assert "/password/reset?" in log and "token=" not in log


def wait_for_mail(page: Page, inbox: Inbox, to: str, subject: str) -> EmailMessage:
    for _ in range(100):
        found = [m for m in inbox.messages
                 if m["To"] == to and subject in str(m["Subject"]).lower()]  # fmt: skip
        if found:
            return found[-1]
        page.wait_for_timeout(100)
    raise AssertionError(f"no {subject!r} mail for {to}")


def link_in(message: EmailMessage, path: str) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    [link] = [u for u in re.findall(r"https?://\S+", body.get_content())
              if urlsplit(u).path == path]  # fmt: skip
    remember_secret(parse_qs(urlsplit(link).query)["token"][0])
    return link


@pytest.fixture
def nojs(chromium: Browser, watch: Watch) -> Iterator[BrowserContext]:
    ctx = chromium.new_context(java_script_enabled=False, viewport=VIEWPORT)  # type: ignore[arg-type]
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


def check_renders(context: BrowserContext, url: str, watch: Watch, loads: Loads) -> None:
    """Open ``url`` with JavaScript on: 200, no console error, nothing failed."""
    page = context.new_page()
    assert visit(page, url).status == 200
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(244, 245, 247)"
    assert loads.failed == []
    assert console_errors(watch) == []
    page.close()


def test_the_whole_lifecycle_in_chromium(
    nojs: BrowserContext, context: BrowserContext, site: Gatepass, inbox: Inbox, watch: Watch,
) -> None:  # fmt: skip
    loads = Loads()
    context.on("response", loads.on_response)
    url = site.url
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    page = nojs.new_page()

    # Sign up; the confirmation mail arrives.
    visit(page, f"{url}/register")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/register'] button[type=submit]")
    page.wait_for_url(f"{url}/account")
    assert page.get_by_role("button", name="Mail me a new link").is_visible()
    shoot(page, "account-unverified")
    verify_link = link_in(wait_for_mail(page, inbox, email, "confirm"), "/email/verify")
    assert verify_link.startswith(url + "/email/verify?token=")

    # The link opens a page with a button; the button confirms.
    assert visit(page, verify_link).status == 200
    shoot(page, "email-verify")
    check_renders(context, verify_link, watch, loads)
    page.click("form[action='/email/verify'] button[type=submit]")
    page.get_by_text("your email address is confirmed").wait_for()
    shoot(page, "email-verified")

    # Change the password on /account.
    visit(page, f"{url}/account")
    assert page.locator("main .badge", has_text="Verified").is_visible()
    page.fill("input[name=current_password]", PASSWORD)
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.click("form[action='/account/password'] button[type=submit]")
    page.get_by_role("status").wait_for()
    assert "password is changed" in page.get_by_role("status").inner_text()
    shoot(page, "account-password-changed")
    wait_for_mail(page, inbox, email, "password was changed")

    # Signed out, then "Forgot password?" from the sign-in page.
    page.click("header form[action='/logout'] button")
    page.wait_for_url(f"{url}/login")
    page.click("text=Forgot password?")
    page.wait_for_url(f"{url}/password/forgot")
    shoot(page, "password-forgot")
    check_renders(context, f"{url}/password/forgot", watch, loads)
    page.fill("input[name=email]", email)
    page.click("form[action='/password/forgot'] button[type=submit]")
    page.get_by_text("a link to choose a new password is on its way").wait_for()
    shoot(page, "password-forgot-sent")

    reset_link = link_in(wait_for_mail(page, inbox, email, "reset"), "/password/reset")
    assert visit(page, reset_link).status == 200
    shoot(page, "password-reset")
    check_renders(context, reset_link, watch, loads)
    page.fill("input[name=password]", NEWEST_PASSWORD)
    page.click("form[action='/password/reset'] button[type=submit]")
    page.get_by_text("Your new password is set").wait_for()
    shoot(page, "password-reset-done")

    # The link is spent; the new password signs in.
    assert visit(page, reset_link).status == 200
    page.fill("input[name=password]", "yet one more passphrase 9")
    page.click("form[action='/password/reset'] button[type=submit]")
    page.get_by_text("invalid or has expired").wait_for()
    visit(page, f"{url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", NEWEST_PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{url}/account")
    check_renders(context, f"{url}/login", watch, loads)


def test_email_change_in_chromium(
    nojs: BrowserContext, context: BrowserContext, site: Gatepass, inbox: Inbox, watch: Watch,
) -> None:  # fmt: skip
    """The /account form (no JavaScript), the mail to the new address, the
    confirm page and its button; the notice reaches the old address."""
    loads = Loads()
    context.on("response", loads.on_response)
    url = site.url
    old = f"old-{uuid.uuid4().hex[:8]}@example.com"
    new = f"new-{uuid.uuid4().hex[:8]}@example.org"
    page = nojs.new_page()
    visit(page, f"{url}/register")
    page.fill("input[name=email]", old)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/register'] button[type=submit]")
    page.wait_for_url(f"{url}/account")

    form = page.locator("form[action='/account/email']")
    form.locator("input[name=new_email]").fill(new)
    form.locator("input[name=password]").fill(PASSWORD)
    shoot(page, "account-email-change")
    form.locator("button[type=submit]").click()
    page.get_by_role("status").wait_for()
    assert f"We mailed a link to {new}" in page.get_by_role("status").inner_text()
    check_renders(context, f"{url}/account", watch, loads)  # a fresh context: signed out
    notice = wait_for_mail(page, inbox, old, "about to change")
    assert "token=" not in notice.as_string()

    link = link_in(wait_for_mail(page, inbox, new, "confirm your new email"), "/email/change")
    assert link.startswith(url + "/email/change?token=")
    assert visit(page, link).status == 200
    shoot(page, "email-change")
    check_renders(context, link, watch, loads)
    page.click("form[action='/email/change'] button[type=submit]")
    page.get_by_text(f"email address is now {new}").wait_for()
    shoot(page, "email-changed")
    visit(page, f"{url}/account")
    assert page.locator("main strong", has_text=new).first.is_visible()
    assert page.locator("main .badge", has_text="Verified").is_visible()
