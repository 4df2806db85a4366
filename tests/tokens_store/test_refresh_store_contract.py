"""One contract, every refresh store, each against its real backend.

SECURITY 12–15: rotation, reuse detection revoking the family, exactly one
successor under concurrency, replays after a restart, absolute lifetime.
Backend-specific checks (Redis key layout and TTLs, outages) follow.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace

import pytest

from gatepass.tokens import refresh
from gatepass.tokens.backends.redis import RedisRefreshStore
from gatepass.tokens.refresh import RefreshStore, RotateOutcome
from tests.tokens_store.conftest import PERSISTENT, Backend, new_family, rotate

AWKWARD_DATA: dict[str, object] = {
    "roles": ["admin", 'r"o,le]', "ロール"],
    "nested": {"a": [1, 2.5, None, True], "b": {}, "empty": []},
    "s": 'x,"]\\\n\u2028',
}


async def test_create_get_round_trip(refresh_store: RefreshStore) -> None:
    _, family = new_family(data=AWKWARD_DATA, generation=7, now=time.time() + 0.123456789)
    await refresh_store.create(family)
    assert await refresh_store.get(family.family_id) == family
    assert await refresh_store.get(new_family()[1].family_id) is None


async def test_create_existing_id_is_refused(refresh_store: RefreshStore) -> None:
    _, family = new_family()
    await refresh_store.create(family)
    with pytest.raises(ValueError, match=r"^refresh family already exists$"):
        await refresh_store.create(replace(family, user_id="mallory", current_hash="0" * 64))
    assert await refresh_store.get(family.family_id) == family
    assert await refresh_store.list_user("mallory") == []


async def test_rotation_moves_current_to_previous(refresh_store: RefreshStore) -> None:
    token, family = new_family(data={"scope": "read"})
    await refresh_store.create(family)
    now = family.created_at + 60
    outcome, rotated, nxt = await rotate(refresh_store, token, now=now)
    assert outcome is RotateOutcome.ROTATED
    assert rotated == replace(
        family,
        current_hash=refresh.token_hash(nxt),
        previous_hash=refresh.token_hash(token),
        rotated_at=now,
    )
    assert await refresh_store.get(family.family_id) == rotated
    # The successor rotates in turn; the family's deadline never moves.
    outcome, again, _ = await rotate(refresh_store, nxt, now=now + 60)
    assert outcome is RotateOutcome.ROTATED
    assert again is not None and again.absolute_expires_at == family.absolute_expires_at


async def test_unknown_family_is_unknown(refresh_store: RefreshStore) -> None:
    token, _ = new_family()
    outcome, family, _ = await rotate(refresh_store, token, now=time.time())
    assert (outcome, family) == (RotateOutcome.UNKNOWN, None)


async def test_previous_token_within_grace_gets_the_same_successor(
    refresh_store: RefreshStore,
) -> None:
    token, family = new_family()
    await refresh_store.create(family)
    now = family.created_at
    _, rotated, nxt = await rotate(refresh_store, token, now=now)
    outcome, answer, again = await rotate(refresh_store, token, now=now + 9.999, grace=10)
    assert outcome is RotateOutcome.GRACE
    assert again == nxt and answer == rotated
    assert answer is not None and answer.current_hash == refresh.token_hash(nxt)
    assert await refresh_store.get(family.family_id) == rotated  # nothing changed


async def test_grace_ends_and_the_replay_revokes_the_family(refresh_store: RefreshStore) -> None:
    token, family = new_family()
    await refresh_store.create(family)
    now = family.created_at
    _, _, nxt = await rotate(refresh_store, token, now=now)
    # The window is half-open: exactly `grace` seconds later is too late.
    outcome, revoked, _ = await rotate(refresh_store, token, now=now + 10, grace=10)
    assert outcome is RotateOutcome.REUSED
    assert revoked is not None and revoked.revoked
    outcome, _, _ = await rotate(refresh_store, nxt, now=now + 11)
    assert outcome is RotateOutcome.REVOKED


async def test_grace_ends_once_the_successor_has_been_used(refresh_store: RefreshStore) -> None:
    t0, family = new_family()
    await refresh_store.create(family)
    now = family.created_at
    _, _, t1 = await rotate(refresh_store, t0, now=now)
    _, _, t2 = await rotate(refresh_store, t1, now=now + 1)
    # Well within grace of both rotations, but t0's successor t1 has itself
    # been rotated: the client that holds t1 moved on, so t0 is a replay.
    outcome, _, _ = await rotate(refresh_store, t0, now=now + 2, grace=60)
    assert outcome is RotateOutcome.REUSED
    assert (await rotate(refresh_store, t2, now=now + 3))[0] is RotateOutcome.REVOKED


async def test_previous_token_gets_grace_only_while_its_successor_is_current(
    refresh_store: RefreshStore,
) -> None:
    t0, family = new_family()
    await refresh_store.create(family)
    now = family.created_at
    _, _, t1 = await rotate(refresh_store, t0, now=now)
    _, _, t2 = await rotate(refresh_store, t1, now=now + 1)
    # t1 is the previous token now and t2 is current: t1 gets t2 again.
    outcome, _, again = await rotate(refresh_store, t1, now=now + 2, grace=60)
    assert (outcome, again) == (RotateOutcome.GRACE, t2)


async def test_older_token_revokes_the_family(refresh_store: RefreshStore) -> None:
    t0, family = new_family()
    await refresh_store.create(family)
    now = family.created_at
    _, _, t1 = await rotate(refresh_store, t0, now=now)
    _, _, t2 = await rotate(refresh_store, t1, now=now + 100)
    outcome, revoked, _ = await rotate(refresh_store, t0, now=now + 101, grace=3600)
    assert outcome is RotateOutcome.REUSED
    assert revoked is not None and revoked.revoked
    stored = await refresh_store.get(family.family_id)
    assert stored is not None and stored.revoked
    assert (await rotate(refresh_store, t2, now=now + 102))[0] is RotateOutcome.REVOKED
    # Every later replay is reported as one, so each is logged.
    assert (await rotate(refresh_store, t1, now=now + 103))[0] is RotateOutcome.REUSED


async def test_forged_secret_for_a_known_family_revokes_it(refresh_store: RefreshStore) -> None:
    # A store cannot tell a wrong secret from an old rotated one, so it counts
    # as reuse here.  The token service never lets such a token reach the
    # store: it checks the token's tag first (SECURITY 39; test_logins.py).
    token, family = new_family()
    await refresh_store.create(family)
    forged = f"{family.family_id}.{refresh.new_token(b'k' * 32).split('.')[1]}"
    outcome, _, _ = await rotate(refresh_store, forged, now=family.created_at)
    assert outcome is RotateOutcome.REUSED
    assert (await rotate(refresh_store, token, now=family.created_at))[0] is RotateOutcome.REVOKED


async def test_absolute_lifetime_holds_despite_rotation(refresh_store: RefreshStore) -> None:
    token, family = new_family(lifetime=300)
    await refresh_store.create(family)
    now = family.created_at
    for _ in range(5):
        now += 50
        outcome, _, token = await rotate(refresh_store, token, now=now)
        assert outcome is RotateOutcome.ROTATED
    outcome, expired, _ = await rotate(refresh_store, token, now=family.absolute_expires_at)
    assert outcome is RotateOutcome.EXPIRED
    assert expired is not None and not expired.revoked


@pytest.mark.parametrize("grace", [10.0, 0.0])
async def test_parallel_refreshes_yield_exactly_one_successor(
    backend: Backend, refresh_store: RefreshStore, grace: float
) -> None:
    # Two store objects on the same data stand for two server processes.
    other = await backend.open_refresh()
    token, family = new_family()
    await refresh_store.create(family)
    # Warm the connection pools, so the rotations below really run side by
    # side instead of queueing behind connection set-up one at a time.
    await asyncio.gather(*(s.ping() for s in (refresh_store, other) for _ in range(25)))
    now = family.created_at + 1
    calls = [
        rotate(refresh_store if i % 2 else other, token, now=now, grace=grace) for i in range(50)
    ]
    results = await asyncio.gather(*calls)
    outcomes = Counter(outcome for outcome, _, _ in results)
    expected_successor = refresh.token_hash(refresh.successor(token, b"k" * 32))
    if grace:
        assert outcomes == {RotateOutcome.ROTATED: 1, RotateOutcome.GRACE: 49}
        # Every answer names the same successor: one live token, one family.
        assert {f.current_hash for _, f, _ in results if f} == {expected_successor}
        stored = await refresh_store.get(family.family_id)
        assert stored is not None and not stored.revoked
        assert stored.current_hash == expected_successor
    else:
        assert outcomes == {RotateOutcome.ROTATED: 1, RotateOutcome.REUSED: 49}
        stored = await refresh_store.get(family.family_id)
        assert stored is not None and stored.revoked
    assert [f.family_id for f in await refresh_store.list_user("alice")] == [family.family_id]


@pytest.mark.parametrize("backend_name", PERSISTENT)
async def test_replay_after_restart_is_still_rejected(backend: Backend) -> None:
    store = await backend.open_refresh()
    t0, family = new_family()
    await store.create(family)
    _, _, t1 = await rotate(store, t0, now=family.created_at)
    await store.close()
    restarted = await backend.open_refresh()
    # Past the grace window: the replay of t0 is a reuse, on the new process.
    outcome, _, _ = await rotate(restarted, t0, now=family.created_at + 30)
    assert outcome is RotateOutcome.REUSED
    assert (await rotate(restarted, t1, now=family.created_at + 31))[0] is RotateOutcome.REVOKED


async def test_revoke(refresh_store: RefreshStore) -> None:
    token, family = new_family()
    await refresh_store.create(family)
    assert await refresh_store.revoke(family.family_id) == replace(family, revoked=True)
    assert await refresh_store.revoke(new_family()[1].family_id) is None
    assert (await rotate(refresh_store, token, now=family.created_at))[0] is RotateOutcome.REVOKED


async def test_set_data_replaces_only_the_data(refresh_store: RefreshStore) -> None:
    """Device binding (DBSC) is written into a live family's data: nothing
    else moves, a rotation afterwards keeps it, an absent family is not created."""
    token, family = new_family(data={"kind": "browser"})
    await refresh_store.create(family)
    data = {"kind": "browser", "dbsc": {"sid": "A" * 22, "jwk": {"kty": "EC"}}, **AWKWARD_DATA}
    assert await refresh_store.set_data(family.family_id, data) is True
    assert await refresh_store.get(family.family_id) == replace(family, data=data)
    outcome, rotated, _ = await rotate(refresh_store, token, now=family.created_at + 1)
    assert outcome is RotateOutcome.ROTATED and rotated is not None and rotated.data == data
    missing = new_family()[1].family_id
    assert await refresh_store.set_data(missing, data) is False
    assert await refresh_store.get(missing) is None


async def test_revoke_user_and_list_user(refresh_store: RefreshStore) -> None:
    now = time.time()
    mine = [new_family("alice", now=now + i) for i in (2, 0, 1)]
    token_b, bob = new_family("bob", now=now)
    for _, family in [*mine, (token_b, bob)]:
        await refresh_store.create(family)
    listed = await refresh_store.list_user("alice")
    assert listed == sorted((f for _, f in mine), key=lambda f: f.created_at)
    assert await refresh_store.revoke_user("alice") == 3
    assert await refresh_store.revoke_user("alice") == 0
    assert all(f.revoked for f in await refresh_store.list_user("alice"))
    for token, family in mine:
        outcome, _, _ = await rotate(refresh_store, token, now=family.created_at)
        assert outcome is RotateOutcome.REVOKED
    assert (await rotate(refresh_store, token_b, now=now))[0] is RotateOutcome.ROTATED
    assert await refresh_store.list_user("nobody") == []
    assert await refresh_store.revoke_user("nobody") == 0


async def test_purge_expired(refresh_store: RefreshStore) -> None:
    now = time.time()
    _, old = new_family(now=now - 100, lifetime=50)
    _, live = new_family(now=now)
    await refresh_store.create(old)
    await refresh_store.create(live)
    purged = await refresh_store.purge_expired(now)
    # Redis drops the family by itself (PXAT in the past): nothing to purge.
    assert purged == (0 if isinstance(refresh_store, RedisRefreshStore) else 1)
    assert await refresh_store.get(old.family_id) is None
    assert await refresh_store.get(live.family_id) == live
    assert await refresh_store.list_user("alice") == [live]


async def test_ping(refresh_store: RefreshStore) -> None:
    await refresh_store.ping()


async def test_user_ids_are_strings_and_round_trip_exactly(refresh_store: RefreshStore) -> None:
    _, numeric = new_family("x")
    with pytest.raises(TypeError):
        await refresh_store.create(replace(numeric, user_id=42))  # type: ignore[arg-type]
    for call in (refresh_store.list_user, refresh_store.revoke_user):
        with pytest.raises(TypeError):
            await call(42)  # type: ignore[arg-type]
    (_, forty_two), (_, padded) = new_family("42"), new_family("0042")
    await refresh_store.create(forty_two)
    await refresh_store.create(padded)
    assert await refresh_store.get(forty_two.family_id) == forty_two
    assert [f.family_id for f in await refresh_store.list_user("42")] == [forty_two.family_id]
    assert await refresh_store.revoke_user("0042") == 1
    got = await refresh_store.get(forty_two.family_id)
    assert got is not None and not got.revoked and type(got.user_id) is str
