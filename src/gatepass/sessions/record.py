"""The session record: what a store keeps for one session.

Pure data, no I/O.  Stores serialise it with :func:`dumps` / :func:`loads`
(compact JSON), so every backend writes the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class SessionRecord:
    #: SHA-256 of the session token (hex).  The token itself is never stored.
    key: str
    user_id: str
    #: The user's roles when the session was created; kept current by the
    #: store's ``set_roles`` when an administrator changes them.
    roles: tuple[str, ...]
    created_at: float
    last_seen_at: float
    #: When the store may forget the session: the earlier of the idle and the
    #: absolute deadline.  Sliding renewal moves it forward.
    expires_at: float
    absolute_expires_at: float
    #: Seconds of inactivity after which the session ends (per session, since
    #: "remember me" sessions have a longer one).
    idle_timeout: int
    remember: bool = False
    ip: str | None = None
    user_agent: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def public_id(self) -> str:
        """An identifier safe to show and to accept in URLs.

        Derived from the key (itself a hash of the token), so it reveals
        nothing that could be used to act as the session.
        """
        return self.key[:32]

    def touched(self, now: float) -> SessionRecord:
        """This record after activity at ``now`` (sliding renewal)."""
        return replace(
            self,
            last_seen_at=now,
            expires_at=min(now + self.idle_timeout, self.absolute_expires_at),
        )

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at


_FIELDS = (
    "key", "user_id", "roles", "created_at", "last_seen_at", "expires_at",
    "absolute_expires_at", "idle_timeout", "remember", "ip", "user_agent", "data",
)  # fmt: skip


def dumps(record: SessionRecord) -> bytes:
    """Serialise a record as compact JSON (a list, to keep it small)."""
    values = [getattr(record, name) for name in _FIELDS]
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()


def loads(raw: bytes | str) -> SessionRecord:
    """Inverse of :func:`dumps`.  Raises ``ValueError`` on anything else."""
    values = json.loads(raw)
    if not isinstance(values, list) or len(values) != len(_FIELDS):
        raise ValueError("not a session record")
    kwargs = dict(zip(_FIELDS, values, strict=True))
    kwargs["roles"] = tuple(kwargs["roles"])
    return SessionRecord(**kwargs)
