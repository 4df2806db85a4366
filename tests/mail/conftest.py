"""A real SMTP server (aiosmtpd) on a free loopback port, plain, STARTTLS or
implicit TLS, with AUTH, and a self-signed certificate made for each test."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port

SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-s3cret-pass"


@dataclass
class Inbox:
    """What the server received, parsed as a mail client would."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class Rejecting(Inbox):
    """A server that refuses every mail, permanently or for now."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code
        self.attempts = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        return f"{self.code} refused (test)"


@dataclass
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    """A self-signed P-256 certificate for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_path, key_path)


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == SMTP_USER.encode()
        and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    controller: Controller
    handler: Inbox
    port: int

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """Start servers: ``start(handler=None, mode="plain"|"starttls"|"tls",
    certificate=None, auth=False)``; every one is stopped after the test."""
    started: list[SmtpServer] = []

    def start(
        handler: Inbox | None = None,
        *,
        mode: str = "plain",
        certificate: Certificate | None = None,
        auth: bool = False,
        port: int | None = None,
    ) -> SmtpServer:
        handler = handler or Inbox()
        port = port or free_port()
        kwargs: dict[str, Any] = {}
        if auth:
            kwargs.update(authenticator=check_login, auth_required=True)
            if mode in ("plain", "tls"):
                # aiosmtpd only counts STARTTLS as TLS; with implicit TLS the
                # connection is encrypted from the first byte all the same.
                kwargs["auth_require_tls"] = False
        if mode == "starttls":
            assert certificate is not None
            kwargs.update(tls_context=certificate.server_context(), require_starttls=True)
        elif mode == "tls":
            assert certificate is not None
            kwargs["ssl_context"] = certificate.server_context()
            kwargs["server_hostname"] = "localhost"
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        server = SmtpServer(controller, handler, port)
        started.append(server)
        return server

    yield start
    for server in started:
        with suppress(AssertionError, RuntimeError):  # already stopped by the test
            server.stop()
