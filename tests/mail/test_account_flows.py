"""Account lifecycle end to end, through the mail a user receives from a real
SMTP server (aiosmtpd on loopback): forgot/reset, change, verification.

SECURITY 40-42: no enumeration, single use, expiry, every login ended on
reset, links only on GATEPASS_PUBLIC_URL.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from gatepass.integration import Gatepass
from gatepass.mail import Outbox
from gatepass.server.components import Components
from tests.conftest import free_port
from tests.server.conftest import PASSWORD, login, make_client, register, status_as

PUBLIC = "https://id.example.com"
NEW_PASSWORD = "a brand new passphrase 42"


def parts_of(client: TestClient) -> Components:
    server = client.app.state.gatepass  # type: ignore[attr-defined]
    assert isinstance(server, Gatepass) and server.components is not None
    return server.components


def settle(client: TestClient) -> None:
    """Until every queued mail has been delivered (or kept)."""
    client.portal.call(parts_of(client).mailer.wait_idle)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()
    return content


def link_in(message: EmailMessage, path: str) -> str:
    """The one link to ``path`` in the plain-text part, as a user would click it."""
    links = re.findall(r"https?://\S+", text_of(message))
    [link] = [u for u in links if urlsplit(u).path == path]
    return link


def token_in(message: EmailMessage, path: str) -> str:
    link = link_in(message, path)
    assert link.startswith(PUBLIC + path + "?token=")
    [token] = parse_qs(urlsplit(link).query)["token"]
    return token


def mails_to(inbox: Any, address: str, kind_subject: str) -> list[EmailMessage]:
    return [
        m for m in inbox.messages
        if m["To"] == address and kind_subject.lower() in str(m["Subject"]).lower()
    ]  # fmt: skip


@pytest.fixture
def smtp(smtp_server: Any) -> Any:
    return smtp_server()


@pytest.fixture
def client(tmp_path: Path, smtp: Any) -> Any:
    with make_client(
        tmp_path,
        public_url=PUBLIC,
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="Acme Login <login@acme.example>",
    ) as c:
        yield c


def forgot(client: TestClient, email: str, **headers: str) -> httpx.Response:
    return client.post("/auth/password/forgot", json={"email": email}, headers=headers)


def test_reset_through_the_mail_ends_every_login(client: TestClient, smtp: Any) -> None:
    register(client)
    session = login(client)
    # An API client and a second browser, too.
    api = client.post("/auth/token", json={"email": "ada@example.com", "password": PASSWORD})
    pair = api.json()
    client.cookies = httpx.Cookies()

    r = forgot(client, "ada@example.com")
    assert (r.status_code, r.json()) == (202, {})
    settle(client)
    [mail] = mails_to(smtp.handler, "ada@example.com", "reset")
    assert mail.get_body(preferencelist=("html",)) is not None  # text and HTML
    token = token_in(mail, "/password/reset")

    r = client.post("/auth/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 204, r.text

    # Every login of every kind is over.
    assert status_as(client, "GET", "/auth/me", session) == 401
    bearer = {"authorization": f"Bearer {pair['access_token']}"}
    assert client.get("/auth/me", headers=bearer).status_code == 401
    r = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert (r.status_code, r.json()["error"]) == (401, "invalid_grant")
    # The old password is gone, the new one works.
    r = client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert r.status_code == 401
    login(client, password=NEW_PASSWORD)
    # Single use: the link is spent.
    client.cookies = httpx.Cookies()
    r = client.post("/auth/password/reset", json={"token": token, "password": "another pass 12345"})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    settle(client)
    # A notice went to the account's address.
    assert len(mails_to(smtp.handler, "ada@example.com", "password was changed")) == 1


def test_a_new_reset_voids_the_links_mailed_before(client: TestClient, smtp: Any) -> None:
    register(client)
    forgot(client, "ada@example.com")
    forgot(client, "ada@example.com")
    settle(client)
    first, second = (token_in(m, "/password/reset")
                     for m in mails_to(smtp.handler, "ada@example.com", "reset"))  # fmt: skip
    r = client.post("/auth/password/reset", json={"token": second, "password": NEW_PASSWORD})
    assert r.status_code == 204
    r = client.post("/auth/password/reset", json={"token": first, "password": "x" * 20})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")


def test_a_weak_password_does_not_spend_the_link(client: TestClient, smtp: Any) -> None:
    register(client)
    forgot(client, "ada@example.com")
    settle(client)
    [mail] = mails_to(smtp.handler, "ada@example.com", "reset")
    token = token_in(mail, "/password/reset")
    r = client.post("/auth/password/reset", json={"token": token, "password": "short"})
    assert r.status_code == 400 and r.json()["error"] == "weak_password"
    r = client.post("/auth/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 204


def test_reset_links_expire(client: TestClient, smtp: Any) -> None:
    class Clock:
        now = time.time()

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    parts = parts_of(client)
    parts.links = dataclasses.replace(parts.links, clock=clock)
    register(client)
    forgot(client, "ada@example.com")
    settle(client)
    [mail] = mails_to(smtp.handler, "ada@example.com", "reset")
    assert "30 minutes" in text_of(mail)
    token = token_in(mail, "/password/reset")
    clock.now += 30 * 60  # the very second it expires
    r = client.post("/auth/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    login(client)  # the password did not change


@pytest.mark.parametrize(
    "bad",
    [None, "", "x", 12, ["a"], {"a": 1}, "A" * 43, "A" * 5000, "../../etc/passwd"],
)
def test_bad_tokens_are_400_invalid_token(client: TestClient, bad: object) -> None:
    r = client.post("/auth/password/reset", json={"token": bad, "password": NEW_PASSWORD})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    r = client.post("/auth/email/verify", json={"token": bad})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")


def _comparable(r: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    # Everything but the Date header, which only says when.
    headers = sorted((k, v) for k, v in r.headers.multi_items() if k.lower() != "date")
    return r.status_code, r.content, headers


def test_forgot_does_not_tell_known_from_unknown(client: TestClient, smtp: Any) -> None:
    register(client)
    client.cookies = httpx.Cookies()
    known = forgot(client, "ada@example.com")
    client.cookies = httpx.Cookies()
    unknown = forgot(client, "nobody@example.com")
    assert _comparable(known) == _comparable(unknown)
    client.cookies = httpx.Cookies()
    malformed = forgot(client, "not an email")
    assert _comparable(malformed) == _comparable(unknown)
    settle(client)
    # Mail goes only to the account's address.
    assert [m["To"] for m in smtp.handler.messages if "reset" in str(m["Subject"]).lower()] == [
        "ada@example.com"
    ]


def test_forgot_answers_alike_and_never_waits_on_smtp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SECURITY 40 without a stopwatch: a known and an unknown address get the
    same answer after the same store work, and the known one does not wait
    for the mail server (here one that accepts the connection and never
    greets, so a request that waited on it would hang)."""
    with socket.create_server(("127.0.0.1", 0)) as mute:
        port = mute.getsockname()[1]
        with make_client(
            tmp_path, public_url=PUBLIC, smtp_url=f"smtp://127.0.0.1:{port}",
            mail_from="login@acme.example",
        ) as client:  # fmt: skip
            register(client, "known@example.com")
            client.cookies = httpx.Cookies()
            parts = parts_of(client)
            parts.mailer.drain_timeout = 0.1  # nothing will ever drain
            calls: list[str] = []
            store = parts.links.store
            for name in ("put", "take", "drop_user"):
                method = getattr(store, name)

                def spy(*args: Any, _name: str = name, _method: Any = method, **kw: Any) -> Any:
                    calls.append(_name)
                    return _method(*args, **kw)

                monkeypatch.setattr(store, name, spy)

            answers, work = [], []
            queued = parts.mailer.in_flight
            for email in ("known@example.com", "unknown@example.com"):
                calls.clear()
                r = forgot(client, email)
                answers.append((r.status_code, r.content, r.headers.get("cache-control")))
                work.append(list(calls))
            assert answers[0] == answers[1] == (202, b"{}", "no-store")
            # One store round trip each: the known path stores its token,
            # the unknown one spends the same trip on a lookup that finds nothing.
            assert work == [["put"], ["take"]]
            assert parts.mailer.in_flight == queued + 1  # queued, not sent


