"""Outgoing-mail settings: the SMTP URL and the sender, parsed once at start-up.

``smtp://[user:pass@]host[:port]`` (plain, for a relay on a trusted network),
``smtp+starttls://…`` (port 587 by default, upgraded with STARTTLS before
anything else is said), ``smtps://…`` (port 465, TLS from the first byte).
Certificates are always verified; ``GATEPASS_SMTP_CA_FILE`` adds a private CA.

The URL holds a password, so no message, repr or log line ever shows it:
errors name the setting, never its value, and :func:`gatepass.drivers.redact.redact` is the one
way the URL is displayed.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Literal
from urllib.parse import SplitResult, unquote, urlsplit

from gatepass.drivers.redact import redact
from gatepass.errors import ConfigurationError

Security = Literal["plain", "starttls", "tls"]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    security: Security
    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    #: PEM file of extra trusted CAs (a private mail relay's); None: the system's.
    ca_file: str | None = None
    #: How the server is shown in logs: the URL through :func:`gatepass.drivers.redact.redact`.
    shown: str = "<smtp>"

    def __str__(self) -> str:
        return self.shown

    def tls_context(self) -> ssl.SSLContext | None:
        if self.security == "plain":
            return None
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError):
            raise ConfigurationError("GATEPASS_SMTP_CA_FILE cannot be read as PEM.") from None


def parse_smtp_url(url: str, *, ca_file: str | None = None) -> SmtpTarget:
    try:
        parts: SplitResult = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigurationError("GATEPASS_SMTP_URL is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            "GATEPASS_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://."
        )
    if not parts.hostname:
        raise ConfigurationError("GATEPASS_SMTP_URL must name a host.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError("GATEPASS_SMTP_URL takes no path, query or fragment.")
    security, default_port = _SCHEMES[scheme]
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ConfigurationError("GATEPASS_SMTP_URL has a password but no user name.")
    if security == "plain" and username and parts.hostname not in _LOOPBACK:
        # AUTH over plain smtp:// would send the password in clear text
        # across the network; a relay on this machine is the one exception.
        raise ConfigurationError(
            "GATEPASS_SMTP_URL: credentials need smtp+starttls:// or smtps:// "
            "(plain smtp:// with a password only to 127.0.0.1 or localhost)."
        )
    return SmtpTarget(
        security=security,
        host=parts.hostname,
        port=port or default_port,
        username=username,
        password=password,
        ca_file=ca_file,
        shown=redact(url.strip()),
    )


def parse_sender(value: str) -> str:
    """A ``From`` value: ``addr@example.com`` or ``Name <addr@example.com>``."""
    if any(ch in value for ch in "\r\n"):
        raise ConfigurationError("GATEPASS_MAIL_FROM must be one line.")
    name, addr = parseaddr(value.strip())
    local, _, domain = addr.rpartition("@")
    # parseaddr is lenient (it answers ('', '') or half an address for junk):
    # the Address constructor below is the strict check.
    if not local or not domain or " " in addr or "@" in local:
        raise ConfigurationError(
            "GATEPASS_MAIL_FROM must be an address such as 'Example <login@example.com>'."
        )
    try:
        return str(Address(display_name=name, addr_spec=addr))
    except (HeaderParseError, ValueError, IndexError):
        raise ConfigurationError("GATEPASS_MAIL_FROM is not a valid address.") from None


def default_sender(public_url: str) -> str:
    """Used only when mail goes to the outbox: ``gatepass@<public host>``."""
    host = urlsplit(public_url).hostname or "localhost"
    if not any(c.isalpha() for c in host) or ":" in host:
        host = "localhost"  # an IP address is no mail domain
    return f"gatepass <gatepass@{host}>"
