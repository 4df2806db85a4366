"""The server's secret for HMACs (CSRF tokens): from settings, or generated once.

``GATEPASS_SECRET_KEY`` may hold several secrets separated by commas, newest
first: the first signs, all verify, so a secret is rotated by prepending a new
one and dropping the old one later.  Without it, 32 random bytes are written
to ``<data dir>/secret.key`` with mode 0600 on first start and reused after.
Instances behind one load balancer must share it (same variable, or a shared
data dir).
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from pathlib import Path

from gatepass.errors import ConfigurationError

FILE_NAME = "secret.key"


def load_secrets(configured: str, data_dir: Path) -> list[bytes]:
    if configured:
        values = [part.strip().encode() for part in configured.split(",") if part.strip()]
        if not values or any(len(v) < 32 for v in values):
            raise ConfigurationError(
                "GATEPASS_SECRET_KEY must hold secrets of at least 32 characters each."
            )
        return values
    path = data_dir / FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = base64.urlsafe_b64encode(secrets.token_bytes(32))
        try:
            # O_EXCL: two processes starting at once must not both write.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(value + b"\n")
    if path.stat().st_mode & 0o077:
        raise ConfigurationError(f"{path} must not be readable by other users (chmod 600).")
    value = path.read_bytes().strip()
    for _ in range(50):  # another process may be between creating and writing it
        if len(value) >= 32:
            break
        time.sleep(0.01)
        value = path.read_bytes().strip()
    if len(value) < 32:
        raise ConfigurationError(f"{path} does not hold a usable secret.")
    return [value]
