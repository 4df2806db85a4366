"""In-process throttle store: one server process, development and tests.

Every method runs without awaiting, so on one event loop each is atomic.
Expired rows are swept whenever the table has doubled since the last sweep,
so an attacker cycling through made-up emails cannot grow it without bound
and the sweep costs O(1) per hit on average.
"""

from __future__ import annotations

from collections.abc import Sequence

from gatepass.throttle.store import Hit

_MIN_SWEEP = 1024


class MemoryThrottleStore:
    def __init__(self) -> None:
        # key -> [count, expires_at, deadline]
        self._rows: dict[str, list[float]] = {}
        self._sweep_at = _MIN_SWEEP

    async def hit(
        self,
        key: str,
        *,
        window: float,
        now: float,
        extend_after: int | None = None,
        extend_window: float | None = None,
    ) -> Hit:
        row = self._rows.get(key)
        if row is None:
            if len(self._rows) >= self._sweep_at:
                self._sweep(now)
            row = self._rows[key] = [0, 0.0, 0.0]
        if row[1] <= now:
            row[0], row[1] = 1, now + window
        else:
            row[0] += 1
            if extend_after is not None and row[0] > extend_after:
                row[1] = max(row[1], now + (window if extend_window is None else extend_window))
        return Hit(int(row[0]), row[1])

    async def set_deadline(self, key: str, *, until: float, now: float) -> None:
        row = self._rows.setdefault(key, [0, 0.0, 0.0])
        row[2] = max(row[2], until)

    async def deadlines(self, keys: Sequence[str], *, now: float) -> list[float]:
        out: list[float] = []
        for key in keys:
            row = self._rows.get(key)
            out.append(row[2] if row is not None and row[2] > now else 0.0)
        return out

    async def clear(self, key: str) -> None:
        self._rows.pop(key, None)

    async def purge_expired(self, now: float) -> int:
        return self._sweep(now)

    def _sweep(self, now: float) -> int:
        dead = [k for k, (_, expires, until) in self._rows.items() if max(expires, until) <= now]
        for key in dead:
            del self._rows[key]
        self._sweep_at = max(_MIN_SWEEP, 2 * len(self._rows))
        return len(dead)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
