"""Issuing and redeeming the tokens that mailed links carry.

Pure logic over a :class:`~gatepass.onetime.store.OneTimeTokenStore`: the
token is 256 random bits (``secrets``), the store keeps only its SHA-256,
and redeeming takes it (single use).  Lifetimes per purpose are set once;
the clock is injected so tests move time instead of sleeping.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from gatepass.errors import ConfigurationError, InvalidLinkToken
from gatepass.onetime.store import Grant, OneTimeTokenStore

#: ``email``: an email change, the link mailed to the new address (it lives
#: as long as a verification link).
Purpose = Literal["reset", "verify", "email"]

#: What ``secrets.token_urlsafe(32)`` produces: 43 base64url characters.
#: Anything else is refused before it reaches the store.
_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class OneTimeTokens:
    store: OneTimeTokenStore
    #: Seconds a reset link works (SPEC: 30 minutes).
    reset_ttl: float = 30 * 60
    #: Seconds a verification link works (SPEC: 48 hours).
    verify_ttl: float = 48 * 3600
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        if not (0 < self.reset_ttl <= 24 * 3600 and 0 < self.verify_ttl <= 30 * 24 * 3600):
            raise ConfigurationError(
                "Reset links live up to 24 hours and verification links up to 30 days."
            )

    def ttl(self, purpose: Purpose) -> float:
        return self.reset_ttl if purpose == "reset" else self.verify_ttl

    async def issue(self, purpose: Purpose, user_id: str, data: str = "") -> str:
        """A new token for ``purpose``; the only copy is the one returned."""
        token = secrets.token_urlsafe(32)
        await self.store.put(
            token_hash(token), purpose=purpose, user_id=user_id, data=data,
            expires_at=self.clock() + self.ttl(purpose),
        )  # fmt: skip
        return token

    async def redeem(self, purpose: Purpose, token: object) -> Grant:
        """Use a token up; InvalidLinkToken when it is malformed, unknown,
        used, void, expired or for another purpose (one answer for all)."""
        if not isinstance(token, str) or not _SHAPE.fullmatch(token):
            raise InvalidLinkToken()
        grant = await self.store.take(token_hash(token), purpose=purpose, now=self.clock())
        if grant is None:
            raise InvalidLinkToken()
        return grant

    async def void(self, purpose: Purpose, user_id: str) -> int:
        """Every outstanding token of the user for ``purpose`` stops working."""
        return await self.store.drop_user(user_id, purpose)
