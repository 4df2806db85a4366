"""The account lifecycle pages, in-process, as a browser without JavaScript
uses them: plain form posts with the CSRF token, the mail read from the
outbox (no SMTP configured), links followed."""

from __future__ import annotations

import email
import email.policy
import logging
import re
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.testclient import TestClient

from gatepass.integration import Gatepass
from gatepass.mail import Outbox
from gatepass.server.oauth_routes import ACCESS_LOG_FILTER
from tests.server.conftest import PASSWORD, login, make_client, register, status_as

HTML = {"accept": "text/html"}
NEW_PASSWORD = "a brand new passphrase 42"


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def post_form(
    client: TestClient, path: str, page: str, **fields: str
) -> httpx.Response:
    token = csrf_of(page)
    return client.post(
        path, data={**fields, "csrf_token": token},
        headers={**HTML, "x-csrf-token": token}, follow_redirects=False,
    )  # fmt: skip


def outbox_mails(client: TestClient, tmp_path: Path) -> list[EmailMessage]:
    server = client.app.state.gatepass  # type: ignore[attr-defined]
    assert isinstance(server, Gatepass) and server.components is not None
    client.portal.call(server.components.mailer.wait_idle)
    found = []
    for path in Outbox(tmp_path / "data" / "outbox").list():
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        found.append(msg)
    return found


def open_link(client: TestClient, link: str) -> httpx.Response:
    """GET a mailed link as a browser would.  The test's own HTTP client logs
    every URL it requests at INFO (as a browser keeps history); that log is
    the client's, not the server's, so it is quieted for this one request and
    the secret guard keeps watching the server's."""
    target = urlsplit(link)
    quiet = logging.getLogger("httpx")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        return client.get(f"{target.path}?{target.query}", headers=HTML)
    finally:
        quiet.setLevel(level)


def link_of(message: EmailMessage, path: str) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    [link] = [u for u in re.findall(r"https?://\S+", body.get_content())
              if urlsplit(u).path == path]  # fmt: skip
    return link


