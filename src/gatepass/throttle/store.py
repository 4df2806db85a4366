"""The contract every throttle store honours.

A store keeps, per opaque key, a failure *counter* with its own expiry and a
*deadline* (the end of a back-off, or any "until" the policy wants to
remember).  Keys arrive already hashed (see :mod:`gatepass.throttle.policy`):
no store ever sees an email or an address.

All times are the caller's clock (seconds since the epoch), passed in as
``now``: the store decides "expired or not" by that clock, never its own, so
every backend behaves the same under a frozen test clock and across servers.
Stores may round times to whole milliseconds (up, for deadlines).
Backends with native expiry (Redis) also use it, but only to forget rows the
caller's clock already treats as gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable


class Hit(NamedTuple):
    #: Failures counted in the current window, this one included.
    failures: int
    #: When the counter expires (by the caller's clock).
    expires_at: float


@runtime_checkable
class ThrottleStore(Protocol):
    async def hit(
        self,
        key: str,
        *,
        window: float,
        now: float,
        extend_after: int | None = None,
        extend_window: float | None = None,
    ) -> Hit:
        """Atomically count one failure under ``key``.

        A counter that is missing or expired (``expires_at <= now``) restarts
        at 1 and expires ``window`` seconds from now.  Otherwise it goes up by
        one and keeps its expiry, except that once the count exceeds
        ``extend_after`` each hit also pushes the expiry to at least
        ``now + extend_window`` (default: ``window``): an attack keeps its
        counter alive, an occasional typo does not.  Concurrent hits each get
        a distinct count.
        """
        ...

    async def set_deadline(self, key: str, *, until: float, now: float) -> None:
        """Raise ``key``'s deadline to ``until`` (never lowers it)."""
        ...

    async def deadlines(self, keys: Sequence[str], *, now: float) -> list[float]:
        """Each key's deadline if it is still ahead of ``now``, else 0.0.

        One round trip for all keys: it runs before every login.
        """
        ...

    async def clear(self, key: str) -> None:
        """Forget the counter and the deadline of ``key``."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Delete rows whose counter and deadline are both past; returns how many.

        Stores with native expiry return 0.
        """
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
