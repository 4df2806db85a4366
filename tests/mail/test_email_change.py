"""Email change with re-verification (SECURITY 42), through the mail a user
receives from a real SMTP server (aiosmtpd on loopback), by the JSON API and
by the /account form and the /email/change page.

What is attacked: a wrong or missing password, a missing CSRF token, asking
for an address another account has (no enumeration), two accounts racing
for one address, stale and reused links, a reset link left in the old
mailbox, logins that should end.
"""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import free_port  # noqa: F401  (the smtp fixtures need it)
from tests.mail.test_account_flows import (
    NEW_PASSWORD,
    PUBLIC,
    forgot,
    mails_to,
    parts_of,
    settle,
    text_of,
    token_in,
)
from tests.server.conftest import (
    PASSWORD,
    login,
    login_elsewhere,
    make_client,
    register,
    status_as,
)

ADA, NEW = "ada@example.com", "ada.new@example.org"


@pytest.fixture
def smtp(smtp_server: Any) -> Any:
    return smtp_server()


@pytest.fixture
def client(tmp_path: Path, smtp: Any) -> Any:
    with make_client(
        tmp_path, public_url=PUBLIC, smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="Acme Login <login@acme.example>",
    ) as c:  # fmt: skip
        yield c


def ask(client: TestClient, new_email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/auth/email/change", json={"new_email": new_email, "password": password})


def confirm(client: TestClient, token: object) -> httpx.Response:
    """Opened elsewhere (the link is in another mailbox): no cookies."""
    saved = client.cookies
    client.cookies = httpx.Cookies()
    try:
        return client.post("/auth/email/change/confirm", json={"token": token})
    finally:
        client.cookies = saved


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    content: str = part.get_content()
    return content


def change_mail(smtp: Any, to: str) -> EmailMessage:
    [mail] = mails_to(smtp.handler, to, "confirm your new email")
    return mail


def assert_no_link_token(mail: EmailMessage) -> None:
    for body in (text_of(mail), html_of(mail)):
        assert "token=" not in body
        assert "/email/change" not in body


def test_email_change_through_the_mail(client: TestClient, smtp: Any) -> None:
    register(client)
    other = login_elsewhere(client)
    pair = client.post("/auth/token", json={"email": ADA, "password": PASSWORD}).json()
    login(client)
    settle(client)
    before = len(smtp.handler.messages)  # the registration's verification mail

    # A wrong password changes and mails nothing.
    r = ask(client, NEW, "wrong password here")
    assert (r.status_code, r.json()["error"]) == (401, "invalid_credentials")
    settle(client)
    assert len(smtp.handler.messages) == before

    r = ask(client, NEW)
    assert (r.status_code, r.json()) == (202, {})
    assert r.headers["cache-control"] == "no-store"
    settle(client)
    mail = change_mail(smtp, NEW)
    assert "48 hours" in text_of(mail)
    token = token_in(mail, "/email/change")
    # The old address hears of it, with nothing in the mail that acts on it.
    [notice] = mails_to(smtp.handler, ADA, "about to change")
    assert NEW in text_of(notice) and "administrator" in text_of(notice)
    assert_no_link_token(notice)

    # Nothing has changed yet.
    assert client.get("/auth/me").json()["email"] == ADA
    r = client.post("/auth/login", json={"email": NEW, "password": PASSWORD})
    assert r.status_code == 401

    r = confirm(client, token)
    assert r.status_code == 204, r.text
    me = client.get("/auth/me").json()  # the login that asked stays
    assert (me["email"], me["email_verified"]) == (NEW, True)
    # Every other login is over, of every kind.
    assert status_as(client, "GET", "/auth/me", other) == 401
    bearer = {"authorization": f"Bearer {pair['access_token']}"}
    assert client.get("/auth/me", headers=bearer).status_code == 401
    r = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert (r.status_code, r.json()["error"]) == (401, "invalid_grant")
    # The account answers to the new address only.
    client.cookies = httpx.Cookies()
    assert client.post("/auth/login", json={"email": ADA, "password": PASSWORD}).status_code == 401
    login(client, NEW)
    # Single use.
    r = confirm(client, token)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")


def test_a_reset_link_left_in_the_old_mailbox_dies_with_the_change(
    client: TestClient, smtp: Any
) -> None:
    register(client)
    forgot(client, ADA)
    login(client)
    ask(client, NEW)
    settle(client)
    [reset_mail] = mails_to(smtp.handler, ADA, "reset")
    old_reset = token_in(reset_mail, "/password/reset")
    [verify_mail] = mails_to(smtp.handler, ADA, "confirm your email")
    old_verify = token_in(verify_mail, "/email/verify")
    assert confirm(client, token_in(change_mail(smtp, NEW), "/email/change")).status_code == 204
    r = client.post("/auth/password/reset", json={"token": old_reset, "password": NEW_PASSWORD})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    r = client.post("/auth/email/verify", json={"token": old_verify})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    login(client, NEW)  # the password did not change


def test_asking_for_a_taken_address_tells_the_asker_nothing(client: TestClient, smtp: Any) -> None:
    register(client, "bob@example.com")
    register(client)
    login(client)
    free = ask(client, "free@example.com")
    taken = ask(client, "Bob@Example.com")
    assert (free.status_code, free.content) == (taken.status_code, taken.content) == (202, b"{}")
    assert sorted(free.headers.keys()) == sorted(taken.headers.keys())
    settle(client)
    # Bob's mailbox learns why, and gets no link that could move anything.
    [mail] = mails_to(smtp.handler, "bob@example.com", "about your")
    assert "already has an account" in text_of(mail)
    assert_no_link_token(mail)
    assert mails_to(smtp.handler, "bob@example.com", "confirm your new email") == []
    # Both requests were noticed at the old address.
    assert len(mails_to(smtp.handler, ADA, "about to change")) == 2
    assert client.get("/auth/me").json()["email"] == ADA


def test_two_accounts_confirming_one_address_one_wins_the_other_gets_409(
    client: TestClient, smtp: Any
) -> None:
    register(client, "bob@example.com")
    register(client)
    login(client)
    ask(client, "carol@example.com")
    login(client, "bob@example.com")
    ask(client, "carol@example.com")
    settle(client)
    ada_link, bob_link = (
        token_in(m, "/email/change")
        for m in mails_to(smtp.handler, "carol@example.com", "confirm your new email")
    )
    assert confirm(client, ada_link).status_code == 204
    r = confirm(client, bob_link)
    assert (r.status_code, r.json()["error"]) == (409, "email_taken")
    me = client.get("/auth/me").json()
    assert (me["email"], me["email_verified"]) == ("bob@example.com", False)


def test_a_newer_request_voids_the_older_link(client: TestClient, smtp: Any) -> None:
    register(client)
    login(client)
    ask(client, "first@example.com")
    ask(client, "second@example.com")
    settle(client)
    first = token_in(change_mail(smtp, "first@example.com"), "/email/change")
    second = token_in(change_mail(smtp, "second@example.com"), "/email/change")
    r = confirm(client, first)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    assert confirm(client, second).status_code == 204
    assert client.get("/auth/me").json()["email"] == "second@example.com"


def test_a_link_for_an_address_the_account_no_longer_has_is_refused(
    client: TestClient, smtp: Any
) -> None:
    """A link carries the address it moves the account from: once the
    account moved by another way (an admin, say), the link is dead."""
    register(client)
    login(client)
    ask(client, NEW)
    settle(client)
    token = token_in(change_mail(smtp, NEW), "/email/change")
    parts = parts_of(client)
    user = client.portal.call(parts.accounts.users.get_by_email, ADA)
    assert user is not None
    moved = client.portal.call(
        lambda: parts.accounts.users.set_email(user.id, "admin-set@example.com", expected=ADA)
    )
    assert moved
    r = confirm(client, token)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    assert client.get("/auth/me").json()["email"] == "admin-set@example.com"


@pytest.mark.parametrize("bad", [None, "", "x", 12, ["a"], "A" * 43, "A" * 5000])
def test_bad_confirm_tokens_are_400_invalid_token(client: TestClient, bad: object) -> None:
    r = confirm(client, bad)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")


def test_a_change_link_is_not_a_verification_link_and_back(client: TestClient, smtp: Any) -> None:
    register(client)
    login(client)
    ask(client, NEW)
    settle(client)
    change = token_in(change_mail(smtp, NEW), "/email/change")
    [verify_mail] = mails_to(smtp.handler, ADA, "confirm your email")
    verify = token_in(verify_mail, "/email/verify")
    r = client.post("/auth/email/verify", json={"token": change})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    r = confirm(client, verify)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    assert client.get("/auth/me").json()["email"] == ADA


def test_asking_needs_a_login_the_csrf_token_and_good_input(client: TestClient, smtp: Any) -> None:
    assert ask(client, NEW).status_code == 401
    register(client)
    login(client)
    plain = TestClient(client.app, base_url="https://testserver")
    plain.cookies = client.cookies
    r = plain.post(
        "/auth/email/change", json={"new_email": NEW, "password": PASSWORD},
        headers={"origin": "https://evil.example"},
    )  # fmt: skip
    assert r.status_code == 403
    for body in (
        {"new_email": "not an address", "password": PASSWORD},
        {"new_email": ADA, "password": PASSWORD},  # already the address
        {"new_email": NEW},
        {"password": PASSWORD},
        {"new_email": "x" * 2000 + "@example.com", "password": PASSWORD},
    ):
        r = client.post("/auth/email/change", json=body)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_request"), body
    settle(client)
    assert mails_to(smtp.handler, NEW, "") == []
    assert mails_to(smtp.handler, ADA, "about to change") == []


def test_asking_is_throttled_per_new_address(tmp_path: Path, smtp_server: Any) -> None:
    smtp = smtp_server()
    with make_client(
        tmp_path, public_url=PUBLIC, smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="login@acme.example",
    ) as client:  # fmt: skip
        register(client)
        login(client)
        for _ in range(5):
            assert ask(client, "victim@example.com").status_code == 202
        r = ask(client, "victim@example.com")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        settle(client)
        assert len(mails_to(smtp.handler, "victim@example.com", "")) == 5


# -- the pages ----------------------------------------------------------------------


def open_link(client: TestClient, token: str) -> httpx.Response:
    """GET the link page; the test client's own request log (not the
    server's) would print the token, so it is quiet for this one request."""
    quiet = logging.getLogger("httpx")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        return client.get(f"/email/change?token={token}")
    finally:
        quiet.setLevel(level)


def form_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_the_account_form_and_the_confirm_page(client: TestClient, smtp: Any) -> None:
    register(client)
    login(client)
    page = client.get("/account")
    assert page.status_code == 200
    assert 'action="/account/email"' in page.text and 'name="new_email"' in page.text
    csrf = form_token(page.text)
    wrong = client.post("/account/email", data={"csrf_token": csrf, "new_email": NEW,
                                                "password": "wrong password 12"})  # fmt: skip
    assert wrong.status_code == 401 and "password is not right" in wrong.text
    r = client.post(
        "/account/email", data={"csrf_token": csrf, "new_email": NEW, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    assert f"We mailed a link to {NEW}" in r.text
    settle(client)
    token = token_in(change_mail(smtp, NEW), "/email/change")

    # Opening the link spends nothing; its button does.
    client.cookies = httpx.Cookies()
    shown = open_link(client, token)
    assert shown.status_code == 200
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert f'value="{token}"' in shown.text
    shown_again = open_link(client, token)
    done = client.post(
        "/email/change", data={"csrf_token": form_token(shown_again.text), "token": token}
    )
    assert done.status_code == 200, done.text
    assert "Email address changed" in done.text and NEW in done.text
    again = client.post(
        "/email/change", data={"csrf_token": form_token(shown_again.text), "token": token}
    )
    assert again.status_code == 400 and "invalid or has expired" in again.text
    login(client, NEW)


def test_the_confirm_page_says_when_the_address_was_taken(client: TestClient, smtp: Any) -> None:
    register(client)
    login(client)
    ask(client, "carol@example.com")
    settle(client)
    token = token_in(change_mail(smtp, "carol@example.com"), "/email/change")
    client.cookies = httpx.Cookies()
    register(client, "carol@example.com")
    shown = open_link(client, token)
    r = client.post("/email/change", data={"csrf_token": form_token(shown.text), "token": token})
    assert r.status_code == 409
    assert "That address is taken" in r.text


def test_an_api_client_asks_keeps_its_login_and_its_claim_turns_verified(
    client: TestClient, smtp: Any
) -> None:
    """Bearer: the asking token family stays (the others end), and its
    email_verified claim turns true at its next refresh."""
    register(client)
    creds = {"email": ADA, "password": PASSWORD}
    other = client.post("/auth/token", json=creds).json()
    pair = client.post("/auth/token", json=creds).json()
    codec = parts_of(client).tokens.codec
    assert codec.verify(pair["access_token"]).raw["email_verified"] is False
    client.cookies = httpx.Cookies()
    r = client.post(
        "/auth/email/change", json={"new_email": NEW, "password": PASSWORD},
        headers={"authorization": f"Bearer {pair['access_token']}"},
    )  # fmt: skip
    assert r.status_code == 202, r.text
    settle(client)
    assert confirm(client, token_in(change_mail(smtp, NEW), "/email/change")).status_code == 204
    fresh = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert fresh.status_code == 200, fresh.text
    assert codec.verify(fresh.json()["access_token"]).raw["email_verified"] is True
    r = client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert (r.status_code, r.json()["error"]) == (401, "invalid_grant")


def test_browser_jwt_mode_keeps_the_asking_login(tmp_path: Path, smtp_server: Any) -> None:
    smtp = smtp_server()
    with make_client(
        tmp_path, public_url=PUBLIC, smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="login@acme.example", browser_mode="jwt",
    ) as client:  # fmt: skip
        register(client)
        other = client.post("/auth/token", json={"email": ADA, "password": PASSWORD}).json()
        r = client.post("/auth/login", json={"email": ADA, "password": PASSWORD})
        assert r.status_code == 200
        assert ask(client, NEW).status_code == 202
        settle(client)
        assert confirm(client, token_in(change_mail(smtp, NEW), "/email/change")).status_code == 204
        assert client.get("/auth/me").json()["email"] == NEW
        assert [s["kind"] for s in client.get("/auth/sessions").json()] == ["browser"]
        bearer = {"authorization": f"Bearer {other['access_token']}"}
        assert client.get("/auth/me", headers=bearer).status_code == 401
