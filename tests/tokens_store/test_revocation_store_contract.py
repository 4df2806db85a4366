"""One contract, every revocation store, each against its real backend.

SECURITY 10 and 15 rest on these: a denied ``jti`` stays denied until the
token would have expired anyway, and a generation bump (log out everywhere)
is never lost, even under concurrency.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from gatepass.drivers.changes import UNKNOWN
from gatepass.tokens.backends.redis import RedisRevocationStore
from gatepass.tokens.revocation import RevocationStore, family_marker
from tests.tokens_store.conftest import PERSISTENT, Backend


def jti() -> str:
    return secrets.token_urlsafe(16)


async def test_deny(revocation_store: RevocationStore) -> None:
    token = jti()
    assert not await revocation_store.is_denied(token, "alice")
    assert await revocation_store.check(token, "alice") == (False, 0)
    await revocation_store.deny(token, "alice", until=time.time() + 600)
    assert await revocation_store.is_denied(token, "alice")
    assert await revocation_store.check(token, "alice") == (True, 0)
    # Entries are per user and per jti.
    assert not await revocation_store.is_denied(token, "bob")
    assert not await revocation_store.is_denied(jti(), "alice")
    # The denylist and the allowlist do not mix.
    assert not await revocation_store.is_allowed(token, "alice")


async def test_deny_until_the_past_blocks_nothing(revocation_store: RevocationStore) -> None:
    token = jti()
    await revocation_store.deny(token, "alice", until=time.time() - 1)
    assert await revocation_store.check(token, "alice") == (False, 0)


async def test_denylist_entries_expire_with_the_token(
    backend: Backend, revocation_store: RevocationStore
) -> None:
    # Long enough that a loaded machine still sees the entry before it goes.
    token, until = jti(), time.time() + 2.0
    await revocation_store.deny(token, "alice", until=until)
    assert await revocation_store.is_denied(token, "alice")
    if isinstance(revocation_store, RedisRevocationStore):
        # Redis expires the key by its own clock; wait for it (bounded).
        deadline = time.monotonic() + 10
        while await revocation_store.is_denied(token, "alice"):
            assert time.monotonic() < deadline, "the deny entry never expired"
            await asyncio.sleep(0.05)
    else:
        backend.clock.now = until
        assert not await revocation_store.is_denied(token, "alice")
        assert await revocation_store.check(token, "alice") == (False, 0)
    assert not await revocation_store.is_denied(token, "alice")


async def test_purge_expired(backend: Backend, revocation_store: RevocationStore) -> None:
    now = time.time()
    old, live = jti(), jti()
    await revocation_store.deny(old, "alice", until=now + 0.2)
    await revocation_store.allow(old, "alice", until=now + 0.2)
    await revocation_store.deny(live, "alice", until=now + 600)
    purged = await revocation_store.purge_expired(now + 1)
    assert purged == (0 if isinstance(revocation_store, RedisRevocationStore) else 2)
    assert await revocation_store.is_denied(live, "alice")
    if not isinstance(revocation_store, RedisRevocationStore):
        # Gone from the table, whatever the clock says.
        backend.clock.now = now
        assert not await revocation_store.is_denied(old, "alice")
        assert not await revocation_store.is_allowed(old, "alice")


async def test_allowlist(revocation_store: RevocationStore) -> None:
    token = jti()
    assert await revocation_store.check_allowed(token, "alice") == (False, 0)
    await revocation_store.allow(token, "alice", until=time.time() + 600)
    assert await revocation_store.is_allowed(token, "alice")
    assert not await revocation_store.is_allowed(token, "bob")
    assert await revocation_store.check_allowed(token, "alice") == (True, 0)
    assert not await revocation_store.is_denied(token, "alice")
    await revocation_store.disallow(token, "alice")
    assert not await revocation_store.is_allowed(token, "alice")
    await revocation_store.disallow(token, "alice")  # a no-op, not an error
    await revocation_store.allow(token, "alice", until=time.time() - 1)
    assert not await revocation_store.is_allowed(token, "alice")


async def test_generation(revocation_store: RevocationStore) -> None:
    assert await revocation_store.generation("alice") == 0
    assert await revocation_store.bump_generation("alice") == 1
    assert await revocation_store.bump_generation("alice") == 2
    assert await revocation_store.generation("alice") == 2
    assert await revocation_store.generation("bob") == 0
    token = jti()
    await revocation_store.deny(token, "alice", until=time.time() + 600)
    assert await revocation_store.check(token, "alice") == (True, 2)
    assert await revocation_store.check(token, "bob") == (False, 0)
    assert await revocation_store.check_allowed(token, "alice") == (False, 2)


async def test_concurrent_bumps_lose_nothing(
    backend: Backend, revocation_store: RevocationStore
) -> None:
    # Two store objects on the same data stand for two server processes.
    other = await backend.open_revocation()
    bumps = [(revocation_store if i % 2 else other).bump_generation("alice") for i in range(50)]
    values = await asyncio.gather(*bumps)
    assert sorted(values) == list(range(1, 51))
    assert await revocation_store.generation("alice") == 50
    assert await other.generation("alice") == 50


@pytest.mark.parametrize("backend_name", PERSISTENT)
async def test_survives_a_restart(backend: Backend) -> None:
    store = await backend.open_revocation()
    token = jti()
    await store.deny(token, "alice", until=time.time() + 600)
    await store.bump_generation("alice")
    await store.close()
    restarted = await backend.open_revocation()
    assert await restarted.check(token, "alice") == (True, 1)


@pytest.mark.parametrize(
    "user_id", ["a{b}c", "}", "{", "%7B", "a}:x", "ユーザー", "user with spaces"]
)
async def test_awkward_user_ids_stay_apart(revocation_store: RevocationStore, user_id: str) -> None:
    # Cluster hash tags are built from the user id on Redis: braces and
    # escapes must neither break a lookup nor make two users collide.
    token = jti()
    await revocation_store.deny(token, user_id, until=time.time() + 600)
    await revocation_store.bump_generation(user_id)
    assert await revocation_store.check(token, user_id) == (True, 1)
    for other in ("a", "a{b", "%7B" if user_id != "%7B" else "{", "a}"):
        if other != user_id:
            assert await revocation_store.check(token, other) == (False, 0)


async def test_ping(revocation_store: RevocationStore) -> None:
    await revocation_store.ping()


# ------------------------------------------------------------ family markers


def family_id() -> str:
    return secrets.token_urlsafe(16)


async def test_a_denied_family_denies_its_tokens_in_the_same_check(
    backend: Backend, revocation_store: RevocationStore
) -> None:
    token, fid, other_fid = jti(), family_id(), family_id()
    await revocation_store.bump_generation("alice")
    assert await revocation_store.check(token, "alice", family_id=fid) == (False, 1)
    # Another instance ends the login (the family), as the token service does.
    other = await backend.open_revocation()
    await other.deny(family_marker(fid), "alice", until=time.time() + 600)
    assert await other.check(token, "alice", family_id=fid) == (True, 1)
    # A caching store hears of the other instance's write by Redis's push.
    deadline = time.monotonic() + 2
    while await revocation_store.check(token, "alice", family_id=fid) != (True, 1):
        assert time.monotonic() < deadline, "the family's denial never reached this instance"
        await asyncio.sleep(0.01)
    # Only that family: the jti alone, another family, another user are untouched.
    assert await revocation_store.check(token, "alice") == (False, 1)
    assert await revocation_store.check(token, "alice", family_id=other_fid) == (False, 1)
    assert await revocation_store.check(token, "bob", family_id=fid) == (False, 0)
    # A token denied by its own jti stays denied whatever its family.
    await revocation_store.deny(token, "alice", until=time.time() + 600)
    assert await revocation_store.check(token, "alice", family_id=other_fid) == (True, 1)


async def test_allowlist_needs_the_jti_allowed_and_the_family_alive(
    revocation_store: RevocationStore,
) -> None:
    token, fid = jti(), family_id()
    until = time.time() + 600
    assert await revocation_store.check_allowed(token, "alice", family_id=fid) == (False, 0)
    await revocation_store.allow(token, "alice", until=until)
    assert await revocation_store.check_allowed(token, "alice", family_id=fid) == (True, 0)
    await revocation_store.deny(family_marker(fid), "alice", until=until)
    assert await revocation_store.check_allowed(token, "alice", family_id=fid) == (False, 0)
    assert await revocation_store.check_allowed(token, "alice") == (True, 0)


async def test_family_markers_expire_with_the_family(
    backend: Backend, revocation_store: RevocationStore
) -> None:
    token, fid = jti(), family_id()
    # Redis expires the marker on its own clock: 2 s leaves a loaded machine
    # (a cluster client's first commands fetch the slot map) time to check
    # it before it goes; the loop below then waits for it to go.
    until = time.time() + 2
    await revocation_store.deny(family_marker(fid), "alice", until=until)
    assert (await revocation_store.check(token, "alice", family_id=fid))[0]
    if isinstance(revocation_store, RedisRevocationStore):
        deadline = time.monotonic() + 10
        while (await revocation_store.check(token, "alice", family_id=fid))[0]:
            assert time.monotonic() < deadline, "the family marker never expired"
            await asyncio.sleep(0.05)
    else:
        backend.clock.now = until
        assert await revocation_store.check(token, "alice", family_id=fid) == (False, 0)


def test_family_marker_cannot_be_a_jti() -> None:
    # jtis are unpadded base64url: no colon, so no jti spells a marker.
    assert family_marker("abc") == "family:abc"
    assert ":" not in jti()


# ------------------------------------------------------------ user ids


async def test_user_ids_are_strings(revocation_store: RevocationStore) -> None:
    token = jti()
    for call in (
        lambda: revocation_store.deny(token, 42, until=time.time() + 600),  # type: ignore[arg-type]
        lambda: revocation_store.check(token, 42),  # type: ignore[arg-type]
        lambda: revocation_store.check_allowed(token, 42),  # type: ignore[arg-type]
        lambda: revocation_store.bump_generation(42),  # type: ignore[arg-type]
        lambda: revocation_store.generation(42),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError):
            await call()
    # "42" and "0042" are two users.
    await revocation_store.deny(token, "42", until=time.time() + 600)
    await revocation_store.bump_generation("42")
    assert await revocation_store.check(token, "42") == (True, 1)
    assert await revocation_store.check(token, "0042") == (False, 0)


async def test_cached_checks_answer_as_the_store_does(revocation_store: RevocationStore) -> None:
    """``cached_check`` (the Bearer path's I/O-free read) answers exactly what
    ``check`` answers at that moment, or UNKNOWN; never a stale "good"."""
    store = revocation_store
    token, family = jti(), secrets.token_hex(16)
    until = time.time() + 600

    async def agree() -> None:
        for kind, cached, live in (
            ("deny", store.cached_check, store.check),
            ("allow", store.cached_check_allowed, store.check_allowed),
        ):
            now = await live(token, "u-cache", family_id=family)
            await live(token, "u-cache", family_id=family)  # a caching store keeps it now
            answer = cached(token, "u-cache", family_id=family)
            assert answer is UNKNOWN or answer == now, kind

    await agree()
    await store.allow(token, "u-cache", until=until)
    await agree()
    await store.deny(family_marker(family), "u-cache", until=until)
    await agree()
    await store.bump_generation("u-cache")
    await agree()
    await store.deny(token, "u-cache", until=until)
    await agree()
    assert store.cached_check(token, "u-cache", family_id=family) in (UNKNOWN, (True, 1))
