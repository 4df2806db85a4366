"""The mails gatepass sends, rendered from templates into MIME messages.

Pure: no I/O.  Every mail has a plain-text part and an HTML part (a
``multipart/alternative``), and every link in it is absolute and built on
the configured public URL only — never on a request's ``Host`` header, which
an attacker chooses (a reset link pointing at their host would hand them the
token).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2

from gatepass.errors import ConfigurationError

#: The kinds of mail, each a pair of templates ``mail/<kind>.txt`` and
#: ``mail/<kind>.html``; the ``.txt`` one sets ``subject``.
KINDS = (
    "password_reset",
    "email_verification",
    "password_changed",
    "email_change",
    "email_change_taken",
    "email_change_requested",
)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A rendered mail and what may be logged about it (never its links)."""

    message: EmailMessage
    kind: str
    to: str

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class MailComposer:
    def __init__(
        self,
        env: jinja2.Environment,
        *,
        public_url: str,
        sender: str,
        site_name: str = "gatepass",
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError("GATEPASS_PUBLIC_URL must be an http(s) URL.")
        self.env = env
        #: Links are ``base + path``: the public URL may carry a path prefix.
        self.base = public_url.rstrip("/")
        self.sender = sender
        self.site_name = site_name
        self._clock = clock
        self._msgid_domain = (sender.rpartition("@")[2].rstrip(">") or "localhost").lower()

    def link(self, path: str, **query: str) -> str:
        """An absolute link on the public URL; ``path`` is ours, never the client's."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError("link paths are absolute paths on the public URL")
        return self.base + path + ("?" + urlencode(query) if query else "")

    def password_reset(self, to: str, token: str, *, ttl_seconds: int = 30 * 60) -> Outgoing:
        return self.render(
            "password_reset",
            to,
            link=self.link("/password/reset", token=token),
            forgot_link=self.link("/password/forgot"),
            valid_for=_duration(ttl_seconds),
        )

    def email_verification(
        self, to: str, token: str, *, ttl_seconds: int = 48 * 3600
    ) -> Outgoing:
        return self.render(
            "email_verification",
            to,
            link=self.link("/email/verify", token=token),
            valid_for=_duration(ttl_seconds),
        )

    def password_changed(self, to: str, *, ip: str | None = None) -> Outgoing:
        return self.render(
            "password_changed",
            to,
            when=_utc(self._clock()),
            ip=ip,
            forgot_link=self.link("/password/forgot"),
            account_link=self.link("/account"),
        )

    def email_change(self, to: str, token: str, *, ttl_seconds: int = 48 * 3600) -> Outgoing:
        """To the NEW address: the link that completes an email change."""
        return self.render(
            "email_change",
            to,
            link=self.link("/email/change", token=token),
            valid_for=_duration(ttl_seconds),
        )

    def email_change_taken(self, to: str) -> Outgoing:
        """To the NEW address when it already has an account: no link at all
        (the asker learns nothing; the owner of the address learns why)."""
        return self.render(
            "email_change_taken",
            to,
            login_link=self.link("/login"),
            forgot_link=self.link("/password/forgot"),
        )

    def email_change_requested(self, to: str, new_email: str, *, ip: str | None = None) -> Outgoing:
        """To the OLD address: a notice with no link that acts on the request."""
        return self.render(
            "email_change_requested",
            to,
            new_email=new_email,
            when=_utc(self._clock()),
            ip=ip,
            account_link=self.link("/account"),
        )

    def render(self, kind: str, to: str, **values: Any) -> Outgoing:
        context = {"site_name": self.site_name, "site_url": self.base + "/", "email": to, **values}
        text_template = self.env.get_template(f"mail/{kind}.txt")
        subject = str(getattr(text_template.make_module(context), "subject", "")).strip()
        if not subject or "\n" in subject or "\r" in subject:
            raise ConfigurationError(f"The template mail/{kind}.txt must set a one-line subject.")
        text = text_template.render(context)
        html = self.env.get_template(f"mail/{kind}.html").render(context)

        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.fromtimestamp(self._clock(), UTC))
        message["Message-ID"] = make_msgid(secrets.token_hex(8), domain=self._msgid_domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies back
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return Outgoing(message=message, kind=kind, to=to)


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0 and seconds >= 3600:
        hours = seconds // 3600
        return f"{hours} hour" + ("s" if hours != 1 else "")
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute" + ("s" if minutes != 1 else "")
