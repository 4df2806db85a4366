"""A WebAuthn authenticator in software, for the API-level tests.

It answers ``navigator.credentials.create()`` / ``get()`` options the way a
browser plus an authenticator would (attestation "none", ES256), and lets a
test do what a real one would not: leave out user verification, turn its
counter back, claim another origin or RP ID, name another user.  The
browser tests use Chromium's own virtual authenticator instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    def __init__(self, origin: str, *, backup_eligible: bool = False) -> None:
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        # 16 bytes, as platform authenticators make them (and unlike a 32-byte
        # id, not the shape the secret guard looks for in URLs that httpx logs).
        self.credential_id = os.urandom(16)
        self.counter = 0
        self.user_handle = b""
        self.backup_eligible = backup_eligible

    @property
    def id(self) -> str:
        return b64(self.credential_id)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
        encoded: bytes = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: x, -3: y})
        return encoded

    def _flags(self, uv: bool, extra: int = 0) -> int:
        return UP | (UV if uv else 0) | (BE if self.backup_eligible else 0) | extra

    def create(self, options: dict[str, Any], *, origin: str | None = None,
               rp_id: str | None = None, uv: bool = True) -> dict[str, Any]:  # fmt: skip
        rp = rp_id or options["rp"]["id"]
        self.user_handle = unb64(options["user"]["id"])
        client_data = json.dumps({
            "type": "webauthn.create", "challenge": options["challenge"],
            "origin": origin or self.origin, "crossOrigin": False,
        }).encode()  # fmt: skip
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([self._flags(uv, AT)])
            + struct.pack(">I", self.counter)
            + bytes(16)
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self._cose_key()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": self.id, "rawId": self.id, "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data), "attestationObject": b64(attestation),
                "transports": ["internal", "made-up"],
            },
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }  # fmt: skip

    def get(self, options: dict[str, Any], *, origin: str | None = None,
            rp_id: str | None = None, uv: bool = True, counter: int | None = None,
            user_handle: bytes | None = None) -> dict[str, Any]:  # fmt: skip
        rp = rp_id or options["rpId"]
        self.counter = self.counter + 1 if counter is None else counter
        client_data = json.dumps({
            "type": "webauthn.get", "challenge": options["challenge"],
            "origin": origin or self.origin, "crossOrigin": False,
        }).encode()  # fmt: skip
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([self._flags(uv)])
            + struct.pack(">I", self.counter)
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        handle = self.user_handle if user_handle is None else user_handle
        return {
            "id": self.id, "rawId": self.id, "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data), "authenticatorData": b64(auth_data),
                "signature": b64(signature), "userHandle": b64(handle),
            },
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }  # fmt: skip