def test_forgot_is_throttled_per_email_and_per_address(tmp_path: Path, smtp_server: Any) -> None:
    smtp = smtp_server()
    with make_client(
        tmp_path, public_url=PUBLIC, smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="login@acme.example", mail_limit=8, peer=("203.0.113.7", 50000),
    ) as client:  # fmt: skip
        for _ in range(5):
            assert forgot(client, "ada@example.com").status_code == 202
        r = forgot(client, "ada@example.com")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        # Other addresses still go, until the client's address is spent.
        for i in range(2):
            assert forgot(client, f"x{i}@example.com").status_code == 202
        assert forgot(client, "y@example.com").status_code == 429


def test_links_ignore_a_poisoned_host(client: TestClient, smtp: Any) -> None:
    register(client)
    r = forgot(
        client, "ada@example.com",
        host="evil.example", **{"x-forwarded-host": "evil.example", "forwarded": "host=evil"},
    )  # fmt: skip
    assert r.status_code == 202
    settle(client)
    for mail in smtp.handler.messages:
        body = mail.as_string()
        assert "evil" not in body
    [mail] = mails_to(smtp.handler, "ada@example.com", "reset")
    assert link_in(mail, "/password/reset").startswith(PUBLIC + "/password/reset?token=")


def test_smtp_down_answers_fast_and_keeps_the_mail(tmp_path: Path) -> None:
    dead = free_port()
    with make_client(
        tmp_path, public_url=PUBLIC, smtp_url=f"smtp://127.0.0.1:{dead}",
        mail_from="login@acme.example", mail_retry_delays=(30.0,),
    ) as client:  # fmt: skip
        register(client)
        assert forgot(client, "ada@example.com").status_code == 202
    # The server stopped before a retry could succeed: nothing lost.
    kept = Outbox(tmp_path / "data" / "outbox").list()
    reset = [p for p in kept if "password/reset?token=3D" in p.read_text()]
    assert len(reset) == 1 and reset[0].name.startswith("undelivered-")


