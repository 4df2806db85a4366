"""The sign-in transaction: state, nonce and PKCE verifier, bound to one browser.

Between ``/start`` and ``/callback`` the browser holds the transaction in a
short-lived ``__Host-`` cookie, sealed with AES-256-GCM under a key derived
from the server secret: the browser can neither read the verifier nor
change the ``next`` path, and any instance sharing the secret can open it.
The ``state`` in the callback URL must equal the one in the cookie, so a
callback carried into another browser (login CSRF, code injection) fails.

A sealed cookie alone could be replayed with its callback URL, so single use
is server-side: the first callback of a state takes a mark in the shared
throttle store (atomic counter; the second hit of the same key counts 2).
Nothing here is ever logged: states, nonces and verifiers are secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gatepass.cookies import CookieSpec
from gatepass.throttle.store import ThrottleStore

#: Ten minutes to get through the provider's login and consent.
TRANSACTION_TTL = 600
TRANSACTION_COOKIE = CookieSpec(name="__Host-gatepass-oauth", same_site="lax")
_AAD = b"gatepass-oauth-transaction-v1"
#: A sealed cookie is a few hundred bytes; anything larger is refused unread.
MAX_SEALED = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Transaction:
    provider: str
    state: str
    nonce: str
    #: The PKCE code_verifier (RFC 7636), 64 characters.
    verifier: str
    next_path: str
    #: Set when a signed-in user started the flow: link, don't log in afresh.
    link_user: str | None
    expires_at: float

    @classmethod
    def begin(
        cls, provider: str, next_path: str, link_user: str | None, *, now: float
    ) -> Transaction:
        return cls(
            provider=provider,
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),
            next_path=next_path,
            link_user=link_user,
            expires_at=now + TRANSACTION_TTL,
        )

    def state_matches(self, presented: str) -> bool:
        return hmac.compare_digest(self.state.encode(), presented.encode())


class TransactionSealer:
    """Seals transactions with the newest secret; opens with any of them."""

    def __init__(self, server_secrets: Sequence[bytes]) -> None:
        if not server_secrets:
            raise ValueError("at least one secret is needed")
        # One key per purpose, derived, never the CSRF secret itself.
        self._keys = [
            AESGCM(hmac.new(s, b"gatepass-oauth-transaction", hashlib.sha256).digest())
            for s in server_secrets
        ]

    def seal(self, tx: Transaction) -> str:
        nonce = os.urandom(12)
        plain = json.dumps(asdict(tx), separators=(",", ":")).encode()
        return _b64(nonce + self._keys[0].encrypt(nonce, plain, _AAD))

    def open(self, sealed: str | None, *, now: float) -> Transaction | None:
        """The transaction, or None when missing, forged, altered or expired."""
        if not sealed or len(sealed) > MAX_SEALED:
            return None
        try:
            raw = _unb64(sealed)
        except (binascii.Error, ValueError):
            return None
        if len(raw) < 12 + 16:
            return None
        for key in self._keys:
            try:
                plain = key.decrypt(raw[:12], raw[12:], _AAD)
            except InvalidTag:
                continue
            try:
                tx = Transaction(**json.loads(plain))
            except (ValueError, TypeError):
                return None
            return tx if now < tx.expires_at else None
        return None


class SingleUse:
    """Server-side "already used" marks for states, in the throttle store."""

    def __init__(self, store: ThrottleStore) -> None:
        self.store = store

    async def first_use(self, tx: Transaction, *, now: float) -> bool:
        digest = hashlib.sha256(tx.state.encode()).hexdigest()
        # Kept past the cookie's own expiry so the mark outlives the state.
        window = max(tx.expires_at - now, 0) + 60
        hit = await self.store.hit(f"oauth-state:{digest}", window=window, now=now)
        return hit.failures == 1
