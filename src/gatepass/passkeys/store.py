"""The passkey store: each user's WebAuthn credentials.

One record per credential, keyed by its credential id (base64url, as the
browser reports it), holding what a later assertion is checked against:
the public key (COSE, base64url), the signature counter, the transports
the authenticator named, a name the user chose, and when it was made and
last used.  The store knows nothing of ceremonies or challenges (those live
in the one-time token store, see :mod:`gatepass.passkeys.service`).

Every backend makes :meth:`PasskeyStore.record_use` one atomic
compare-and-set of the counter: of two assertions that saw the same
counter, at most one is recorded.  User ids are ``str``; every method raises
:class:`~gatepass.errors.StoreUnavailable` when the backend cannot be
reached.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Protocol

#: Passkeys one user may register.
MAX_PASSKEYS = 20
#: Longest name a passkey may have (characters).
MAX_NAME_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Passkey:
    #: The credential id, base64url without padding.
    credential_id: str
    user_id: str
    #: The COSE public key, base64url without padding.
    public_key: str
    sign_count: int
    name: str
    created_at: float
    transports: tuple[str, ...] = ()
    last_used_at: float | None = None
    #: The authenticator said the credential may be synced (backup eligible):
    #: a software-held key ("swk") rather than one bound to hardware ("hwk").
    backup_eligible: bool = False

    @property
    def id(self) -> str:
        """How the API, the pages and the logs name it: :func:`public_id`."""
        return public_id(self.credential_id)

    def with_name(self, name: str) -> Passkey:
        return replace(self, name=name)

    def as_json(self) -> dict[str, Any]:
        """What the API shows of a passkey (never its public key or credential id)."""
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "transports": list(self.transports),
        }


def public_id(credential_id: str) -> str:
    """A passkey's name in URLs, pages and logs: 96 bits of the credential id's
    SHA-256.  The credential id itself stays out of access logs (it would let
    anyone who reads them ask a browser about that account's passkey)."""
    return hashlib.sha256(credential_id.encode()).hexdigest()[:24]


def dump_transports(transports: tuple[str, ...]) -> str:
    return json.dumps(list(transports), separators=(",", ":"))


def load_transports(raw: Any) -> tuple[str, ...]:
    try:
        values = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except ValueError:
        return ()
    if not isinstance(values, list):
        return ()
    return tuple(v for v in values if isinstance(v, str))


class PasskeyStore(Protocol):
    async def add(self, passkey: Passkey) -> bool:
        """Keep a new passkey; False (nothing changed) when its credential id is
        already registered, to this user or any other."""
        ...

    async def get(self, credential_id: str) -> Passkey | None: ...

    async def list_user(self, user_id: str) -> list[Passkey]:
        """The user's passkeys, oldest first."""
        ...

    async def rename(self, user_id: str, credential_id: str, name: str) -> bool:
        """Whether the user's passkey was found (and renamed)."""
        ...

    async def remove(self, user_id: str, credential_id: str) -> bool:
        """Whether the user's passkey was there (another user's is left alone)."""
        ...

    async def remove_user(self, user_id: str) -> int:
        """Remove every passkey of the user; how many."""
        ...

    async def record_use(
        self, credential_id: str, *, seen_count: int, new_count: int, now: float
    ) -> bool:
        """Atomically: if the passkey's counter is still ``seen_count``, set it to
        ``new_count`` and its last use to ``now``; whether it was."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
