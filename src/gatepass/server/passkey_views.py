"""The rows of the account page's "Passkeys" (apart from the page routes, so
:mod:`.pages` can render them without an import cycle)."""

from __future__ import annotations

from dataclasses import dataclass

from gatepass.passkeys.store import Passkey
from gatepass.server.devices import _absolute, _iso, _relative


@dataclass(frozen=True, slots=True)
class PasskeyView:
    """One row of the account page's "Passkeys"."""

    id: str
    name: str
    created: str
    created_iso: str
    last_used: str
    last_used_iso: str


def present_passkeys(passkeys: list[Passkey], *, now: float) -> list[PasskeyView]:
    return [
        PasskeyView(
            id=p.id,
            name=p.name,
            created=_absolute(p.created_at),
            created_iso=_iso(p.created_at),
            last_used="" if p.last_used_at is None else _relative(p.last_used_at, now),
            last_used_iso="" if p.last_used_at is None else _iso(p.last_used_at),
        )
        for p in passkeys
    ]
