"""A key ring stored on disk: the only I/O of the token core.

The layout is one ``keys.json`` (mode 0600) in a directory (mode 0700), with
each private key as a PKCS8 PEM string inside (HS256 secrets as base64url).
One file means one atomic ``os.replace`` per save, so a reader never sees half
a rotation, and the mode check covers every secret at once.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from gatepass.errors import ConfigurationError
from gatepass.tokens.keys import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    Algorithm,
    KeyRing,
    SigningKey,
    b64url,
)


class KeyFile:
    """A ring kept as ``keys.json`` (mode 0600) in a directory (mode 0700)."""

    FILENAME = "keys.json"
    _MAX_BYTES = 1 << 20

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / self.FILENAME

    def load(self) -> KeyRing | None:
        """The stored ring, or None when there is none yet."""
        try:
            # O_NOFOLLOW: a symlink planted in the directory is refused, not followed.
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigurationError(f"Cannot open the key file {self.path}.") from exc
        with os.fdopen(fd, "rb") as file:
            st = os.fstat(file.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
                raise ConfigurationError(
                    f"The key file {self.path} is accessible to group or others; chmod 600 it."
                )
            data = file.read(self._MAX_BYTES + 1)
        try:
            doc = json.loads(data)
            keys = [_key_from_json(item) for item in doc["keys"]]
            return KeyRing(keys, doc["active"])
        except ConfigurationError:
            raise
        except (ValueError, KeyError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError(f"The key file {self.path} is malformed.") from exc

    def save(self, ring: KeyRing) -> None:
        self._ensure_directory()
        doc = {
            "version": 1,
            "active": ring.active.kid,
            "keys": [_key_to_json(key) for key in ring],
        }
        # mkstemp creates the file 0600 with O_EXCL; replace() makes it visible whole.
        fd, tmp = tempfile.mkstemp(prefix=".keys.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(doc, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a crash
        finally:
            os.close(dir_fd)

    def load_or_create(
        self, alg: Algorithm = DEFAULT_ALGORITHM, now: float | None = None
    ) -> KeyRing:
        """Load the ring, or make and store one.  Two processes starting at once
        serialise on an exclusive lock, so the second loads the first's ring."""
        self._ensure_directory()
        lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            ring = self.load()
            if ring is None:
                ring = KeyRing.generate(alg, now=time.time() if now is None else now)
                self.save(ring)
            return ring
        finally:
            os.close(lock_fd)  # closing releases the flock

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _key_to_json(key: SigningKey) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kid": key.kid,
        "alg": key.alg,
        "created_at": key.created_at,
        "retired_at": key.retired_at,
        "verify_until": key.verify_until,
    }
    if isinstance(key.private_key, bytes):
        item["secret"] = b64url(key.private_key)
    else:
        pem = key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        item["pem"] = pem.decode("ascii")
    return item


def _key_from_json(item: dict[str, Any]) -> SigningKey:
    alg = item["alg"]
    if alg not in ALGORITHMS:
        raise ConfigurationError(f"Unsupported algorithm {alg!r} in the key file.")
    private: Any
    if alg == "HS256":
        private = base64.urlsafe_b64decode(item["secret"] + "==")
    else:
        private = load_pem_private_key(item["pem"].encode("ascii"), password=None)
    return SigningKey(
        item["kid"],
        alg,
        private,
        created_at=float(item["created_at"]),
        retired_at=_opt_float(item.get("retired_at")),
        verify_until=_opt_float(item.get("verify_until")),
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
