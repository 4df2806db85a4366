"""The mailer against a real SMTP server (aiosmtpd on loopback): plain,
STARTTLS and implicit TLS with a certificate made in the test, AUTH, a server
that is down or refuses, and nothing lost at shutdown."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from gatepass.mail import MailComposer, Mailer, Outbox, parse_smtp_url
from gatepass.templating import make_environment
from tests.conftest import free_port
from tests.mail.conftest import SMTP_PASSWORD, SMTP_USER, Certificate, Inbox, Rejecting

TOKEN = "tok_" + "Z" * 40


def reset_mail(to: str = "ada@example.com") -> Any:
    composer = MailComposer(
        make_environment(), public_url="https://id.example.com", sender="Login <login@example.com>"
    )
    return composer.password_reset(to, TOKEN)


def make_mailer(tmp_path: Path, url: str | None, **kwargs: Any) -> Mailer:
    ca = kwargs.pop("ca_file", None)
    smtp = parse_smtp_url(url, ca_file=ca) if url else None
    kwargs.setdefault("retry_delays", (0.05, 0.05))
    kwargs.setdefault("timeout", 3.0)
    return Mailer(Outbox(tmp_path / "outbox"), smtp, **kwargs)


async def deliver(mailer: Mailer, *mails: Any) -> None:
    await mailer.start()
    try:
        for mail in mails:
            mailer.send(mail)
        await asyncio.wait_for(mailer.wait_idle(), 20)
    finally:
        await mailer.stop()


def assert_secret_free(caplog: pytest.LogCaptureFixture) -> None:
    # Ours only: the test server's own debug log quotes the mail it received.
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("gatepass"))
    assert TOKEN not in text
    assert SMTP_PASSWORD not in text
    assert "ada@" not in text  # the recipient's local part stays out of the log


async def test_plain_smtp_delivers_a_multipart_mail(
    tmp_path: Path, smtp_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gatepass.mail")
    server = smtp_server()
    mailer = make_mailer(tmp_path, f"smtp://127.0.0.1:{server.port}")
    await deliver(mailer, reset_mail())
    [msg] = server.handler.messages
    assert server.handler.envelopes == [("login@example.com", ["ada@example.com"])]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert f"https://id.example.com/password/reset?token={TOKEN}" in text
    assert f"https://id.example.com/password/reset?token={TOKEN}" in html
    assert mailer.sent == 1
    assert Outbox(tmp_path / "outbox").list() == []
    assert any("sent via smtp://127.0.0.1" in r.getMessage() for r in caplog.records)
    assert_secret_free(caplog)


async def test_auth_over_starttls_with_a_private_ca(
    tmp_path: Path, smtp_server: Any, certificate: Certificate,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, "gatepass.mail")
    server = smtp_server(mode="starttls", certificate=certificate, auth=True)
    url = f"smtp+starttls://{SMTP_USER}:{SMTP_PASSWORD}@localhost:{server.port}"
    mailer = make_mailer(tmp_path, url, ca_file=str(certificate.cert))
    await deliver(mailer, reset_mail())
    assert len(server.handler.messages) == 1
    assert_secret_free(caplog)


async def test_auth_over_implicit_tls(
    tmp_path: Path, smtp_server: Any, certificate: Certificate,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, "gatepass.mail")
    server = smtp_server(mode="tls", certificate=certificate, auth=True)
    url = f"smtps://{SMTP_USER}:{SMTP_PASSWORD}@localhost:{server.port}"
    mailer = make_mailer(tmp_path, url, ca_file=str(certificate.cert))
    await deliver(mailer, reset_mail())
    assert len(server.handler.messages) == 1
    assert_secret_free(caplog)


async def test_an_untrusted_certificate_is_refused_and_the_mail_kept(
    tmp_path: Path, smtp_server: Any, certificate: Certificate,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """No CA file: the self-signed certificate fails verification, so the
    password is never sent to that server, and the mail goes to the outbox."""
    server = smtp_server(mode="tls", certificate=certificate, auth=True)
    url = f"smtps://{SMTP_USER}:{SMTP_PASSWORD}@localhost:{server.port}"
    mailer = make_mailer(tmp_path, url)
    await deliver(mailer, reset_mail())
    assert server.handler.messages == []
    [kept] = Outbox(tmp_path / "outbox").list()
    assert kept.name.startswith("undelivered-")
    assert_secret_free(caplog)


async def test_wrong_smtp_password_is_permanent_and_kept(
    tmp_path: Path, smtp_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = smtp_server(auth=True)
    wrong = "not-the-password"
    mailer = make_mailer(tmp_path, f"smtp://{SMTP_USER}:{wrong}@127.0.0.1:{server.port}")
    await deliver(mailer, reset_mail())
    assert server.handler.messages == []
    assert len(Outbox(tmp_path / "outbox").list()) == 1
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "SMTPAuthenticationError 535" in text and wrong not in text
    assert "retrying" not in text  # 5xx: retrying would get the same answer


async def test_server_down_send_returns_at_once_retries_then_keeps_the_mail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gatepass.mail")
    port = free_port()  # nothing listens there
    mailer = make_mailer(tmp_path, f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{port}")
    await mailer.start()
    try:
        mail = reset_mail()
        started = time.perf_counter()
        mailer.send(mail)
        assert time.perf_counter() - started < 0.01  # the request path never waits
        await asyncio.wait_for(mailer.wait_idle(), 20)
    finally:
        await mailer.stop()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text.count("retrying in") == 2  # two retries, then given up
    assert "NOT SENT: sending failed after 3 attempt(s)" in text
    [kept] = Outbox(tmp_path / "outbox").list()
    parsed = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
    assert TOKEN in parsed.get_body(("plain",)).get_content()  # the mail, whole
    assert_secret_free(caplog)


async def test_a_server_that_comes_back_gets_the_mail_on_a_retry(
    tmp_path: Path, smtp_server: Any
) -> None:
    port = free_port()
    mailer = make_mailer(tmp_path, f"smtp://127.0.0.1:{port}", retry_delays=(0.3, 0.3))
    await mailer.start()
    try:
        mailer.send(reset_mail())
        await asyncio.sleep(0.1)  # first attempt refused: nothing listens yet
        server = smtp_server(port=port)
        await asyncio.wait_for(mailer.wait_idle(), 20)
    finally:
        await mailer.stop()
    assert len(server.handler.messages) == 1
    assert Outbox(tmp_path / "outbox").list() == []


async def test_temporary_refusal_is_retried_permanent_is_not(
    tmp_path: Path, smtp_server: Any
) -> None:
    busy = smtp_server(Rejecting(451))
    await deliver(make_mailer(tmp_path / "a", f"smtp://127.0.0.1:{busy.port}"), reset_mail())
    assert busy.handler.attempts == 3
    assert len(Outbox(tmp_path / "a" / "outbox").list()) == 1

    refusing = smtp_server(Rejecting(554))
    await deliver(make_mailer(tmp_path / "b", f"smtp://127.0.0.1:{refusing.port}"), reset_mail())
    assert refusing.handler.attempts == 1
    assert len(Outbox(tmp_path / "b" / "outbox").list()) == 1


async def test_shutdown_keeps_what_was_not_sent(tmp_path: Path) -> None:
    port = free_port()
    mailer = make_mailer(
        tmp_path, f"smtp://127.0.0.1:{port}", retry_delays=(30.0,), drain_timeout=0.2
    )
    await mailer.start()
    for n in range(3):
        mailer.send(reset_mail(f"user{n}@example.com"))
    await asyncio.sleep(0.2)
    await mailer.stop()  # retries still pending: every mail goes to the outbox
    assert len(Outbox(tmp_path / "outbox").list()) == 3


async def test_without_smtp_every_mail_is_an_eml_file(tmp_path: Path) -> None:
    mailer = make_mailer(tmp_path, None)
    await deliver(mailer, reset_mail(), reset_mail("bob@example.com"))
    files = Outbox(tmp_path / "outbox").list()
    assert len(files) == 2
    assert not any(f.name.startswith("undelivered-") for f in files)
    recipients = sorted(
        str(email.message_from_bytes(f.read_bytes(), policy=email.policy.default)["To"])
        for f in files
    )
    assert recipients == ["ada@example.com", "bob@example.com"]


async def test_a_full_queue_spills_to_the_outbox(tmp_path: Path) -> None:
    port = free_port()
    mailer = make_mailer(tmp_path, f"smtp://127.0.0.1:{port}", queue_size=1, retry_delays=())
    # Not started: nothing takes from the queue, so the second mail overflows.
    mailer.send(reset_mail())
    mailer.send(reset_mail("bob@example.com"))
    await asyncio.sleep(0.2)
    [spilled] = Outbox(tmp_path / "outbox").list()
    assert "bob@example.com" in spilled.read_text()
    await mailer.stop()
    assert len(Outbox(tmp_path / "outbox").list()) == 2


def test_inbox_fixture_is_a_real_server(smtp_server: Any) -> None:
    """The harness itself: a plain smtplib client reaches it."""
    import smtplib

    server = smtp_server()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nbody\r\n")
    assert isinstance(server.handler, Inbox)
    assert server.handler.messages[0]["Subject"] == "hi"
