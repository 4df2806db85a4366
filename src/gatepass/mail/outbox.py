"""``<data dir>/outbox/``: where mail goes when there is no SMTP server, or
when the SMTP server would not take it after every retry.

Each mail is one ``.eml`` file (RFC 5322, readable by any mail client, and
re-sendable with ``sendmail -t < file``).  The folder is 0700 and the files
0600: they hold live reset and verification links.  A file appears whole or
not at all (written under a temporary name, then renamed).
"""

from __future__ import annotations

import os
import secrets
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from gatepass.errors import ConfigurationError


class Outbox:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def prepare(self) -> None:
        """Create the folder (0700), or tighten an existing one; start-up only."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot use the mail outbox folder {str(self.directory)!r}: "
                f"{exc.strerror or type(exc).__name__}."
            ) from None

    def write(self, message: EmailMessage, *, kind: str, undelivered: bool = False) -> Path:
        """Store one mail; returns its path.  Blocking: call it from a thread."""
        self.prepare()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        prefix = "undelivered-" if undelivered else ""
        name = f"{prefix}{stamp}-{kind}-{secrets.token_hex(6)}.eml"
        final = self.directory / name
        partial = self.directory / f".{name}.part"
        data = message.as_bytes(policy=SMTP)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return final

    def list(self) -> list[Path]:
        """The stored mails, oldest first (names start with their UTC time)."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if p.suffix == ".eml"]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))
