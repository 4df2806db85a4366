"""Login throttling: back off, never lock out.

Three rules count failed logins, each in its own bucket:

=========  ==========================  ====  ======  =======
rule       keyed on                    free  window  cap
=========  ==========================  ====  ======  =======
pair       (account, client address)   5     15 min  15 min
account    the normalised email        10    15 min  60 s
address    the client address          30    15 min  15 min
=========  ==========================  ====  ======  =======

A rule allows ``free`` failures per ``window``; every further failure opens a
back-off of 1 s, 2 s, 4 s … up to ``cap`` during which :meth:`LoginThrottle.check`
refuses with :class:`~gatepass.errors.RateLimited` *before* the password is
hashed (so a throttled guess costs us no Argon2 time either).

Why these numbers:

* **pair**: one attacker at one address on one account, the classic online
  guess.  Five tries cover the owner's typos; then the doubling reaches the
  15-minute cap after 10 more failures, so this attacker gets about
  5 + 10 + 4/hour.  The owner trying from elsewhere is not affected.
* **account**: the attacker spreading guesses over many addresses (botnet,
  or rotating a spoofed ``X-Forwarded-For``, which
  :class:`~gatepass.clientip.TrustedProxies` ignores anyway).  The cap is
  only 60 s so that the real owner, who shares this bucket, waits at most
  about a minute; with the counter kept alive while the attack lasts (below)
  that still holds every attacker together to about 60 guesses per hour per
  account, against a 64-character-capable password policy.
* **address**: one address guessing across many accounts (stuffing).
  30 leaves room for an office NAT full of typists; beyond that the address
  backs off up to 15 minutes.  IPv6 clients are keyed by their /64, the
  smallest block a subscriber is usually given: otherwise a single host
  could take a fresh address (and a fresh bucket) per guess.

A counter normally expires ``window`` after its first failure, so occasional
typos never add up.  Once a rule is past its free allowance, each failure
also extends the counter to ``window + cap`` after itself (so it outlives any
back-off by a full window): the back-off persists as long as the attack
does, and resets after ``window + cap`` of quiet.

**Known addresses.**  A rate-limited account is still a locked account while
an attacker keeps it at its cap: the owner would find it blocked most of the
time.  So a successful login remembers the (account, address) pair for
30 days, and from a remembered address the *account* rule does not apply
(the pair and address rules still do).  Only someone who knew the password
can create that mark, so it reveals nothing about which accounts exist.

A success clears the pair counter only: the account and address counters
describe what others are doing and must not be reset by the owner, or by an
attacker who owns one account and interleaves successful logins.

Unknown and existing emails are counted identically, and the outcome of
:meth:`check` depends only on the counters, never on the account existing.
Keys reach the store as SHA-256 hex of a namespaced string, so the store
never holds an email or an address in clear.  Store failures propagate as
:class:`~gatepass.errors.StoreUnavailable` (the server answers 503): a login
is never let through unthrottled.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gatepass.clientip import parse_ip
from gatepass.errors import ConfigurationError, InvalidRequest, RateLimited
from gatepass.throttle.store import ThrottleStore
from gatepass.users.emails import normalize_email

#: How long a successful (account, address) pair stays "known".
KNOWN_ADDRESS_DAYS = 30
#: The doubling stops growing here; the cap stops it long before.
_MAX_DOUBLINGS = 40


@dataclass(frozen=True)
class Rule:
    """``free`` failures per ``window`` seconds, then back-off from ``base`` doubling to ``cap``."""

    free: int
    window: float
    cap: float
    base: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.free, int) and self.free >= 0):
            raise ConfigurationError("A throttle rule's free failures must be an integer >= 0.")
        for name in ("window", "cap", "base"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigurationError(f"A throttle rule's {name} must be a positive number.")
        if self.base > self.cap:
            raise ConfigurationError("A throttle rule's base back-off exceeds its cap.")

    def backoff(self, count: int) -> float:
        """Seconds of back-off after the ``count``-th failure in the window (0: none)."""
        over = count - self.free
        if over <= 0:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(over - 1, _MAX_DOUBLINGS))


PAIR = Rule(free=5, window=15 * 60, cap=15 * 60)
ACCOUNT = Rule(free=10, window=15 * 60, cap=60)
ADDRESS = Rule(free=30, window=15 * 60, cap=15 * 60)


def throttle_key(kind: str, *parts: str) -> str:
    """The hashed store key for ``kind`` and its parts (no store sees an email or address)."""
    # "\x00" cannot occur in a normalised email or an IP string, so no two
    # different (kind, parts) produce the same preimage.
    text = "\x00".join(("gatepass-throttle-v1", kind, *parts))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _account(email: str) -> str:
    try:
        return normalize_email(email)
    except InvalidRequest:
        # Cannot name an account, so the login fails anyway; still counted
        # (for the address rule above all), under its literal spelling.
        return "invalid:" + email


def address_key(ip: str | None) -> str | None:
    """The address a rule counts: IPv4 as is, IPv6 by its /64."""
    address = parse_ip(ip) if ip is not None else None
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class LoginThrottle:
    def __init__(
        self,
        store: ThrottleStore,
        *,
        pair: Rule = PAIR,
        account: Rule = ACCOUNT,
        address: Rule = ADDRESS,
        known_address_ttl: float = KNOWN_ADDRESS_DAYS * 86400,
        clock: Callable[[], float] = time.time,
        namespace: str = "",
    ) -> None:
        """``namespace`` keeps another kind of secret's counters apart from the
        passwords' (``"mfa"``: second-factor codes, keyed on the user id rather
        than an email)."""
        if not (math.isfinite(known_address_ttl) and known_address_ttl >= 0):
            raise ConfigurationError("known_address_ttl must be a number of seconds >= 0.")
        self.store = store
        self.pair = pair
        self.account = account
        self.address = address
        self.known_address_ttl = known_address_ttl
        self.clock = clock
        self.namespace = namespace

    def _account(self, who: str) -> str:
        return f"{self.namespace}:{who}" if self.namespace else _account(who)

    def _kind(self, kind: str) -> str:
        return f"{self.namespace}:{kind}" if self.namespace else kind

    def _keys(self, email: str, ip: str | None) -> list[tuple[Rule, str]]:
        account = self._account(email)
        keys = [(self.account, throttle_key(self._kind("account"), account))]
        address = address_key(ip)
        if address is not None:
            keys.append((self.pair, throttle_key(self._kind("pair"), account, address)))
            keys.append((self.address, throttle_key(self._kind("address"), address)))
        return keys

    def _known_key(self, email: str, ip: str | None) -> str | None:
        address = address_key(ip)
        if address is None:
            return None
        return throttle_key(self._kind("known"), self._account(email), address)

    async def check(self, email: str, ip: str | None) -> None:
        """Raise RateLimited if any rule is backing off; call before hashing."""
        now = self.clock()
        keys = self._keys(email, ip)
        known = self._known_key(email, ip)
        names = [key for _, key in keys] + ([known] if known is not None else [])
        deadlines = await self.store.deadlines(names, now=now)
        if known is not None and deadlines[-1] > now:
            deadlines[0] = 0.0  # a remembered address is exempt from the account rule
            deadlines.pop()
        until = max(deadlines, default=0.0)
        if until > now:
            # To the millisecond first: a store rounding the deadline up by
            # a fraction of a millisecond must not add a whole second.
            raise RateLimited(retry_after=math.ceil(round(until - now, 3)))

    async def failure(self, email: str, ip: str | None) -> None:
        """Count a failed login (wrong password, unknown or disabled account alike)."""
        now = self.clock()
        for rule, key in self._keys(email, ip):
            # Past the allowance the counter must outlive the longest
            # back-off by a window, or the free failures would come back the
            # moment a cap-length back-off ends.
            hit = await self.store.hit(
                key,
                window=rule.window,
                now=now,
                extend_after=rule.free,
                extend_window=rule.window + rule.cap,
            )
            delay = rule.backoff(hit.failures)
            if delay:
                await self.store.set_deadline(key, until=now + delay, now=now)

    async def success(self, email: str, ip: str | None) -> None:
        """Clear the pair counter and remember the address for this account."""
        address = address_key(ip)
        if address is None:
            return
        account = self._account(email)
        await self.store.clear(throttle_key(self._kind("pair"), account, address))
        if self.known_address_ttl:
            now = self.clock()
            until = now + self.known_address_ttl
            await self.store.set_deadline(
                throttle_key(self._kind("known"), account, address), until=until, now=now
            )
