"""The session record: what a store keeps for one session.

Pure data, no I/O.  Timestamps are kept to the millisecond (a record rounds
them when it is made), so every store gives back exactly what it was given
even where it keeps integers.  :func:`dumps` / :func:`loads` are the compact
encoding of the Redis store; the SQL and MongoDB stores keep one column or
field per attribute.
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

    def __post_init__(self) -> None:
        for name in _TIMES:
            object.__setattr__(self, name, from_ms(to_ms(getattr(self, name))))

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


_TIMES = ("created_at", "last_seen_at", "expires_at", "absolute_expires_at")


def to_ms(timestamp: float) -> int:
    """Epoch seconds as whole milliseconds, rounded to the nearest."""
    return round(timestamp * 1000)


def from_ms(millis: int) -> float:
    """Inverse of :func:`to_ms` for a timestamp already rounded to the millisecond."""
    return millis / 1000


# The order of the values in dumps(); the key is not among them, since the
# store keeps the record under a name made from it.
_FIELDS = (
    "user_id", "roles", "created_at", "last_seen_at", "expires_at",
    "absolute_expires_at", "idle_timeout", "remember", "ip", "user_agent", "data",
)  # fmt: skip


def dumps(record: SessionRecord) -> bytes:
    """Compact JSON: a list of the values in ``_FIELDS`` order, ``remember``
    as 0 or 1, ``created_at`` in integer milliseconds and the three other
    timestamps as milliseconds after it (``1800000``, not ``1764533100123``).

    A typical record is about 90 bytes plus its user agent.  The Redis
    store's Lua scripts splice values into this list (see
    gatepass.stores.redis), so its shape matters.
    """
    created = to_ms(record.created_at)
    values = [
        record.user_id,
        list(record.roles),
        created,
        to_ms(record.last_seen_at) - created,
        to_ms(record.expires_at) - created,
        to_ms(record.absolute_expires_at) - created,
        record.idle_timeout,
        1 if record.remember else 0,
        record.ip,
        record.user_agent,
        record.data,
    ]
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()


def loads(raw: bytes | str, key: str) -> SessionRecord:
    """Inverse of :func:`dumps` for the record stored under ``key``.

    Raises ``ValueError`` on anything else, including the twelve-value lists
    (with the key first) that releases before this one wrote.
    """
    values = json.loads(raw)
    if not isinstance(values, list) or len(values) != len(_FIELDS):
        raise ValueError("not a session record")
    user_id, roles, created, seen, expires, absolute, idle, remember, ip, agent, data = values
    return SessionRecord(
        key=key,
        user_id=user_id,
        roles=tuple(roles),
        created_at=from_ms(created),
        last_seen_at=from_ms(created + seen),
        expires_at=from_ms(created + expires),
        absolute_expires_at=from_ms(created + absolute),
        idle_timeout=idle,
        remember=bool(remember),
        ip=ip,
        user_agent=agent,
        data=data,
    )
