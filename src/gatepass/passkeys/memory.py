"""Passkeys in process memory: no ``await`` between a read and its write, so
every method is atomic on the event loop."""

from __future__ import annotations

from dataclasses import replace

from gatepass.drivers.ids import user_id as checked
from gatepass.passkeys.store import Passkey


class MemoryPasskeyStore:
    def __init__(self) -> None:
        self._passkeys: dict[str, Passkey] = {}

    async def add(self, passkey: Passkey) -> bool:
        checked(passkey.user_id)
        if passkey.credential_id in self._passkeys:
            return False
        self._passkeys[passkey.credential_id] = passkey
        return True

    async def get(self, credential_id: str) -> Passkey | None:
        return self._passkeys.get(credential_id)

    async def list_user(self, user_id: str) -> list[Passkey]:
        checked(user_id)
        found = [p for p in self._passkeys.values() if p.user_id == user_id]
        return sorted(found, key=lambda p: (p.created_at, p.credential_id))

    async def rename(self, user_id: str, credential_id: str, name: str) -> bool:
        found = self._passkeys.get(credential_id)
        if found is None or found.user_id != checked(user_id):
            return False
        self._passkeys[credential_id] = replace(found, name=name)
        return True

    async def remove(self, user_id: str, credential_id: str) -> bool:
        found = self._passkeys.get(credential_id)
        if found is None or found.user_id != checked(user_id):
            return False
        del self._passkeys[credential_id]
        return True

    async def remove_user(self, user_id: str) -> int:
        gone = [k for k, p in self._passkeys.items() if p.user_id == checked(user_id)]
        for key in gone:
            del self._passkeys[key]
        return len(gone)

    async def record_use(
        self, credential_id: str, *, seen_count: int, new_count: int, now: float
    ) -> bool:
        found = self._passkeys.get(credential_id)
        if found is None or found.sign_count != seen_count:
            return False
        self._passkeys[credential_id] = replace(found, sign_count=new_count, last_used_at=now)
        return True

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
