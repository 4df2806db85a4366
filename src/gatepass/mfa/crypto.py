"""TOTP secrets at rest: AES-GCM under keys derived from the server secrets.

The stored form is ``v1.<kid>.<base64url(nonce | ciphertext | tag)>``.  Each
server secret (``GATEPASS_SECRET_KEY``, newest first) gives one key,
HMAC-SHA256(secret, purpose), never the secret itself; ``kid`` is a short
hash of that key, so opening picks the right key at once.  The newest key
seals; every listed key opens: prepend a new secret, keep the old one until
every stored secret has been re-sealed (:meth:`SecretBox.needs_reseal`), then
drop it.

The user id is the associated data: a sealed secret copied onto another
user's row does not open there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gatepass.errors import ConfigurationError

_PURPOSE = b"gatepass-mfa-secret-v1"
_VERSION = "v1"
#: A sealed TOTP secret is ~100 characters; anything far longer is not ours.
MAX_SEALED = 512


class SecretUnreadable(Exception):
    """A sealed value that no configured key opens (a dropped secret, or tampering).

    Deliberately not a GatepassError: it is a server-side fault that must be
    logged and never shown; its text names nothing secret.
    """


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretBox:
    """Seals with the newest server secret's key; opens with any of them."""

    def __init__(self, server_secrets: Sequence[bytes]) -> None:
        if not server_secrets:
            raise ConfigurationError("At least one server secret is needed to seal MFA secrets.")
        self._keys: dict[str, AESGCM] = {}
        self._order: list[str] = []
        for secret in server_secrets:
            key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()
            kid = hashlib.sha256(b"kid" + key).hexdigest()[:12]
            if kid not in self._keys:
                self._keys[kid] = AESGCM(key)
                self._order.append(kid)

    @property
    def active_kid(self) -> str:
        return self._order[0]

    def seal(self, plain: str, *, user_id: str) -> str:
        nonce = os.urandom(12)
        kid = self.active_kid
        sealed = self._keys[kid].encrypt(nonce, plain.encode(), _aad(kid, user_id))
        return f"{_VERSION}.{kid}.{_b64(nonce + sealed)}"

    def open(self, sealed: str, *, user_id: str) -> str:
        """The plain value; SecretUnreadable when no key opens it for this user."""
        if len(sealed) > MAX_SEALED:
            raise SecretUnreadable("sealed value too long")
        version, _, rest = sealed.partition(".")
        kid, _, body = rest.partition(".")
        key = self._keys.get(kid)
        if version != _VERSION or key is None:
            raise SecretUnreadable("no configured key for this sealed value")
        try:
            raw = _unb64(body)
            if len(raw) < 12 + 16:
                raise ValueError("short")
            return key.decrypt(raw[:12], raw[12:], _aad(kid, user_id)).decode()
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise SecretUnreadable("sealed value does not open") from None

    def needs_reseal(self, sealed: str) -> bool:
        """Whether ``sealed`` was made with an older key (re-seal it on next use)."""
        return sealed.split(".", 2)[1:2] != [self.active_kid]


def _aad(kid: str, user_id: str) -> bytes:
    return b"\x00".join((_PURPOSE, kid.encode(), user_id.encode("utf-8", "surrogatepass")))
