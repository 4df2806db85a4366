"""OneTimeTokens on the memory store: lifetimes per purpose, the shape check,
purposes kept apart.  The store contract (tests/onetime/test_store_contract.py)
runs the same service on every backend."""

from __future__ import annotations

import hashlib
import time

import pytest

from gatepass.errors import ConfigurationError, InvalidLinkToken
from gatepass.onetime.memory import MemoryOneTimeTokenStore
from gatepass.onetime.store import Grant
from gatepass.onetime.tokens import OneTimeTokens, token_hash


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_default_lifetimes_are_the_specs() -> None:
    tokens = OneTimeTokens(MemoryOneTimeTokenStore())
    assert tokens.ttl("reset") == 30 * 60
    assert tokens.ttl("verify") == 48 * 3600
    assert tokens.ttl("email") == 48 * 3600


@pytest.mark.parametrize(
    ("reset_ttl", "verify_ttl"),
    [
        (0, 3600),
        (-1, 3600),
        (24 * 3600 + 1, 3600),
        (1800, 0),
        (1800, -5),
        (1800, 30 * 24 * 3600 + 1),
    ],
)
def test_lifetimes_out_of_bounds_are_refused(reset_ttl: float, verify_ttl: float) -> None:
    message = "Reset links live up to 24 hours and verification links up to 30 days."
    with pytest.raises(ConfigurationError, match=f"^{message}$"):
        OneTimeTokens(MemoryOneTimeTokenStore(), reset_ttl=reset_ttl, verify_ttl=verify_ttl)


def test_the_shortest_lifetimes_are_allowed() -> None:
    tokens = OneTimeTokens(MemoryOneTimeTokenStore(), reset_ttl=1, verify_ttl=1)
    assert (tokens.ttl("reset"), tokens.ttl("verify")) == (1, 1)
    tokens = OneTimeTokens(MemoryOneTimeTokenStore(), reset_ttl=0.5, verify_ttl=0.5)
    assert (tokens.ttl("reset"), tokens.ttl("verify")) == (0.5, 0.5)


def test_the_longest_lifetimes_are_allowed() -> None:
    tokens = OneTimeTokens(
        MemoryOneTimeTokenStore(), reset_ttl=24 * 3600, verify_ttl=30 * 24 * 3600
    )
    assert (tokens.ttl("reset"), tokens.ttl("verify")) == (24 * 3600, 30 * 24 * 3600)


@pytest.mark.parametrize(("purpose", "ttl"), [("reset", 600), ("verify", 7200), ("email", 7200)])
async def test_each_purpose_lives_its_own_lifetime_to_the_second(purpose: str, ttl: int) -> None:
    clock = Clock()
    tokens = OneTimeTokens(MemoryOneTimeTokenStore(), reset_ttl=600, verify_ttl=7200, clock=clock)
    alive = await tokens.issue(purpose, "u1", "data")  # type: ignore[arg-type]
    dead = await tokens.issue(purpose, "u1")  # type: ignore[arg-type]
    clock.now += ttl - 0.5
    assert await tokens.redeem(purpose, alive) == Grant("u1", "data")  # type: ignore[arg-type]
    other = await tokens.issue(purpose, "u2")  # type: ignore[arg-type]
    assert await tokens.redeem(purpose, other) == Grant("u2", "")  # type: ignore[arg-type]
    clock.now += 0.5
    with pytest.raises(InvalidLinkToken):
        await tokens.redeem(purpose, dead)  # type: ignore[arg-type]


async def test_a_token_works_once_and_for_its_purpose_only() -> None:
    tokens = OneTimeTokens(MemoryOneTimeTokenStore())
    token = await tokens.issue("verify", "u1")
    with pytest.raises(InvalidLinkToken):
        await tokens.redeem("reset", token)
    with pytest.raises(InvalidLinkToken):
        await tokens.redeem("email", token)
    assert (await tokens.redeem("verify", token)).user_id == "u1"
    with pytest.raises(InvalidLinkToken):
        await tokens.redeem("verify", token)


async def test_issued_tokens_are_fresh_256_bit_base64url() -> None:
    tokens = OneTimeTokens(MemoryOneTimeTokenStore())
    issued = {await tokens.issue("reset", "u1") for _ in range(20)}
    assert len(issued) == 20
    for token in issued:
        assert len(token) == 43 and set(token) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


async def test_the_store_keeps_the_sha256_only() -> None:
    store = MemoryOneTimeTokenStore()
    tokens = OneTimeTokens(store)
    token = await tokens.issue("reset", "u1")
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert await store.take(token, purpose="reset", now=time.time()) is None
    assert await store.take(token_hash(token), purpose="reset", now=time.time()) is not None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a" * 42,
        "a" * 44,
        "a" * 42 + "=",
        "a" * 42 + "+",
        "a" * 42 + "/",
        "a" * 42 + ".",
        "a" * 42 + "\n",
        " " + "a" * 42,
        None,
        7,
        b"a" * 43,
        ["a" * 43],
    ],
)
async def test_malformed_tokens_are_refused_before_the_store(bad: object) -> None:
    class Untouchable(MemoryOneTimeTokenStore):
        async def take(self, token_hash: str, *, purpose: str, now: float) -> Grant | None:
            raise AssertionError("a malformed token reached the store")

    with pytest.raises(InvalidLinkToken):
        await OneTimeTokens(Untouchable()).redeem("reset", bad)


async def test_a_well_formed_unknown_token_is_refused() -> None:
    with pytest.raises(InvalidLinkToken):
        await OneTimeTokens(MemoryOneTimeTokenStore()).redeem("reset", "A" * 43)


async def test_void_ends_the_users_tokens_of_that_purpose_only() -> None:
    tokens = OneTimeTokens(MemoryOneTimeTokenStore())
    reset = await tokens.issue("reset", "u1")
    verify = await tokens.issue("verify", "u1")
    other = await tokens.issue("reset", "u2")
    assert await tokens.void("reset", "u1") == 1
    with pytest.raises(InvalidLinkToken):
        await tokens.redeem("reset", reset)
    assert (await tokens.redeem("verify", verify)).user_id == "u1"
    assert (await tokens.redeem("reset", other)).user_id == "u2"
