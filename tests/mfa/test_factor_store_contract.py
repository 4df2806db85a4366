"""One contract, every factor store backend (see conftest.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gatepass.mfa.store import Challenge, FactorStore
from tests.backends import Backend


def challenge(token_hash: str = "a" * 64, *, user_id: str = "alice", ttl: float = 300.0,
              now: float | None = None) -> Challenge:  # fmt: skip
    now = time.time() if now is None else now
    return Challenge(
        token_hash=token_hash, user_id=user_id, kind="login", client="c" * 64,
        created_at=now, expires_at=now + ttl, data={"remember": True, "amr": ["pwd"]},
    )  # fmt: skip


async def enabled(store: FactorStore, user_id: str = "alice", *, step: int = 100,
                  codes: tuple[str, ...] = ("h1", "h2")) -> None:  # fmt: skip
    await store.begin_totp(user_id, "sealed-1")
    assert await store.enable_totp(user_id, "sealed-1", step, list(codes))


async def test_a_user_without_factors(store: FactorStore) -> None:
    factors = await store.get("nobody")
    assert factors.user_id == "nobody"
    assert not factors.totp_enabled and factors.totp_pending is None
    assert factors.methods == () and factors.recovery_codes_left == 0


async def test_setup_is_pending_until_enabled(store: FactorStore) -> None:
    await store.begin_totp("alice", "sealed-1")
    factors = await store.get("alice")
    assert factors.totp_pending == "sealed-1" and not factors.totp_enabled
    assert factors.methods == ()
    # A second setup replaces the first; confirming the first now fails.
    await store.begin_totp("alice", "sealed-2")
    assert not await store.enable_totp("alice", "sealed-1", 5, ["h"])
    assert await store.enable_totp("alice", "sealed-2", 5, ["h1", "h2"])
    factors = await store.get("alice")
    assert factors.totp_secret == "sealed-2" and factors.totp_pending is None
    assert factors.totp_last_step == 5 and factors.recovery_codes_left == 2
    assert factors.methods == ("totp", "recovery_code")


async def test_each_step_is_accepted_once_and_never_an_earlier_one(store: FactorStore) -> None:
    await enabled(store, step=100)
    assert not await store.use_totp_step("alice", 100)  # the confirming code's step
    assert await store.use_totp_step("alice", 101)
    assert not await store.use_totp_step("alice", 101)
    assert not await store.use_totp_step("alice", 99)
    assert await store.use_totp_step("alice", 103)
    assert (await store.get("alice")).totp_last_step == 103


async def test_steps_need_totp_on(store: FactorStore) -> None:
    assert not await store.use_totp_step("alice", 1)
    await store.begin_totp("alice", "sealed-1")
    assert not await store.use_totp_step("alice", 1)


async def test_concurrent_uses_of_one_step_accept_exactly_one(store: FactorStore) -> None:
    await enabled(store, step=1)
    results = await asyncio.gather(*(store.use_totp_step("alice", 2) for _ in range(20)))
    assert results.count(True) == 1


async def test_recovery_codes_are_single_use(store: FactorStore) -> None:
    await enabled(store, codes=("h1", "h2", "h3"))
    assert await store.use_recovery_code("alice", "h2")
    assert not await store.use_recovery_code("alice", "h2")
    assert not await store.use_recovery_code("alice", "unknown")
    assert not await store.use_recovery_code("bob", "h1")  # another user's code
    assert (await store.get("alice")).recovery_codes_left == 2
    results = await asyncio.gather(*(store.use_recovery_code("alice", "h1") for _ in range(20)))
    assert results.count(True) == 1


async def test_replacing_recovery_codes_voids_the_old_ones(store: FactorStore) -> None:
    await enabled(store, codes=("old1", "old2"))
    await store.replace_recovery_codes("alice", ["new1", "new2", "new3"])
    assert not await store.use_recovery_code("alice", "old1")
    assert await store.use_recovery_code("alice", "new3")
    assert (await store.get("alice")).recovery_codes_left == 2


async def test_disable_removes_the_secret_and_the_codes(store: FactorStore) -> None:
    await enabled(store)
    assert await store.disable_totp("alice")
    factors = await store.get("alice")
    assert not factors.totp_enabled and factors.recovery_codes_left == 0
    assert not await store.use_recovery_code("alice", "h1")
    assert not await store.disable_totp("alice")


async def test_reset_removes_everything(store: FactorStore) -> None:
    assert not await store.reset("alice")
    await enabled(store)
    await store.enable_totp("bob", "x", 1, [])  # nothing pending for bob: no-op
    assert await store.reset("alice")
    assert (await store.get("alice")).methods == ()
    assert not await store.reset("alice")


async def test_reseal_replaces_only_the_current_secret(store: FactorStore) -> None:
    await enabled(store)
    assert not await store.reseal("alice", "not-it", "sealed-2")
    assert await store.reseal("alice", "sealed-1", "sealed-2")
    assert (await store.get("alice")).totp_secret == "sealed-2"


async def test_users_are_apart(store: FactorStore) -> None:
    await enabled(store, "alice")
    assert (await store.get("bob")).methods == ()
    assert not await store.use_totp_step("bob", 1000)


async def test_user_ids_are_strings(store: FactorStore) -> None:
    with pytest.raises(TypeError):
        await store.get(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await store.begin_totp(42, "s")  # type: ignore[arg-type]
    await enabled(store, "42")
    assert (await store.get("0042")).methods == ()
    assert (await store.get("42")).totp_enabled


async def test_a_challenge_allows_limit_attempts_then_is_void(store: FactorStore) -> None:
    now = time.time()
    await store.create_challenge(challenge(now=now))
    for _ in range(5):
        found = await store.attempt_challenge("a" * 64, now=now, limit=5)
        assert found is not None and found.user_id == "alice"
        assert found.data == {"remember": True, "amr": ["pwd"]}
    assert await store.attempt_challenge("a" * 64, now=now, limit=5) is None
    assert await store.attempt_challenge("a" * 64, now=now, limit=5) is None
    assert not await store.take_challenge("a" * 64)


async def test_concurrent_attempts_never_exceed_the_limit(store: FactorStore) -> None:
    now = time.time()
    await store.create_challenge(challenge(now=now))
    found = await asyncio.gather(
        *(store.attempt_challenge("a" * 64, now=now, limit=5) for _ in range(30))
    )
    assert sum(1 for c in found if c is not None) == 5


async def test_a_challenge_is_taken_once(store: FactorStore) -> None:
    await store.create_challenge(challenge())
    results = await asyncio.gather(*(store.take_challenge("a" * 64) for _ in range(10)))
    assert results.count(True) == 1
    assert await store.attempt_challenge("a" * 64, now=time.time()) is None


async def test_an_expired_challenge_is_gone(store: FactorStore) -> None:
    now = time.time()
    await store.create_challenge(challenge(now=now, ttl=60))
    assert await store.attempt_challenge("a" * 64, now=now + 61) is None
    assert await store.attempt_challenge("a" * 64, now=now) is None  # deleted on sight


async def test_purge_removes_expired_challenges(store: FactorStore, backend: Backend) -> None:
    now = time.time()
    await store.create_challenge(challenge("b" * 64, now=now - 400))  # long expired
    await store.create_challenge(challenge("c" * 64, now=now))
    removed = await store.purge_expired(now)
    # Redis expires challenges by their own TTL (0 purged, already gone);
    # so may MongoDB's TTL index (the emulator applies it on every read).
    if backend.name.startswith("redis"):
        assert removed == 0
    elif backend.name == "mongodb":
        assert removed in (0, 1)
    else:
        assert removed == 1
    assert await store.attempt_challenge("b" * 64, now=now - 300) is None
    assert await store.attempt_challenge("c" * 64, now=now) is not None


async def test_state_survives_a_restart(backend: Backend) -> None:
    if not backend.persistent:
        pytest.skip("memory keeps nothing across processes")
    first = await backend.open()
    await enabled(first, step=7, codes=("h1",))
    await first.create_challenge(challenge())
    await first.close()
    backend.opened.remove(first)
    second = await backend.open()
    factors = await second.get("alice")
    assert factors.totp_secret == "sealed-1" and factors.totp_last_step == 7
    assert not await second.use_totp_step("alice", 7)
    assert await second.use_recovery_code("alice", "h1")
    assert await second.attempt_challenge("a" * 64, now=time.time()) is not None


async def test_two_instances_see_one_state(backend: Backend, store: FactorStore) -> None:
    other = await backend.open()
    await enabled(store, step=10)
    assert await other.use_totp_step("alice", 11)
    assert not await store.use_totp_step("alice", 11)
