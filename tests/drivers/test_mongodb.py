"""The MongoDB driver: URLs, one client per URL, indexes, round trips, outages, logs.

Against the nx-27017 wire-protocol emulator (tests/conftest.py), not a real
MongoDB server: none installs here (see docs/storage.md).
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from gatepass.drivers import (
    open_identity_store,
    open_refresh_store,
    open_revocation_store,
    open_session_store,
    open_throttle_store,
    open_user_store,
)
from gatepass.drivers.mongodb import MongoConnection
from gatepass.drivers.opener import open_factor_store, open_one_time_token_store
from gatepass.errors import ConfigurationError, StoreUnavailable
from gatepass.mfa.store import Challenge
from gatepass.oauth.identities import ExternalIdentity
from gatepass.stores.mongodb import MongoSessionStore
from tests.conftest import MongoServer, free_port
from tests.stores.conftest import make_record

pytestmark = pytest.mark.mongodb

OPENERS = [
    open_session_store,
    open_refresh_store,
    open_revocation_store,
    open_throttle_store,
    open_user_store,
    open_identity_store,
    open_factor_store,
    open_one_time_token_store,
]


async def _use(store: object) -> None:
    """One operation that must reach the server, whatever the kind of store."""
    if isinstance(store, MongoSessionStore):
        await store.get("k" * 64)
    elif hasattr(store, "deadlines"):
        await store.deadlines(["k"], now=time.time())
    elif hasattr(store, "rotate"):
        await store.get("f" * 22)
    elif hasattr(store, "bump_generation"):
        await store.check("jti", "alice")
    elif hasattr(store, "get_by_email"):
        await store.get_by_email("ada@example.com")
    elif hasattr(store, "use_totp_step"):
        await store.get("alice")
    elif hasattr(store, "drop_user"):
        await store.take("h" * 64, purpose="reset", now=time.time())
    else:
        await store.get("https://idp.example", "sub")  # type: ignore[attr-defined]


async def test_every_kind_opens_on_one_client(mongodb_url: str) -> None:
    stores = [await opener(mongodb_url) for opener in OPENERS]
    try:
        conns = {id(s.conn) for s in stores}  # type: ignore[attr-defined]
        assert len(conns) == 1
        conn = stores[0].conn  # type: ignore[attr-defined]
        assert isinstance(conn, MongoConnection) and conn.references == len(OPENERS)
        for store in stores:
            await _use(store)
            await store.ping()
        # The URL's database, and the declared indexes in it.
        assert conn.db.name == mongodb_url.rsplit("/", 1)[1]
        names = await conn.db.list_collection_names()
        assert {"gatepass_sessions", "gatepass_throttle", "gatepass_users"} <= set(names)
    finally:
        for store in stores:
            await store.close()
    assert conn.references == 0
    # A store opened after the last close gets a new client.
    again = await open_session_store(mongodb_url)
    try:
        assert again.conn is not conn  # type: ignore[attr-defined]
    finally:
        await again.close()


async def test_scheme_spellings_share_one_client(mongodb_url: str) -> None:
    one = await open_session_store(mongodb_url)
    two = await open_throttle_store(mongodb_url.replace("mongodb://", "MongoDB://"))
    try:
        assert one.conn is two.conn  # type: ignore[attr-defined]
    finally:
        await one.close()
        await two.close()


async def test_database_defaults_to_gatepass(mongodb_server: MongoServer) -> None:
    store = await open_session_store(f"mongodb://127.0.0.1:{mongodb_server.port}")
    try:
        assert store.conn.db.name == "gatepass"  # type: ignore[attr-defined]
    finally:
        await store.close()


async def test_srv_urls_are_accepted_and_connect_lazily() -> None:
    # No DNS here: the SRV lookup happens on first use, which is then a 503.
    store = await open_session_store("mongodb+srv://u:hunter2@cluster.invalid/app")
    try:
        with pytest.raises(StoreUnavailable) as info:
            await store.get("k" * 64)
        assert "hunter2" not in str(info.value) and "cluster.invalid" not in str(info.value)
    finally:
        await store.close()


async def test_malformed_url_is_a_redacted_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        await open_session_store("mongodb://u:hunter2@db.example:99999/app")
    assert "hunter2" not in str(info.value)
    assert str(info.value) == "Invalid session store URL 'mongodb://': ValueError."


async def test_indexes_are_created_once_per_connection(mongodb_url: str) -> None:
    store = await open_session_store(mongodb_url)
    try:
        conn = store.conn  # type: ignore[attr-defined]
        before = conn.stats.round_trips
        await store.get("k" * 64)
        first = conn.stats.round_trips - before
        # createIndexes for each declared index, then the find.
        assert first == len(MongoSessionStore.INDEXES) + 1
        before = conn.stats.round_trips
        await store.get("k" * 64)
        assert conn.stats.round_trips - before == 1
        info = await conn.db["gatepass_sessions"].index_information()
        assert any(spec.get("unique") and spec["key"] == [("key", 1)] for spec in info.values())
        assert any(spec.get("expireAfterSeconds") == 0 for spec in info.values())
    finally:
        await store.close()


async def test_round_trips_per_operation(mongodb_url: str) -> None:
    store = await open_session_store(mongodb_url)
    try:
        record = make_record()
        await store.create(record)
        stats = store.stats  # type: ignore[attr-defined]
        for call in (
            lambda: store.get(record.key),
            lambda: store.touch(record.key, last_seen_at=time.time(), expires_at=time.time() + 60),
            lambda: store.list_user("alice"),
        ):
            before = stats.round_trips
            await call()
            assert stats.round_trips - before == 1
    finally:
        await store.close()


async def test_each_second_factor_and_link_decision_is_one_command(mongodb_url: str) -> None:
    """Accepting a step, spending a code, an attempt, taking a challenge or a
    link token: one single-document command each (atomic on the server)."""
    factors = await open_factor_store(mongodb_url)
    links = await open_one_time_token_store(mongodb_url)
    try:
        now = time.time()
        await factors.begin_totp("alice", "sealed")
        await factors.enable_totp("alice", "sealed", 10, ["h1", "h2"])
        await factors.create_challenge(
            Challenge("c" * 64, "alice", "login", "x" * 64, created_at=now, expires_at=now + 60)
        )
        await links.put("t" * 64, purpose="reset", user_id="alice", data="", expires_at=now + 60)
        stats = factors.stats  # type: ignore[attr-defined]
        assert links.stats is stats  # type: ignore[attr-defined]  # one client
        for call, expected in (
            (lambda: factors.use_totp_step("alice", 11), True),
            (lambda: factors.use_recovery_code("alice", "h1"), True),
            (lambda: factors.attempt_challenge("c" * 64, now=now), True),
            (lambda: factors.take_challenge("c" * 64), True),
            (lambda: links.take("t" * 64, purpose="reset", now=now), True),
        ):
            before = stats.round_trips
            assert bool(await call()) is expected
            assert stats.round_trips - before == 1
    finally:
        await factors.close()
        await links.close()


@pytest.mark.parametrize("opener", OPENERS, ids=lambda o: o.__name__)
async def test_unreachable_server_is_store_unavailable_fast(opener: object) -> None:
    url = f"mongodb://gp:hunter2@127.0.0.1:{free_port()}/db"
    store = await opener(url)  # type: ignore[operator]
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            await _use(store)
        assert time.monotonic() - started < 6
        assert info.value.store == "mongodb"
        assert "hunter2" not in str(info.value) and "127.0.0.1" not in str(info.value)
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()


async def test_server_stopping_mid_use_is_store_unavailable(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from tests.conftest import _nx_27017

    executable = _nx_27017()
    assert executable is not None
    server = MongoServer(tmp_path_factory.mktemp("nx-stop"))
    server.start(executable)
    sessions = MongoSessionStore.from_url(server.url("outage"))
    try:
        record = make_record()
        await sessions.create(record)
        assert await sessions.get(record.key) == record
        server.stop()
        with pytest.raises(StoreUnavailable):
            await sessions.get(record.key)
        with pytest.raises(StoreUnavailable):
            await sessions.create(make_record())
    finally:
        server.stop()
        await sessions.close()


async def test_command_log_shows_no_documents(
    mongodb_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "csrf-secret-value-0123456789"
    store = await open_session_store(mongodb_url)
    users = await open_user_store(mongodb_url)
    identities = await open_identity_store(mongodb_url)
    try:
        with caplog.at_level(logging.DEBUG, logger="pymongo"):
            record = make_record(data={"csrf": secret})
            await store.create(record)
            await store.get(record.key)
            with pytest.raises(ValueError, match="already exists"):
                await store.create(record)  # a failure reply quotes the key
            await users.create("ada@example.com", f"$argon2id${secret}")
            await identities.add(ExternalIdentity("https://i", "s", "u1", "p"))
        commands = [r for r in caplog.records if r.name == "pymongo.command"]
        assert commands, "PyMongo logged no commands: the test watched nothing"
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "insert" in text  # the command names stay
        assert secret not in text and record.key not in text
    finally:
        await store.close()
        await users.close()
        await identities.close()


async def test_ttl_indexes_forget_what_expired(mongodb_url: str) -> None:
    # The emulator applies TTL indexes when a collection is read; MongoDB's
    # TTL monitor does the same within about a minute.  What is checked here
    # is that each store writes a date the TTL index reads, and the right one.
    from tests.tokens_store.conftest import new_family

    sessions = await open_session_store(mongodb_url)
    families = await open_refresh_store(mongodb_url)
    revocation = await open_revocation_store(mongodb_url)
    throttle = await open_throttle_store(mongodb_url)
    links = await open_one_time_token_store(mongodb_url)
    factors = await open_factor_store(mongodb_url)
    try:
        now = time.time()
        short, lasting = make_record(expires_at=now + 1), make_record(expires_at=now + 600)
        await sessions.create(short)
        await sessions.create(lasting)
        _, family = new_family(now=now, lifetime=1)
        await families.create(family)
        await revocation.deny("jti-1", "alice", until=now + 1)
        await revocation.bump_generation("alice")
        await throttle.hit("k1", window=1, now=now)
        await throttle.set_deadline("k2", until=now + 600, now=now)
        await links.put("t1", purpose="reset", user_id="u1", data="", expires_at=now + 1)
        await links.put("t2", purpose="reset", user_id="u1", data="", expires_at=now + 600)
        for name, ttl in (("c1", 1.0), ("c2", 600.0)):
            await factors.create_challenge(
                Challenge(name, "u1", "login", "c" * 64, created_at=now, expires_at=now + ttl)
            )
        db = sessions.conn.db  # type: ignore[attr-defined]

        async def ids(collection: str) -> list[object]:
            return [d["_id"] async for d in db[collection].find({}, {"_id": True})]

        await asyncio.sleep(2.2)
        assert len(await ids("gatepass_sessions")) == 1
        assert await sessions.get(lasting.key) == lasting
        assert await ids("gatepass_refresh_families") == []
        # The generation has no expiry: it must outlive every token.
        assert await ids("gatepass_revoked") == ['["generation","alice"]']
        assert await ids("gatepass_throttle") == ["k2"]
        assert await ids("gatepass_one_time_tokens") == ["t2"]
        assert await ids("gatepass_mfa_challenges") == ["c2"]
    finally:
        for store in (sessions, families, revocation, throttle, links, factors):
            await store.close()
