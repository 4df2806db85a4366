"""The factor store: each user's second factors and the pending second steps.

Two kinds of state, one protocol (they are always used together):

* **Factors**, per user: the TOTP secret (sealed, see :mod:`.crypto`), a
  pending secret between setup and confirmation, the last accepted time
  step, and the hashes of the unused recovery codes.
* **Challenges**: the ``mfa_token`` of a sign-in that passed its first step,
  keyed by the token's SHA-256 (the token itself is never stored).

Every operation that decides whether a credential may be used is one atomic
step in every backend: accepting a time step, spending a recovery code,
counting an attempt on a challenge, taking a challenge.  User ids are
``str``; every method raises :class:`~gatepass.errors.StoreUnavailable` when
the backend cannot be reached.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

#: Attempts allowed on one challenge; the next one finds it void.
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Factors:
    """A user's second factors as stored (secrets sealed)."""

    user_id: str
    #: The sealed TOTP secret, when TOTP is on.
    totp_secret: str | None = None
    #: The sealed secret of a setup not yet confirmed.
    totp_pending: str | None = None
    #: The last time step whose code was accepted (-1: none yet).
    totp_last_step: int = -1
    recovery_codes_left: int = 0

    @property
    def totp_enabled(self) -> bool:
        return self.totp_secret is not None

    @property
    def methods(self) -> tuple[str, ...]:
        """What the second step accepts, as listed in ``mfa_required``."""
        if not self.totp_enabled:
            return ()
        return ("totp", "recovery_code") if self.recovery_codes_left else ("totp",)


@dataclass(frozen=True, slots=True)
class Challenge:
    """A sign-in waiting for its second factor."""

    #: SHA-256 hex of the mfa_token.
    token_hash: str
    user_id: str
    #: Which first step made it: "login" (POST /auth/login) or "token" (POST /auth/token).
    kind: str
    #: SHA-256 of the first step's client address and user agent.
    client: str
    created_at: float
    expires_at: float
    #: What the second step needs to finish like the first would have
    #: (``remember``, ``scopes``, first-factor ``amr``).
    data: dict[str, Any] = field(default_factory=dict)

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def loads(cls, raw: str | bytes) -> Challenge:
        values = json.loads(raw)
        if not isinstance(values, dict):
            raise ValueError("not a challenge")
        return cls(**values)


class FactorStore(Protocol):
    async def get(self, user_id: str) -> Factors:
        """The user's factors (an empty :class:`Factors` when there are none)."""
        ...

    async def begin_totp(self, user_id: str, sealed_secret: str) -> None:
        """Keep ``sealed_secret`` as the pending setup (replacing an earlier one)."""
        ...

    async def enable_totp(
        self, user_id: str, sealed_secret: str, step: int, recovery_hashes: list[str]
    ) -> bool:
        """Atomically: if the pending secret is still ``sealed_secret``, make it the
        TOTP secret with ``step`` as the last used step, clear the pending one and
        replace the recovery codes.  False (nothing changed) otherwise."""
        ...

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Atomically record ``step`` as used if TOTP is on and ``step`` is later than
        the last used one; whether it was."""
        ...

    async def disable_totp(self, user_id: str) -> bool:
        """Remove the TOTP secret (and a pending one) and every recovery code;
        whether TOTP was on."""
        ...

    async def replace_recovery_codes(self, user_id: str, hashes: list[str]) -> None: ...

    async def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        """Atomically remove the code; whether it was there (each works once)."""
        ...

    async def reset(self, user_id: str) -> bool:
        """Remove every factor of the user; whether there was any."""
        ...

    async def reseal(self, user_id: str, old: str, new: str) -> bool:
        """Replace the sealed TOTP secret ``old`` by ``new`` (key rotation); whether
        ``old`` was still the secret."""
        ...

    async def create_challenge(self, challenge: Challenge) -> None: ...

    async def attempt_challenge(
        self, token_hash: str, *, now: float, limit: int = MAX_ATTEMPTS
    ) -> Challenge | None:
        """Atomically count one attempt; the challenge while it is unexpired and
        within ``limit`` attempts, else None (past the limit it is deleted)."""
        ...

    async def take_challenge(self, token_hash: str) -> bool:
        """Atomically delete the challenge; whether this call removed it (single use)."""
        ...

    async def purge_expired(self, now: float) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
