"""``gatepass serve`` with everything on one ``mongodb://`` URL, end to end.

Users, second factors, one-time link tokens, sessions, refresh tokens,
revocation and throttling all on MongoDB — here the nx-27017 wire-protocol
emulator, not a real MongoDB server (none installs on these machines; see
docs/storage.md).  The server is the real ``gatepass serve`` subprocess;
mail goes to a real SMTP server (aiosmtpd on loopback).  The account flows
(verification, forgot/reset, change of email) and TOTP with a recovery code.
"""

from __future__ import annotations

import re
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from tests.mail.test_account_flows import text_of
from tests.server.test_serve_e2e import PASSWORD, Served, login, serve, session_token

pytestmark = pytest.mark.mongodb

EMAIL, NEW_EMAIL = "ada@example.com", "ada@example.org"
NEW_PASSWORD = "a brand new passphrase 42"


def mail(smtp: Any, to: str, subject: str, count: int = 1) -> EmailMessage:
    """The ``count``-th mail to ``to`` whose subject has ``subject``, once delivered
    (the server sends off the request path)."""
    deadline = time.monotonic() + 20
    while True:
        found = [m for m in smtp.handler.messages
                 if m["To"] == to and subject.lower() in str(m["Subject"]).lower()]  # fmt: skip
        if len(found) >= count:
            return found[count - 1]
        if time.monotonic() > deadline:
            subjects = [str(m["Subject"]) for m in smtp.handler.messages]
            pytest.fail(f"no mail {subject!r} to {to}: {subjects}")
        time.sleep(0.05)


def token(message: EmailMessage, server: Served, path: str) -> str:
    [link] = [u for u in re.findall(r"https?://\S+", text_of(message)) if urlsplit(u).path == path]
    assert link.startswith(server.url + path + "?token=")
    [value] = parse_qs(urlsplit(link).query)["token"]
    return value


def test_serve_on_mongodb_account_flows_and_totp(
    tmp_path: Path, mongodb_url: str, smtp_server: Any
) -> None:
    smtp = smtp_server()
    settings = {
        "GATEPASS_DATABASE_URL": mongodb_url,  # the session store follows it
        "GATEPASS_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "GATEPASS_MAIL_FROM": "login@acme.example",
    }
    with serve(tmp_path, **settings) as server:
        ready = server.request("GET", "/readyz")
        assert ready.status_code == 200, ready.text

        # Register; the verification link comes by mail.
        r = server.request("POST", "/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert r.status_code == 201, r.text
        session = login(server)
        assert server.request("GET", "/auth/me", session).json()["email_verified"] is False
        verify = token(mail(smtp, EMAIL, "confirm your email"), server, "/email/verify")
        r = server.request("POST", "/auth/email/verify", json={"token": verify})
        assert r.status_code == 204, r.text
        assert server.request("GET", "/auth/me", session).json()["email_verified"] is True
        r = server.request("POST", "/auth/email/verify", json={"token": verify})
        assert (r.status_code, r.json()["error"]) == (400, "invalid_token")

        # Forgot and reset: every login ends.
        r = server.request("POST", "/auth/password/forgot", json={"email": EMAIL})
        assert r.status_code == 202
        reset = token(mail(smtp, EMAIL, "reset"), server, "/password/reset")
        r = server.request(
            "POST", "/auth/password/reset", json={"token": reset, "password": NEW_PASSWORD}
        )
        assert r.status_code == 204, r.text
        assert server.request("GET", "/auth/me", session).status_code == 401
        session = login(server, password=NEW_PASSWORD)

        # Change of email: a link to the new address, a notice to the old one.
        r = server.request(
            "POST", "/auth/email/change", session,
            json={"new_email": NEW_EMAIL, "password": NEW_PASSWORD},
        )  # fmt: skip
        assert r.status_code == 202, r.text
        mail(smtp, EMAIL, "about to change")
        change = token(mail(smtp, NEW_EMAIL, "confirm your new email"), server, "/email/change")
        r = server.request("POST", "/auth/email/change/confirm", json={"token": change})
        assert r.status_code == 204, r.text
        me = server.request("GET", "/auth/me", session).json()
        assert (me["email"], me["email_verified"]) == (NEW_EMAIL, True)

        # TOTP: enrol, then a sign-in needs the second step.
        setup = server.request("POST", "/auth/mfa/totp/setup", session)
        assert setup.status_code == 200, setup.text
        secret = setup.json()["secret"]
        confirm = server.request(
            "POST", "/auth/mfa/totp/confirm", session, json={"code": pyotp.TOTP(secret).now()}
        )
        assert confirm.status_code == 200, confirm.text
        codes = confirm.json()["recovery_codes"]
        # Confirming renews this login with "otp" in its amr: a new session id.
        assert server.request("GET", "/auth/me", session).status_code == 401
        session = session_token(confirm)
        first = server.request(
            "POST", "/auth/login", json={"email": NEW_EMAIL, "password": NEW_PASSWORD}
        )
        assert (first.status_code, first.json()["error"]) == (401, "mfa_required")
        mfa_token = first.json()["mfa_token"]
        # The step the confirmation used is spent: its code is refused.
        reused = server.request(
            "POST", "/auth/mfa/verify",
            json={"mfa_token": mfa_token, "code": pyotp.TOTP(secret).at(time.time() - 30)},
        )  # fmt: skip
        assert reused.status_code == 401, reused.text
        done = server.request(
            "POST", "/auth/mfa/verify", json={"mfa_token": mfa_token, "code": codes[0]}
        )
        assert done.status_code == 200, done.text
        # The challenge and the recovery code were single use.
        again = server.request(
            "POST", "/auth/mfa/verify", json={"mfa_token": mfa_token, "code": codes[1]}
        )
        assert again.status_code == 401
        second = server.request(
            "POST", "/auth/login", json={"email": NEW_EMAIL, "password": NEW_PASSWORD}
        ).json()["mfa_token"]
        spent = server.request(
            "POST", "/auth/mfa/verify", json={"mfa_token": second, "code": codes[0]}
        )
        assert spent.status_code == 401
        assert server.request("GET", "/auth/mfa", session).json()["recovery_codes_left"] == 9
