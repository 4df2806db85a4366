"""The one-time token store contract, once, against every real backend."""

from __future__ import annotations

import asyncio
import time

import pytest

from gatepass.errors import InvalidLinkToken
from gatepass.onetime.store import Grant, OneTimeTokenStore
from gatepass.onetime.tokens import OneTimeTokens, token_hash
from tests.backends import Backend


def h(n: int) -> str:
    return token_hash(f"token-{n}")


async def test_a_token_is_taken_once(store: OneTimeTokenStore) -> None:
    now = time.time()
    await store.put(h(1), purpose="reset", user_id="u1", data="a@x.test", expires_at=now + 60)
    assert await store.take(h(1), purpose="reset", now=now) == Grant("u1", "a@x.test")
    assert await store.take(h(1), purpose="reset", now=now) is None


async def test_unknown_tokens_grant_nothing(store: OneTimeTokenStore) -> None:
    assert await store.take(h(404), purpose="reset", now=time.time()) is None


async def test_an_expired_token_grants_nothing_and_is_gone(store: OneTimeTokenStore) -> None:
    now = time.time()
    await store.put(h(1), purpose="verify", user_id="u1", data="", expires_at=now + 60)
    assert await store.take(h(1), purpose="verify", now=now + 60) is None
    # Gone for good: not even a clock turned back finds it again.
    assert await store.take(h(1), purpose="verify", now=now) is None


async def test_a_token_of_another_purpose_is_refused_and_kept(store: OneTimeTokenStore) -> None:
    now = time.time()
    await store.put(h(1), purpose="verify", user_id="u1", data="", expires_at=now + 60)
    assert await store.take(h(1), purpose="reset", now=now) is None
    assert await store.take(h(1), purpose="verify", now=now) == Grant("u1", "")


async def test_drop_user_voids_that_users_tokens_of_that_purpose_only(
    store: OneTimeTokenStore,
) -> None:
    now = time.time()
    await store.put(h(1), purpose="reset", user_id="u1", data="", expires_at=now + 60)
    await store.put(h(2), purpose="reset", user_id="u1", data="", expires_at=now + 60)
    await store.put(h(3), purpose="verify", user_id="u1", data="", expires_at=now + 60)
    await store.put(h(4), purpose="reset", user_id="u2", data="", expires_at=now + 60)
    assert await store.take(h(2), purpose="reset", now=now) is not None  # already used
    assert await store.drop_user("u1", "reset") == 1
    assert await store.take(h(1), purpose="reset", now=now) is None
    assert await store.take(h(3), purpose="verify", now=now) == Grant("u1", "")
    assert await store.take(h(4), purpose="reset", now=now) == Grant("u2", "")
    assert await store.drop_user("nobody", "reset") == 0


async def test_concurrent_takes_exactly_one_wins(backend: Backend) -> None:
    """Ten takers on (for the persistent backends) ten separate store
    instances, as ten server processes would be."""
    now = time.time()
    stores = [await backend.open() for _ in range(10 if backend.persistent else 1)]
    await stores[0].put(h(7), purpose="reset", user_id="u1", data="", expires_at=now + 60)
    for _ in range(3):  # and again, with fresh tokens, to catch a lucky ordering
        results = await asyncio.gather(
            *(stores[i % len(stores)].take(h(7), purpose="reset", now=now) for i in range(10))
        )
        assert [r for r in results if r is not None] == [Grant("u1", "")]
        await stores[0].put(h(7), purpose="reset", user_id="u1", data="", expires_at=now + 60)


async def test_user_ids_are_strings(store: OneTimeTokenStore) -> None:
    now = time.time()
    with pytest.raises(TypeError):
        await store.put(h(1), purpose="reset", user_id=42, data="", expires_at=now + 60)  # type: ignore[arg-type]
    await store.put(h(1), purpose="reset", user_id="42", data="", expires_at=now + 60)
    await store.put(h(2), purpose="reset", user_id="0042", data="", expires_at=now + 60)
    assert await store.drop_user("0042", "reset") == 1
    assert await store.take(h(1), purpose="reset", now=now) == Grant("42", "")


async def test_purge_forgets_only_expired_tokens(store: OneTimeTokenStore) -> None:
    now = time.time()
    await store.put(h(1), purpose="reset", user_id="u1", data="", expires_at=now + 10)
    await store.put(h(2), purpose="reset", user_id="u1", data="", expires_at=now + 100)
    purged = await store.purge_expired(now + 50)
    assert purged in (0, 1)  # 0: a store whose keys expire by themselves
    assert await store.take(h(2), purpose="reset", now=now + 50) == Grant("u1", "")


async def test_tokens_outlive_a_restart(backend: Backend) -> None:
    if not backend.persistent:
        pytest.skip("memory keeps nothing across a restart")
    now = time.time()
    first = await backend.open()
    await first.put(h(1), purpose="verify", user_id="u1", data="d", expires_at=now + 60)
    await first.close()
    backend.opened.remove(first)
    again = await backend.open()
    assert await again.take(h(1), purpose="verify", now=now) == Grant("u1", "d")


# The service over the store: hashing, shape, lifetimes by the injected clock.


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_service_round_trip_and_expiry(store: OneTimeTokenStore) -> None:
    clock = Clock()
    tokens = OneTimeTokens(store, reset_ttl=1800, verify_ttl=172800, clock=clock)
    token = await tokens.issue("reset", "u1")
    assert len(token) == 43  # 256 bits, base64url
    assert (await tokens.redeem("reset", token)).user_id == "u1"
    with pytest.raises(InvalidLinkToken):
        await tokens.redeem("reset", token)  # used
    late = await tokens.issue("reset", "u1")
    clock.now += 1800
    with pytest.raises(InvalidLinkToken):
        await tokens.redeem("reset", late)  # expired, to the second
    verify = await tokens.issue("verify", "u1", "a@x.test")
    clock.now += 172799
    assert await tokens.redeem("verify", verify) == Grant("u1", "a@x.test")


async def test_service_stores_only_the_hash(backend: Backend) -> None:
    store = await backend.open()
    tokens = OneTimeTokens(store)
    token = await tokens.issue("reset", "u1")
    # The store answers to the hash, and the token itself is no key.
    assert await store.take(token, purpose="reset", now=time.time()) is None
    assert await store.take(token_hash(token), purpose="reset", now=time.time()) is not None


@pytest.mark.parametrize("bad", ["", "x", "a" * 42, "a" * 44, "a" * 42 + "=", None, 7, ["a"]])
async def test_service_refuses_malformed_tokens_before_the_store(
    store: OneTimeTokenStore, bad: object
) -> None:
    with pytest.raises(InvalidLinkToken):
        await OneTimeTokens(store).redeem("reset", bad)
