"""The server's mailer: started and stopped with the lifespan, outbox by
default, SMTP when configured, and nothing lost when the server stops."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from gatepass.mail import Outbox
from gatepass.server.app import Server
from tests.conftest import free_port
from tests.server.conftest import make_client


def _send_reset(client: Any, to: str) -> None:
    server: Server = client.app
    assert server.components is not None
    parts = server.components

    async def send() -> None:
        parts.mailer.send(parts.mail.password_reset(to, "tok_" + "Q" * 40))
        await parts.mailer.wait_idle()

    client.portal.call(send)


def test_default_server_writes_mail_to_a_private_outbox(tmp_path: Path) -> None:
    with make_client(tmp_path, public_url="https://id.example.com") as client:
        outbox = tmp_path / "data" / "outbox"
        assert stat.S_IMODE(os.stat(outbox).st_mode) == 0o700
        _send_reset(client, "ada@example.com")
        [mail] = Outbox(outbox).list()
    assert stat.S_IMODE(os.stat(mail).st_mode) == 0o600
    body = mail.read_text()
    assert "From: gatepass <gatepass@id.example.com>" in body
    # Built on GATEPASS_PUBLIC_URL, not on the test client's Host (testserver).
    assert "https://id.example.com/password/reset?token=3Dtok_" in body
    assert "testserver" not in body


def test_server_sends_over_smtp(tmp_path: Path, smtp_server: Any) -> None:
    smtp = smtp_server()
    with make_client(
        tmp_path,
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="Acme Login <login@acme.example>",
    ) as client:
        _send_reset(client, "ada@example.com")
    [msg] = smtp.handler.messages
    assert msg["From"] == "Acme Login <login@acme.example>"
    assert Outbox(tmp_path / "data" / "outbox").list() == []


def test_stopping_the_server_keeps_unsent_mail(tmp_path: Path) -> None:
    dead = free_port()
    with make_client(
        tmp_path,
        smtp_url=f"smtp://127.0.0.1:{dead}",
        mail_from="login@acme.example",
        mail_retry_delays=(60.0,),
    ) as client:
        server: Server = client.app
        assert server.components is not None
        parts = server.components

        async def send() -> None:
            parts.mailer.send(parts.mail.email_verification("ada@example.com", "tok_x"))

        client.portal.call(send)
    # The lifespan ended while the retry was pending: the mail is in the outbox.
    [kept] = Outbox(tmp_path / "data" / "outbox").list()
    assert kept.name.startswith("undelivered-")
