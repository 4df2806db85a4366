"""Fixed-window quotas: at most N actions per key per window.

For actions that succeed rather than fail: registrations per client address,
reset and verification mails per address and per email.  A counter in the
throttle store (hashed keys, the caller's clock), so every instance shares it.
The action is counted before it runs, refused ones included: a client that
keeps trying does not get a fresh allowance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gatepass.errors import ConfigurationError, RateLimited
from gatepass.throttle.policy import address_key, throttle_key
from gatepass.throttle.store import ThrottleStore


@dataclass(frozen=True)
class Quota:
    store: ThrottleStore
    #: What is being counted ("register", "mail"...): keeps quotas apart.
    name: str
    #: Actions allowed per key per window; 0 means no limit.
    limit: int
    window: float = 3600.0
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        if self.limit < 0 or not (math.isfinite(self.window) and self.window > 0):
            raise ConfigurationError("A quota needs a limit >= 0 and a positive window.")

    async def spend(self, *parts: str) -> None:
        """Count one action under ``parts``; RateLimited once over the limit."""
        if not self.limit:
            return
        now = self.clock()
        hit = await self.store.hit(throttle_key(f"quota:{self.name}", *parts), window=self.window,
                                   now=now)  # fmt: skip
        if hit.failures > self.limit:
            raise RateLimited(retry_after=max(1, math.ceil(round(hit.expires_at - now, 3))))

    async def spend_address(self, ip: str | None) -> None:
        """Count one action for a client address (IPv6 by /64); no address, no count."""
        address = address_key(ip)
        if address is not None:
            await self.spend("address", address)
