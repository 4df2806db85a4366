"""Revoking self-contained access tokens before they expire.

A signed access token is valid until ``exp`` by itself; these records are what
make logout and "log out everywhere" reach it (ASVS 7.4.1–7.4.3):

* **denylist** (default): ``deny(jti)`` at logout; each entry lives exactly as
  long as the token it blocks, so the list holds only tokens still worth
  blocking and every lookup is one key, whatever its size;
* **allowlist** mode: a token is only good while its ``jti`` is allowed, for
  deployments that want every access token to be individually revocable by
  absence;
* **generation**: a per-user counter copied into every token (and refresh
  family) at issue.  ``bump_generation`` is the one write that ends every
  token a user holds, with no list of them needed.

Requests call :meth:`RevocationStore.check`, one round trip for both answers.
Every method raises :class:`~gatepass.errors.StoreUnavailable` when the
backend is down: a revocation check that cannot run must fail closed.
"""

from __future__ import annotations

from typing import Protocol


class RevocationStore(Protocol):
    async def deny(self, jti: str, user_id: str, *, until: float) -> None:
        """Block ``jti`` until ``until`` (the token's ``exp``), then forget it."""

    async def is_denied(self, jti: str, user_id: str) -> bool: ...

    async def allow(self, jti: str, user_id: str, *, until: float) -> None:
        """Allowlist mode: record ``jti`` as good until ``until``."""

    async def is_allowed(self, jti: str, user_id: str) -> bool: ...

    async def disallow(self, jti: str, user_id: str) -> None:
        """Allowlist mode: revoke ``jti``; a no-op when it is not allowed."""

    async def generation(self, user_id: str) -> int:
        """The user's revocation generation; 0 when never bumped."""
        ...

    async def bump_generation(self, user_id: str) -> int:
        """Atomically add one to the generation and return the new value."""
        ...

    async def check(self, jti: str, user_id: str) -> tuple[bool, int]:
        """``(is_denied, generation)`` in one round trip (the per-request path)."""
        ...

    async def check_allowed(self, jti: str, user_id: str) -> tuple[bool, int]:
        """``(is_allowed, generation)`` in one round trip, for allowlist mode."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Drop entries whose ``until`` has passed; returns how many."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
