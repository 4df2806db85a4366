"""One contract, every session store, each against its real backend.

memory, SQLite (a file in tmp_path), Redis and PostgreSQL (real servers, see
tests/conftest.py).  Backend-specific checks (Redis TTLs and value size,
outages) follow the shared suite.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from gatepass.errors import StoreUnavailable
from gatepass.sessions.record import SessionRecord, dumps
from gatepass.sessions.store import SessionStore
from gatepass.stores.postgres import PostgresSessionStore
from gatepass.stores.redis import RedisSessionStore
from tests.conftest import RedisServer, free_port
from tests.stores.conftest import Backend, make_record, new_key

# Field values that would break a careless encoder or the Lua splicer: JSON
# escapes, separators, brackets, non-ASCII, empty containers, full-precision
# floats.
AWKWARD = make_record(
    user_id='us"er\\,[1]{}é',
    roles=("admin", 'r"o,le]', "ロール"),
    created_at=1_700_000_000.123456,
    expires_at=time.time() + 1800.987654321,
    absolute_expires_at=time.time() + 28800.000001,
    ip=None,
    user_agent='UA "quoted", [bracketed] \\ ünïcode \u2028',
    remember=True,
    data={"cart": [], "nested": {"a": [1, 2.5, None, True], "b": {}}, "s": 'x,"]'},
)


# ---------------------------------------------------------------- core


async def test_create_then_get_round_trips(store: SessionStore) -> None:
    plain = make_record()
    await store.create(plain)
    await store.create(AWKWARD)
    assert await store.get(plain.key) == plain
    assert await store.get(AWKWARD.key) == AWKWARD


async def test_get_unknown_is_none(store: SessionStore) -> None:
    assert await store.get(new_key()) is None


async def test_touch_moves_both_deadlines_and_nothing_else(backend: Backend) -> None:
    store = backend.store
    await store.create(AWKWARD)
    seen, expires = AWKWARD.last_seen_at + 61.25, AWKWARD.expires_at + 61.000001
    assert await store.touch(AWKWARD.key, last_seen_at=seen, expires_at=expires) is True
    assert await store.get(AWKWARD.key) == replace(AWKWARD, last_seen_at=seen, expires_at=expires)
    if backend.name == "redis":
        # The key's own expiry moved with the stored deadline.
        expiry_ms = await backend.redis.client.pexpiretime(backend.redis.session_key(AWKWARD.key))
        assert expiry_ms == pytest.approx(expires * 1000, abs=1)


async def test_touch_missing_is_false_and_does_not_recreate(store: SessionStore) -> None:
    key = new_key()
    now = time.time()
    assert await store.touch(key, last_seen_at=now, expires_at=now + 60) is False
    assert await store.get(key) is None


async def test_touch_past_the_absolute_deadline_keeps_the_session_listed(
    backend: Backend,
) -> None:
    # The manager never does this, but the protocol allows it; Redis scores
    # its index by the absolute deadline and must raise the score first.
    record = make_record(expires_at=time.time() + 60, absolute_expires_at=time.time() + 120)
    await backend.store.create(record)
    later = record.absolute_expires_at + 3600
    assert await backend.store.touch(record.key, last_seen_at=time.time(), expires_at=later)
    assert [r.key for r in await backend.store.list_user("alice")] == [record.key]
    if backend.name == "redis":
        r = backend.redis
        score = await r.client.zscore(r.index_key("alice"), record.key)
        assert score is not None and score >= later
        assert await r.client.pexpiretime(r.index_key("alice")) >= int(later * 1000)


async def test_update_data_replaces_data_only(store: SessionStore) -> None:
    await store.create(AWKWARD)
    data: dict[str, object] = {"csrf": "t0k3n", "list": [], "deep": {"x": [{"y": None}]}}
    assert await store.update_data(AWKWARD.key, data) is True
    assert await store.get(AWKWARD.key) == replace(AWKWARD, data=data)
    assert await store.update_data(new_key(), {"a": 1}) is False


# ---------------------------------------------------------------- replace


async def test_replace_swaps_the_session_and_the_index(store: SessionStore) -> None:
    old = make_record()
    await store.create(old)
    new = replace(old, key=new_key(), last_seen_at=old.last_seen_at + 5)
    assert await store.replace(old.key, new) is True
    assert await store.get(old.key) is None
    assert await store.get(new.key) == new
    assert await store.list_user("alice") == [new]


async def test_replace_missing_old_stores_nothing(store: SessionStore) -> None:
    new = make_record()
    assert await store.replace(new_key(), new) is False
    assert await store.get(new.key) is None
    assert await store.list_user("alice") == []


async def _warm_up(store: SessionStore) -> None:
    # Open a connection per racer first: on a cold pool the first racer runs
    # to completion while the others are still connecting, and nothing races.
    await asyncio.gather(*(store.ping() for _ in range(50)))


async def test_concurrent_replaces_of_one_session_have_one_winner(store: SessionStore) -> None:
    await _warm_up(store)
    old = make_record()
    await store.create(old)
    news = [replace(old, key=new_key()) for _ in range(50)]
    results = await asyncio.gather(*(store.replace(old.key, n) for n in news))
    assert results.count(True) == 1
    winner = news[results.index(True)]
    assert await store.get(old.key) is None
    for n in news:
        assert await store.get(n.key) == (n if n is winner else None)
    assert await store.list_user("alice") == [winner]


async def test_log_out_everywhere_wins_over_a_concurrent_rotation(store: SessionStore) -> None:
    # Whatever the interleaving, once both are done neither the old nor the
    # rotated session may be alive: either the rotation saw the old session
    # already gone, or delete_user saw the new one.
    await _warm_up(store)
    rng = random.Random(1234)

    async def after(delay: float, call: Awaitable[object]) -> object:
        await asyncio.sleep(delay)
        return await call

    for i in range(60):
        old = make_record()
        await store.create(old)
        new = replace(old, key=new_key())
        racers = [store.replace(old.key, new), store.delete_user("alice")]
        if i % 2:
            racers.reverse()
        # Jitter of up to a millisecond shifts which steps interleave.
        await asyncio.gather(*(after(rng.random() / 1000 * (i % 3), r) for r in racers))
        assert await store.get(old.key) is None
        assert await store.get(new.key) is None
        assert await store.list_user("alice") == []


# ---------------------------------------------------------------- delete & index


async def test_delete_returns_the_record_and_unindexes_it(store: SessionStore) -> None:
    record = make_record()
    await store.create(record)
    assert await store.delete(record.key) == record
    assert await store.get(record.key) is None
    assert await store.list_user("alice") == []
    assert await store.delete(record.key) is None


async def test_list_user_is_oldest_first_and_only_that_user(store: SessionStore) -> None:
    t = time.time()
    mine = [make_record(created_at=t + offset) for offset in (3.0, 1.0, 2.0)]
    for record in mine:
        await store.create(record)
    await store.create(make_record("bob", created_at=t))
    assert await store.list_user("alice") == sorted(mine, key=lambda r: r.created_at)
    assert await store.list_user("nobody") == []


async def test_delete_user_keeps_one_and_spares_other_users(store: SessionStore) -> None:
    t = time.time()
    mine = [make_record(created_at=t + i) for i in range(4)]
    bobs = make_record("bob")
    for record in [*mine, bobs]:
        await store.create(record)
    assert await store.delete_user("alice", keep=mine[2].key) == 3
    assert await store.list_user("alice") == [mine[2]]
    assert [await store.get(r.key) for r in mine] == [None, None, mine[2], None]
    assert await store.list_user("bob") == [bobs]
    assert await store.delete_user("alice") == 1
    assert await store.list_user("alice") == []
    assert await store.delete_user("alice") == 0


async def test_set_roles_rewrites_every_session_of_the_user(store: SessionStore) -> None:
    t = time.time()
    mine = [replace(AWKWARD, key=new_key(), created_at=t + i) for i in range(3)]
    bobs = make_record("bob")
    for record in [*mine, bobs]:
        await store.create(record)
    roles = ("auditor", 'we"ird,]')
    assert await store.set_roles(AWKWARD.user_id, roles) == 3
    assert await store.list_user(AWKWARD.user_id) == [replace(r, roles=roles) for r in mine]
    assert await store.get(bobs.key) == bobs
    assert await store.set_roles(AWKWARD.user_id, ()) == 3
    assert all(r.roles == () for r in await store.list_user(AWKWARD.user_id))
    assert await store.set_roles("nobody", roles) == 0


# ---------------------------------------------------------------- expiry & health


async def test_expired_sessions_are_dropped(backend: Backend) -> None:
    store = backend.store
    t = time.time()
    stale = make_record(created_at=t, expires_at=t + 0.3)
    fresh = make_record(created_at=t + 1)
    await store.create(stale)
    await store.create(fresh)
    if backend.name == "redis":
        # Redis drops the key itself at expires_at; purge has nothing to do.
        pttl = await backend.redis.client.pttl(backend.redis.session_key(stale.key))
        assert 0 < pttl <= 300
        await asyncio.sleep(max(0.0, stale.expires_at - time.time()) + 0.05)
        assert await backend.redis.client.exists(backend.redis.session_key(stale.key)) == 0
        assert await store.purge_expired(time.time()) == 0
    else:
        assert await store.purge_expired(t) == 0
        # Expired exactly at expires_at, as SessionRecord.is_expired says.
        assert await store.purge_expired(stale.expires_at) == 1
        assert await store.purge_expired(stale.expires_at) == 0
    assert await store.get(stale.key) is None
    assert await store.get(fresh.key) == fresh
    assert await store.list_user("alice") == [fresh]


async def test_ping_answers(store: SessionStore) -> None:
    await store.ping()


# ---------------------------------------------------------------- Redis specifics


@pytest.mark.redis
@pytest.mark.parametrize("backend_name", ["redis"])
async def test_redis_layout_expiry_and_size(backend: Backend) -> None:
    r = backend.redis
    record = make_record(
        "6f1c2a4e-93d7-4c55-b0a1-2f8e7d9c3b10",
        user_agent=(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
        ),
    )
    await r.create(record)
    raw = await r.client.get(r.session_key(record.key))
    assert raw == dumps(record)
    print(f"Redis value of a typical session: {len(raw)} bytes")
    assert len(raw) < 400
    # The session key expires at expires_at, the index with its newest member.
    assert await r.client.pexpiretime(r.session_key(record.key)) == pytest.approx(
        record.expires_at * 1000, abs=1
    )
    index = r.index_key(record.user_id)
    assert await r.client.zscore(index, record.key) == record.absolute_expires_at
    assert await r.client.pexpiretime(index) == pytest.approx(
        record.absolute_expires_at * 1000, abs=1
    )


@pytest.mark.redis
@pytest.mark.parametrize("backend_name", ["redis"])
async def test_redis_index_is_trimmed_and_dead_members_are_skipped(backend: Backend) -> None:
    r = backend.redis
    t = time.time()
    alive = make_record(created_at=t)
    dead = make_record(created_at=t + 1, expires_at=t + 0.2, absolute_expires_at=t + 0.3)
    await r.create(alive)
    await r.create(dead)
    await asyncio.sleep(0.4)
    # Its key has expired; its member lingers (the index lives on for
    # ``alive``) but is not listed.
    assert await r.client.exists(r.session_key(dead.key)) == 0
    assert await r.client.zscore(r.index_key("alice"), dead.key) is not None
    assert await r.list_user("alice") == [alive]
    newer = make_record(created_at=t + 2)
    await r.create(newer)  # trims members past their absolute deadline
    members = await r.client.zrange(r.index_key("alice"), 0, -1)
    assert sorted(members) == sorted([alive.key.encode(), newer.key.encode()])


# ---------------------------------------------------------------- PostgreSQL specifics


@pytest.mark.postgres
async def test_postgres_schema_creation_survives_processes_starting_together(
    postgres_url: str,
) -> None:
    # Separate pools, as separate worker processes would have, all creating
    # the table in the same empty schema at the same moment.
    stores = [PostgresSessionStore.from_dsn(postgres_url) for _ in range(8)]
    try:
        await asyncio.gather(*(s.ping() for s in stores))
        record = make_record()
        await stores[0].create(record)
        assert await stores[-1].get(record.key) == record
    finally:
        await asyncio.gather(*(s.close() for s in stores))


# ---------------------------------------------------------------- outages


def _every_call(key: str) -> list[tuple[str, Callable[[SessionStore], Awaitable[Any]]]]:
    record = make_record(key=key)
    return [
        ("create", lambda s: s.create(record)),
        ("get", lambda s: s.get(key)),
        ("touch", lambda s: s.touch(key, last_seen_at=1.0, expires_at=2.0)),
        ("update_data", lambda s: s.update_data(key, {})),
        ("replace", lambda s: s.replace(key, record)),
        ("delete", lambda s: s.delete(key)),
        ("list_user", lambda s: s.list_user("alice")),
        ("delete_user", lambda s: s.delete_user("alice", keep=key)),
        ("set_roles", lambda s: s.set_roles("alice", ("x",))),
        ("ping", lambda s: s.ping()),
    ]


async def _assert_unavailable(store: SessionStore, name: str) -> None:
    key = new_key()
    for method, call in _every_call(key):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            await asyncio.wait_for(call(store), timeout=10)
        elapsed = time.monotonic() - started
        assert elapsed < 3, f"{method} took {elapsed:.1f}s to fail"
        assert info.value.store == name
        assert key not in str(info.value)
        assert key not in repr(info.value.__cause__), method


@pytest.mark.parametrize("name", ["redis", "postgres"])
async def test_unreachable_server_raises_store_unavailable_quickly(name: str) -> None:
    port = free_port()
    store: SessionStore
    if name == "redis":
        store = RedisSessionStore.from_url(f"redis://127.0.0.1:{port}/0")
    else:
        store = PostgresSessionStore.from_dsn(f"postgresql://postgres@127.0.0.1:{port}/test")
    try:
        await _assert_unavailable(store, name)
    finally:
        await store.close()


@pytest.mark.redis
async def test_redis_store_built_while_down_recovers_when_redis_starts(
    private_redis: RedisServer,
) -> None:
    private_redis.stop()
    store = RedisSessionStore.from_url(private_redis.url)
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
        private_redis.start()
        record = make_record()
        await store.create(record)
        assert await store.get(record.key) == record
        private_redis.stop()
        with pytest.raises(StoreUnavailable):
            await store.get(record.key)
    finally:
        await store.close()


def test_records_compare_by_value() -> None:
    # The suite leans on == between records: make sure it can fail.
    record = make_record()
    assert record != replace(record, data={"x": 1})
    assert record != replace(record, created_at=record.created_at + 1e-6)
    assert isinstance(record, SessionRecord)
