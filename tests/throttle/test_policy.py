"""LoginThrottle with a hand-moved clock: memory store, then every real store."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from gatepass.clientip import TrustedProxies
from gatepass.errors import ConfigurationError, RateLimited, StoreUnavailable
from gatepass.throttle.memory import MemoryThrottleStore
from gatepass.throttle.mongodb import MongoThrottleStore
from gatepass.throttle.policy import ACCOUNT, ADDRESS, PAIR, LoginThrottle, Rule
from gatepass.throttle.postgres import PostgresThrottleStore
from gatepass.throttle.redis import RedisThrottleStore
from gatepass.throttle.sqlite import SQLiteThrottleStore
from gatepass.throttle.store import ThrottleStore
from tests.conftest import free_port
from tests.throttle.conftest import FakeClock

VICTIM = "victim@example.com"
ATTACKER_IP = "198.51.100.7"
OWNER_IP = "203.0.113.20"


@pytest.fixture
def throttle(clock: FakeClock) -> LoginThrottle:
    return LoginThrottle(MemoryThrottleStore(), clock=clock)


def addresses() -> Iterator[str]:
    """A botnet: a different IPv4 address for every guess."""
    for n in itertools.count(1):
        yield f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


async def retry_after(throttle: LoginThrottle, email: str, ip: str | None) -> int:
    """Seconds the throttle makes this caller wait (0: may try now)."""
    try:
        await throttle.check(email, ip)
    except RateLimited as exc:
        return exc.retry_after
    return 0


async def guess(throttle: LoginThrottle, clock: FakeClock, email: str, ip: str | None) -> int:
    """One patient wrong guess: wait out any back-off, then fail.  Returns the wait."""
    wait = await retry_after(throttle, email, ip)
    clock.advance(wait)
    assert await retry_after(throttle, email, ip) == 0, "the wait announced was not enough"
    await throttle.failure(email, ip)
    return wait


# ---------------------------------------------------------------- rules


def test_backoff_doubles_from_base_and_stops_at_the_cap() -> None:
    rule = Rule(free=3, window=60, cap=10)
    assert [rule.backoff(n) for n in range(1, 10)] == [0, 0, 0, 1, 2, 4, 8, 10, 10]
    assert rule.backoff(10**9) == 10  # no overflow on absurd counts


@pytest.mark.parametrize(
    "fields",
    [
        {"free": -1, "window": 60, "cap": 10},
        {"free": 1.5, "window": 60, "cap": 10},
        {"free": 1, "window": 0, "cap": 10},
        {"free": 1, "window": float("inf"), "cap": 10},
        {"free": 1, "window": 60, "cap": float("nan")},
        {"free": 1, "window": 60, "cap": 1, "base": 2},
    ],
)
def test_invalid_rules_are_refused_at_construction(fields: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        Rule(**fields)  # type: ignore[arg-type]


def test_default_numbers() -> None:
    assert (PAIR.free, PAIR.window, PAIR.cap) == (5, 900, 900)
    assert (ACCOUNT.free, ACCOUNT.window, ACCOUNT.cap) == (10, 900, 60)
    assert (ADDRESS.free, ADDRESS.window, ADDRESS.cap) == (30, 900, 900)


# ---------------------------------------------------------------- SECURITY.md case 30


async def test_twenty_bad_passwords_from_one_address_are_throttled(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    for _ in range(5):
        await throttle.failure(VICTIM, ATTACKER_IP)
        assert await retry_after(throttle, VICTIM, ATTACKER_IP) == 0  # five free
    await throttle.failure(VICTIM, ATTACKER_IP)
    assert await retry_after(throttle, VICTIM, ATTACKER_IP) == 1
    waits = [await guess(throttle, clock, VICTIM, ATTACKER_IP) for _ in range(14)]
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]
    # After 20 failures: refused for the full pair cap, a sane Retry-After.
    assert await retry_after(throttle, VICTIM, ATTACKER_IP) == 900


async def test_rotating_x_forwarded_for_from_an_untrusted_peer_changes_nothing(
    throttle: LoginThrottle,
) -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    for n in range(6):
        ip = proxies.client_ip(ATTACKER_IP, f"192.0.2.{n}, 10.0.0.{n}")
        assert ip == ATTACKER_IP
        await throttle.failure(VICTIM, ip)
    assert await retry_after(throttle, VICTIM, proxies.client_ip(ATTACKER_IP, "192.0.2.99")) == 1


async def test_rotating_real_addresses_does_not_reset_the_account_rule(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    ips = addresses()
    for _ in range(10):
        await throttle.failure(VICTIM, next(ips))
    await throttle.failure(VICTIM, next(ips))
    assert await retry_after(throttle, VICTIM, next(ips)) == 1  # even from a fresh address
    assert await retry_after(throttle, VICTIM, None) == 1
    assert await retry_after(throttle, "someone.else@example.com", next(ips)) == 0
    # A sustained botnet gets about one guess a minute: the counter does not
    # reset while the attack goes on.
    for _ in range(10):
        await guess(throttle, clock, VICTIM, next(ips))
    started = clock.now
    for _ in range(120):
        await guess(throttle, clock, VICTIM, next(ips))
    assert clock.now - started >= 119 * 60
    # ...and it all resets after a quiet window.
    clock.advance(ACCOUNT.window + ACCOUNT.cap)
    for _ in range(10):
        await throttle.failure(VICTIM, next(ips))
    assert await retry_after(throttle, VICTIM, next(ips)) == 0


async def test_the_owner_elsewhere_waits_at_most_the_account_cap(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    ips = addresses()
    for _ in range(40):
        await guess(throttle, clock, VICTIM, next(ips))
    wait = await retry_after(throttle, VICTIM, OWNER_IP)
    assert 1 <= wait <= 60
    clock.advance(wait)
    assert await retry_after(throttle, VICTIM, OWNER_IP) == 0
    await throttle.success(VICTIM, OWNER_IP)


async def test_a_known_address_is_exempt_from_the_account_rule_only(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    await throttle.success(VICTIM, OWNER_IP)
    ips = addresses()
    for _ in range(30):
        await guess(throttle, clock, VICTIM, next(ips))
    assert await retry_after(throttle, VICTIM, next(ips)) > 0
    assert await retry_after(throttle, VICTIM, OWNER_IP) == 0  # the owner at home
    # The pair rule still guards the known address (an attacker on the same NAT).
    for _ in range(6):
        await throttle.failure(VICTIM, OWNER_IP)
    assert await retry_after(throttle, VICTIM, OWNER_IP) == 1
    # The mark lapses.
    clock.advance(31 * 86400)
    for _ in range(11):
        await throttle.failure(VICTIM, next(ips))
    assert await retry_after(throttle, VICTIM, "192.0.2.1") == 1


async def test_success_clears_the_pair_rule_only(throttle: LoginThrottle) -> None:
    for _ in range(8):
        await throttle.failure(VICTIM, ATTACKER_IP)
    assert await retry_after(throttle, VICTIM, ATTACKER_IP) == 4
    await throttle.success(VICTIM, ATTACKER_IP)
    assert await retry_after(throttle, VICTIM, ATTACKER_IP) == 0
    # The account counter still stands at 8 (seen from an unknown address)...
    other = "192.0.2.50"
    for _ in range(3):
        await throttle.failure(VICTIM, other)
    assert await retry_after(throttle, VICTIM, other) == 1
    # ...and the pair counter restarted: five free again.
    for _ in range(4):
        await throttle.failure(VICTIM, ATTACKER_IP)
    assert await retry_after(throttle, VICTIM, ATTACKER_IP) == 0


async def test_one_address_guessing_many_accounts_backs_off(throttle: LoginThrottle) -> None:
    for n in range(31):
        await throttle.failure(f"user{n}@example.com", ATTACKER_IP)
    assert await retry_after(throttle, "fresh@example.com", ATTACKER_IP) == 1
    assert await retry_after(throttle, "fresh@example.com", OWNER_IP) == 0


async def test_ipv6_hosts_in_one_64_share_a_bucket(throttle: LoginThrottle) -> None:
    for n in range(31):
        await throttle.failure(f"user{n}@example.com", f"2001:db8:1:2::{n:x}")
    assert await retry_after(throttle, "x@example.com", "2001:db8:1:2:ffff::1") == 1
    assert await retry_after(throttle, "x@example.com", "2001:db8:1:3::1") == 0


async def test_spellings_of_one_email_share_a_bucket(throttle: LoginThrottle) -> None:
    spellings = ["Victim@Example.COM", " victim@example.com", "ｖｉｃｔｉｍ@example.com",
                 "vic\u200btim@example.com"]  # fmt: skip
    ips = addresses()
    for spelling in itertools.islice(itertools.cycle(spellings), 11):
        await throttle.failure(spelling, next(ips))
    assert await retry_after(throttle, VICTIM, next(ips)) == 1


async def test_unknown_and_invalid_emails_are_counted_like_any_other(
    throttle: LoginThrottle,
) -> None:
    # The policy never looks an account up: "nobody@" is throttled exactly
    # like the victim, so the answer reveals nothing.
    for email in ("nobody@example.com", VICTIM):
        for _ in range(6):
            await throttle.failure(email, ATTACKER_IP)
        assert await retry_after(throttle, email, ATTACKER_IP) == 1
    for _ in range(6):
        await throttle.failure("not an email", "192.0.2.9")
    assert await retry_after(throttle, "not an email", "192.0.2.9") == 1


# ---------------------------------------------------------------- every real store


async def _stored_text(store: ThrottleStore) -> str:
    if isinstance(store, MemoryThrottleStore):
        return repr(store._rows)
    if isinstance(store, SQLiteThrottleStore):
        rows = await store.db.run(
            lambda conn: conn.execute("SELECT * FROM gatepass_throttle").fetchall()
        )
        return repr(rows)
    if isinstance(store, RedisThrottleStore):
        keys = [k async for k in store.client.scan_iter(match=f"{store.prefix}*")]
        return repr([(k, await store.client.hgetall(k)) for k in keys])
    if isinstance(store, MongoThrottleStore):
        rows = await store.conn.db["gatepass_throttle"].find().to_list()
        assert rows, "nothing stored: the check would pass vacuously"
        return repr(rows)
    assert isinstance(store, PostgresThrottleStore)
    async with store.pool.connection() as conn:
        return repr(await conn.fetch("SELECT * FROM gatepass_throttle"))


async def test_the_scenario_on_every_store(store: ThrottleStore, clock: FakeClock) -> None:
    throttle = LoginThrottle(store, clock=clock)
    waits = [await guess(throttle, clock, VICTIM, ATTACKER_IP) for _ in range(20)]
    assert waits[:6] == [0, 0, 0, 0, 0, 0] and waits[6:11] == [1, 2, 4, 8, 16]
    assert await retry_after(throttle, VICTIM, ATTACKER_IP) == 900
    wait = await retry_after(throttle, VICTIM, OWNER_IP)
    assert 1 <= wait <= 60
    clock.advance(wait)
    assert await retry_after(throttle, VICTIM, OWNER_IP) == 0
    await throttle.success(VICTIM, OWNER_IP)
    await throttle.failure(VICTIM, "2001:db8::1")
    # Hashed keys only: no email or address in clear anywhere in the store.
    text = await _stored_text(store)
    for secret in ("victim", "example", ATTACKER_IP, OWNER_IP, "2001:db8"):
        assert secret not in text


@pytest.mark.parametrize("name", ["redis", "postgres", "mongodb"])
async def test_an_outage_refuses_instead_of_letting_logins_through(name: str) -> None:
    port = free_port()
    store: ThrottleStore
    if name == "redis":
        store = RedisThrottleStore.from_url(f"redis://127.0.0.1:{port}/0")
    elif name == "mongodb":
        store = MongoThrottleStore.from_url(f"mongodb://127.0.0.1:{port}/test")
    else:
        store = PostgresThrottleStore.from_dsn(f"postgresql://postgres@127.0.0.1:{port}/test")
    throttle = LoginThrottle(store)
    try:
        for call in (throttle.check, throttle.failure, throttle.success):
            with pytest.raises(StoreUnavailable):
                await call(VICTIM, ATTACKER_IP)
    finally:
        await store.close()