def test_sign_in_page_links_to_forgot(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        page = client.get("/login", headers=HTML).text
        assert 'href="/password/forgot"' in page


def test_forgot_and_reset_through_the_pages(tmp_path: Path) -> None:
    with make_client(tmp_path, public_url="https://id.example.com") as client:
        register(client)
        other = login(client)
        client.cookies = httpx.Cookies()
        page = client.get("/password/forgot", headers=HTML)
        assert page.status_code == 200 and 'action="/password/forgot"' in page.text
        r = post_form(client, "/password/forgot", page.text, email="ada@example.com")
        assert r.status_code == 200 and "Check your mail" in r.text
        # The same page for an address without an account.
        unknown = post_form(client, "/password/forgot", page.text, email="nobody@example.com")
        assert unknown.text.replace("nobody@example.com", "ada@example.com") == r.text
        [mail] = [m for m in outbox_mails(client, tmp_path) if "reset" in str(m["Subject"]).lower()]
        link = link_of(mail, "/password/reset")
        assert link.startswith("https://id.example.com/password/reset?token=")

        # Follow the link: a form, and opening it spends nothing.
        target = urlsplit(link)
        reset_page = open_link(client, link)
        assert reset_page.status_code == 200
        assert reset_page.headers["referrer-policy"] == "no-referrer"
        assert "no-store" in reset_page.headers["cache-control"]
        token = parse_qs(target.query)["token"][0]
        # A weak password: the form again, the link still good.
        r = post_form(client, "/password/reset", reset_page.text, token=token, password="short")
        assert r.status_code == 400 and f'value="{token}"' in r.text
        r = post_form(client, "/password/reset", reset_page.text, token=token,
                      password=NEW_PASSWORD)  # fmt: skip
        assert r.status_code == 200 and "Password changed" in r.text
        assert status_as(client, "GET", "/auth/me", other) == 401
        again = post_form(client, "/password/reset", reset_page.text, token=token,
                          password=NEW_PASSWORD)  # fmt: skip
        assert again.status_code == 400 and "invalid or has expired" in again.text
        login(client, password=NEW_PASSWORD)


def test_verify_page_get_changes_nothing_and_the_button_verifies(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        register(client)
        [mail] = outbox_mails(client, tmp_path)
        link = link_of(mail, "/email/verify")
        target = urlsplit(link)
        page = open_link(client, link)
        assert page.status_code == 200 and 'action="/email/verify"' in page.text
        open_link(client, link)  # twice: still nothing
        login(client)
        assert client.get("/auth/me").json()["email_verified"] is False
        page = open_link(client, link)  # signed in now
        token = parse_qs(target.query)["token"][0]
        r = post_form(client, "/email/verify", page.text, token=token)
        assert r.status_code == 200 and "Email confirmed" in r.text
        assert client.get("/auth/me").json()["email_verified"] is True
        r = post_form(client, "/email/verify", page.text, token=token)
        assert r.status_code == 400


def test_change_password_on_the_account_page(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        register(client)
        other = login(client)
        client.cookies = httpx.Cookies()
        mine = login(client)
        page = client.get("/account", headers=HTML)
        assert 'action="/account/password"' in page.text
        r = post_form(client, "/account/password", page.text,
                      current_password="not my password", new_password=NEW_PASSWORD)  # fmt: skip
        assert r.status_code == 401 and "current password is not right" in r.text
        r = post_form(client, "/account/password", page.text,
                      current_password=PASSWORD, new_password=NEW_PASSWORD)  # fmt: skip
        assert r.status_code == 200 and "password is changed" in r.text
        assert client.cookies["__Host-gatepass"] != mine
        assert client.get("/auth/me").status_code == 200
        assert status_as(client, "GET", "/auth/me", mine) == 401
        assert status_as(client, "GET", "/auth/me", other) == 401
        # Without the CSRF token: refused, nothing changed.
        r = client.post("/account/password", data={
            "current_password": NEW_PASSWORD, "new_password": "third password 12345"},
            headers={"origin": "https://evil.example"}, follow_redirects=False)  # fmt: skip
        assert r.status_code == 403


def test_account_offers_resend_until_verified(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        register(client)
        login(client)
        page = client.get("/account", headers=HTML)
        assert 'action="/account/email/resend"' in page.text
        r = post_form(client, "/account/email/resend", page.text)
        assert r.status_code == 200 and "new link is on its way" in r.text
        assert len(outbox_mails(client, tmp_path)) == 2


def test_required_verification_on_the_sign_in_page(tmp_path: Path) -> None:
    with make_client(tmp_path, email_verification="required") as client:
        page = client.get("/register", headers=HTML)
        r = post_form(client, "/register", page.text, email="ada@example.com", password=PASSWORD)
        assert r.status_code == 200 and "Check your mail" in r.text
        assert "__Host-gatepass" not in client.cookies
        page = client.get("/login", headers=HTML)
        r = post_form(client, "/login", page.text, email="ada@example.com", password=PASSWORD)
        assert r.status_code == 403 and "Confirm your email address" in r.text
        assert "__Host-gatepass" not in client.cookies


def test_access_log_drops_the_token_of_link_pages() -> None:
    for path in ("/password/reset?token=SECRET", "/email/verify?token=SECRET",
                 "/email/change?token=SECRET", "/auth/oauth/x/callback?code=SECRET"):  # fmt: skip
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", path, "1.1", 200), None,
        )  # fmt: skip
        assert ACCESS_LOG_FILTER.filter(record)
        assert "SECRET" not in record.getMessage()
    kept = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/login?next=/account", "1.1", 200), None,
    )  # fmt: skip
    ACCESS_LOG_FILTER.filter(kept)
    assert "/login?next=/account" in kept.getMessage()
