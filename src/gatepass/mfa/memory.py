"""Factors in process memory: no ``await`` between a read and its write, so
every method is atomic on the event loop."""

from __future__ import annotations

from dataclasses import replace

from gatepass.drivers.ids import user_id as checked
from gatepass.mfa.store import MAX_ATTEMPTS, Challenge, Factors


class MemoryFactorStore:
    def __init__(self) -> None:
        self._factors: dict[str, Factors] = {}
        self._codes: dict[str, set[str]] = {}
        self._challenges: dict[str, tuple[Challenge, int]] = {}

    async def get(self, user_id: str) -> Factors:
        found = self._factors.get(checked(user_id)) or Factors(user_id)
        return replace(found, recovery_codes_left=len(self._codes.get(user_id, ())))

    async def begin_totp(self, user_id: str, sealed_secret: str) -> None:
        found = self._factors.get(checked(user_id)) or Factors(user_id)
        self._factors[user_id] = replace(found, totp_pending=sealed_secret)

    async def enable_totp(
        self, user_id: str, sealed_secret: str, step: int, recovery_hashes: list[str]
    ) -> bool:
        found = self._factors.get(checked(user_id))
        if found is None or found.totp_pending != sealed_secret:
            return False
        self._factors[user_id] = replace(
            found, totp_secret=sealed_secret, totp_pending=None, totp_last_step=step
        )
        self._codes[user_id] = set(recovery_hashes)
        return True

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        found = self._factors.get(checked(user_id))
        if found is None or found.totp_secret is None or step <= found.totp_last_step:
            return False
        self._factors[user_id] = replace(found, totp_last_step=step)
        return True

    async def disable_totp(self, user_id: str) -> bool:
        found = self._factors.pop(checked(user_id), None)
        self._codes.pop(user_id, None)
        return found is not None and found.totp_secret is not None

    async def replace_recovery_codes(self, user_id: str, hashes: list[str]) -> None:
        self._codes[checked(user_id)] = set(hashes)

    async def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        codes = self._codes.get(checked(user_id), set())
        if code_hash not in codes:
            return False
        codes.discard(code_hash)
        return True

    async def reset(self, user_id: str) -> bool:
        found = self._factors.pop(checked(user_id), None)
        codes = self._codes.pop(user_id, None)
        return found is not None or bool(codes)

    async def reseal(self, user_id: str, old: str, new: str) -> bool:
        found = self._factors.get(checked(user_id))
        if found is None or found.totp_secret != old:
            return False
        self._factors[user_id] = replace(found, totp_secret=new)
        return True

    async def create_challenge(self, challenge: Challenge) -> None:
        checked(challenge.user_id)
        self._challenges[challenge.token_hash] = (challenge, 0)

    async def attempt_challenge(
        self, token_hash: str, *, now: float, limit: int = MAX_ATTEMPTS
    ) -> Challenge | None:
        entry = self._challenges.get(token_hash)
        if entry is None:
            return None
        challenge, attempts = entry
        if now >= challenge.expires_at or attempts + 1 > limit:
            del self._challenges[token_hash]
            return None
        self._challenges[token_hash] = (challenge, attempts + 1)
        return challenge

    async def take_challenge(self, token_hash: str) -> bool:
        return self._challenges.pop(token_hash, None) is not None

    async def purge_expired(self, now: float) -> int:
        gone = [k for k, (c, _) in self._challenges.items() if now >= c.expires_at]
        for key in gone:
            del self._challenges[key]
        return len(gone)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