# -- change ---------------------------------------------------------------------


def test_change_keeps_this_login_with_a_fresh_id_and_ends_the_others(
    client: TestClient, smtp: Any
) -> None:
    register(client)
    other = login_elsewhere_token(client)
    mine = login(client)
    r = client.post(
        "/auth/password/change",
        json={"current_password": "wrong password here", "new_password": NEW_PASSWORD},
    )
    assert (r.status_code, r.json()["error"]) == (401, "invalid_credentials")
    assert status_as(client, "GET", "/auth/me", other) == 200  # nothing changed

    r = client.post(
        "/auth/password/change",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 204, r.text
    fresh = client.cookies["__Host-gatepass"]
    assert fresh != mine
    assert client.get("/auth/me").status_code == 200
    assert status_as(client, "GET", "/auth/me", mine) == 401
    assert status_as(client, "GET", "/auth/me", other) == 401
    settle(client)
    assert len(mails_to(smtp.handler, "ada@example.com", "password was changed")) == 1


def test_change_needs_a_login_and_the_csrf_token(client: TestClient) -> None:
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post("/auth/password/change", json=body).status_code == 401
    register(client)
    login(client)
    plain = TestClient(client.app, base_url="https://testserver")
    plain.cookies = client.cookies
    r = plain.post("/auth/password/change", json=body, headers={"origin": "https://evil.example"})
    assert r.status_code == 403


def test_change_in_browser_jwt_mode_issues_a_new_family(tmp_path: Path) -> None:
    with make_client(tmp_path, browser_mode="jwt") as client:
        register(client)
        r = client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert r.status_code == 200
        before = client.get("/auth/sessions").json()
        r = client.post(
            "/auth/password/change",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert r.status_code == 204, r.text
        after = client.get("/auth/sessions").json()
        assert [s["kind"] for s in after] == ["browser"] and after[0]["current"]
        assert after[0]["id"] != before[0]["id"]


def login_elsewhere_token(client: TestClient) -> str:
    saved = client.cookies
    client.cookies = httpx.Cookies()
    try:
        return login(client)
    finally:
        client.cookies = saved


# -- verification -----------------------------------------------------------------


def test_verification_through_the_mail(client: TestClient, smtp: Any) -> None:
    register(client)
    login(client)
    assert client.get("/auth/me").json()["email_verified"] is False
    settle(client)
    [mail] = mails_to(smtp.handler, "ada@example.com", "confirm")
    assert "48 hours" in text_of(mail)
    token = token_in(mail, "/email/verify")
    r = client.post("/auth/email/verify", json={"token": token})
    assert r.status_code == 204, r.text
    assert client.get("/auth/me").json()["email_verified"] is True
    r = client.post("/auth/email/verify", json={"token": token})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_token")
    # Access tokens carry the claim.
    pair = client.post(
        "/auth/token", json={"email": "ada@example.com", "password": PASSWORD}
    ).json()
    claims = parts_of(client).tokens.codec.verify(pair["access_token"])
    assert claims.raw["email_verified"] is True


def test_resend_mails_a_fresh_link(client: TestClient, smtp: Any) -> None:
    assert client.post("/auth/email/resend").status_code == 401
    register(client)
    login(client)
    r = client.post("/auth/email/resend")
    assert (r.status_code, r.json()) == (202, {})
    settle(client)
    first, second = mails_to(smtp.handler, "ada@example.com", "confirm")
    assert token_in(first, "/email/verify") != token_in(second, "/email/verify")
    assert (
        client.post(
            "/auth/email/verify", json={"token": token_in(second, "/email/verify")}
        ).status_code
        == 204
    )


def test_verification_off_sends_nothing(tmp_path: Path, smtp_server: Any) -> None:
    smtp = smtp_server()
    with make_client(
        tmp_path, smtp_url=f"smtp://127.0.0.1:{smtp.port}", mail_from="login@acme.example",
        email_verification="off",
    ) as client:  # fmt: skip
        register(client)
        settle(client)
    assert smtp.handler.messages == []


def test_required_verification_refuses_login_and_tokens(tmp_path: Path, smtp_server: Any) -> None:
    smtp = smtp_server()
    with make_client(
        tmp_path, public_url=PUBLIC, smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="login@acme.example", email_verification="required",
    ) as client:  # fmt: skip
        register(client)
        creds = {"email": "ada@example.com", "password": PASSWORD}
        r = client.post("/auth/login", json=creds)
        assert (r.status_code, r.json()["error"]) == (403, "email_unverified")
        assert "__Host-gatepass=" not in r.headers.get("set-cookie", "")
        r = client.post("/auth/token", json=creds)
        assert (r.status_code, r.json()["error"]) == (403, "email_unverified")
        assert "access_token" not in r.text
        # A wrong password still says only that.
        r = client.post("/auth/login", json={**creds, "password": "wrong password 123"})
        assert r.status_code == 401
        settle(client)
        [mail] = mails_to(smtp.handler, "ada@example.com", "confirm")
        assert (
            client.post(
                "/auth/email/verify", json={"token": token_in(mail, "/email/verify")}
            ).status_code
            == 204
        )
        assert client.post("/auth/login", json=creds).status_code == 200
        assert (
            parts_of(client)
            .tokens.codec.verify(client.post("/auth/token", json=creds).json()["access_token"])
            .raw["email_verified"]
            is True
        )


def test_the_claim_turns_true_at_the_next_refresh_after_verifying(
    client: TestClient, smtp: Any
) -> None:
    register(client)
    creds = {"email": "ada@example.com", "password": PASSWORD}
    pair = client.post("/auth/token", json=creds).json()
    codec = parts_of(client).tokens.codec
    assert codec.verify(pair["access_token"]).raw["email_verified"] is False
    settle(client)
    [mail] = mails_to(smtp.handler, "ada@example.com", "confirm")
    client.post("/auth/email/verify", json={"token": token_in(mail, "/email/verify")})
    fresh = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    assert codec.verify(fresh["access_token"]).raw["email_verified"] is True


def test_reset_ends_browser_jwt_logins_too(tmp_path: Path, smtp_server: Any) -> None:
    smtp = smtp_server()
    with make_client(
        tmp_path, public_url=PUBLIC, smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="login@acme.example", browser_mode="jwt",
    ) as client:  # fmt: skip
        register(client)
        r = client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert r.status_code == 200
        jar = client.cookies
        assert client.get("/auth/me").status_code == 200
        client.cookies = httpx.Cookies()
        forgot(client, "ada@example.com")
        settle(client)
        [mail] = mails_to(smtp.handler, "ada@example.com", "reset")
        r = client.post(
            "/auth/password/reset",
            json={"token": token_in(mail, "/password/reset"), "password": NEW_PASSWORD},
        )
        assert r.status_code == 204
        client.cookies = jar  # the browser comes back with its access and refresh cookies
        assert client.get("/auth/me").status_code == 401
        assert client.post("/auth/refresh").status_code == 401
        assert client.get("/auth/sessions").status_code == 401
