"""One contract, every user store, each against its real backend."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gatepass.drivers.mongodb import MongoConnection
from gatepass.drivers.postgres import PostgresPool
from gatepass.drivers.sqlite import SQLiteDatabase
from gatepass.errors import InvalidRequest, StoreUnavailable, UserExists
from gatepass.users.memory import MemoryUserStore
from gatepass.users.model import User, UserStore
from gatepass.users.mongodb import MongoUserStore
from gatepass.users.postgres import PostgresUserStore
from gatepass.users.sqlite import SQLiteUserStore

ARGON = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "aGFzaA" * 7


class Clock:
    """A settable clock: tests decide every created_at, ties included."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        # Against the nx-27017 wire-protocol emulator (see docs/storage.md).
        pytest.param("mongodb", marks=pytest.mark.mongodb),
    ]
)
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The backend's name and, for PostgreSQL, the DSN of a fresh schema.

    Synchronous so that it can pull in the async ``postgres_url`` fixture
    only for the PostgreSQL run.
    """
    name: str = request.param
    dsn = ""
    if name in ("postgres", "mongodb"):
        dsn = request.getfixturevalue(f"{name}_url")
    return name, dsn


@pytest.fixture
async def store(backend: tuple[str, str], tmp_path: Path, clock: Clock) -> AsyncIterator[UserStore]:
    name, dsn = backend
    s: UserStore
    if name == "memory":
        s = MemoryUserStore(clock=clock)
    elif name == "sqlite":
        s = SQLiteUserStore(SQLiteDatabase(tmp_path / "users.db"), clock=clock)
    elif name == "mongodb":
        s = MongoUserStore(MongoConnection(dsn), clock=clock)
    else:
        s = PostgresUserStore(PostgresPool(dsn), clock=clock)
    yield s
    await s.close()


# create / get ----------------------------------------------------------------


async def test_create_then_get(store: UserStore, clock: Clock) -> None:
    user = await store.create("ada@example.com", ARGON, ("admin", "ops"))
    assert re.fullmatch(r"[0-9a-f]{32}", user.id)
    assert user == User(
        id=user.id,
        email="ada@example.com",
        password_hash=ARGON,
        roles=("admin", "ops"),
        disabled=False,
        created_at=clock.now,
    )
    assert await store.get(user.id) == user
    assert await store.get_by_email("ada@example.com") == user


async def test_defaults_and_passwordless_accounts(store: UserStore) -> None:
    user = await store.create("oauth-only@example.com", None)
    assert user.password_hash is None and user.roles == () and not user.disabled
    assert await store.get(user.id) == user


async def test_ids_are_unique(store: UserStore) -> None:
    users = [await store.create(f"u{i}@example.com", None) for i in range(5)]
    assert len({u.id for u in users}) == 5


async def test_unknown_lookups_return_none(store: UserStore) -> None:
    await store.create("ada@example.com", ARGON)
    assert await store.get("0" * 32) is None
    assert await store.get("") is None
    assert await store.get_by_email("grace@example.com") is None
    # The store compares exactly: normalising is the caller's job.
    assert await store.get_by_email("ada@example.com ") is None


async def test_unicode_email_and_roles_round_trip(store: UserStore) -> None:
    user = await store.create("z\u00fcrich@b\u00fccher.example", None, ("r\u00f4le", 'qu"ote'))
    assert await store.get_by_email("z\u00fcrich@b\u00fccher.example") == user
    fetched = await store.get(user.id)
    assert fetched is not None and fetched.roles == ("r\u00f4le", 'qu"ote')


# uniqueness --------------------------------------------------------------------


async def test_duplicate_email_raises_user_exists(store: UserStore) -> None:
    first = await store.create("ada@example.com", ARGON, ("admin",))
    with pytest.raises(UserExists):
        await store.create("ada@example.com", None)
    # The original account is untouched and still the only one.
    assert await store.get_by_email("ada@example.com") == first
    assert await store.list() == [first]
    # Another email is fine afterwards.
    await store.create("grace@example.com", None)


async def test_concurrent_creates_with_one_email_exactly_one_wins(store: UserStore) -> None:
    results = await asyncio.gather(
        *(store.create("race@example.com", f"hash-{i}") for i in range(20)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, User)]
    losers = [r for r in results if isinstance(r, UserExists)]
    assert len(winners) == 1, results
    assert len(losers) == 19, results
    assert await store.get_by_email("race@example.com") == winners[0]
    assert len(await store.list()) == 1


# list ----------------------------------------------------------------------------


async def test_list_orders_by_creation_then_id(store: UserStore, clock: Clock) -> None:
    assert await store.list() == []
    clock.now = 300.0
    late = await store.create("late@example.com", None)
    clock.now = 100.0
    early = await store.create("early@example.com", None)
    clock.now = 200.0
    tied = [await store.create(f"tied{i}@example.com", None) for i in range(4)]

    expected = [early, *sorted(tied, key=lambda u: u.id), late]
    assert await store.list() == expected
    assert await store.list(limit=2) == expected[:2]
    assert await store.list(limit=2, offset=2) == expected[2:4]
    assert await store.list(offset=5) == expected[5:]
    assert await store.list(offset=10) == []
    assert await store.list(limit=0) == []


async def test_list_refuses_negative_paging(store: UserStore) -> None:
    with pytest.raises(InvalidRequest):
        await store.list(limit=-1)
    with pytest.raises(InvalidRequest):
        await store.list(offset=-1)


async def test_list_default_limit_is_100(store: UserStore, clock: Clock) -> None:
    for i in range(105):
        clock.now = float(i)
        await store.create(f"u{i:03}@example.com", None)
    page = await store.list()
    assert [u.email for u in page] == [f"u{i:03}@example.com" for i in range(100)]


# updates ---------------------------------------------------------------------------


async def test_set_password_hash(store: UserStore) -> None:
    user = await store.create("ada@example.com", None)
    other = await store.create("grace@example.com", "other-hash")
    await store.set_password_hash(user.id, ARGON)
    fetched = await store.get(user.id)
    assert fetched is not None and fetched.password_hash == ARGON
    assert await store.get_by_email("ada@example.com") == fetched
    assert await store.get(other.id) == other


async def test_set_disabled_both_ways(store: UserStore) -> None:
    user = await store.create("ada@example.com", ARGON)
    other = await store.create("grace@example.com", ARGON)
    await store.set_disabled(user.id, True)
    fetched = await store.get(user.id)
    assert fetched is not None and fetched.disabled is True
    assert await store.get(other.id) == other
    await store.set_disabled(user.id, False)
    assert await store.get(user.id) == user


async def test_set_roles(store: UserStore) -> None:
    user = await store.create("ada@example.com", ARGON, ("reader",))
    other = await store.create("grace@example.com", ARGON, ("reader",))
    await store.set_roles(user.id, ("admin", "reader"))
    fetched = await store.get(user.id)
    assert fetched is not None and fetched.roles == ("admin", "reader")
    await store.set_roles(user.id, ())
    fetched = await store.get(user.id)
    assert fetched is not None and fetched.roles == ()
    assert await store.get(other.id) == other


async def test_updates_of_an_unknown_id_change_nothing(store: UserStore) -> None:
    user = await store.create("ada@example.com", ARGON)
    missing = "f" * 32
    await store.set_password_hash(missing, "x")
    await store.set_disabled(missing, True)
    await store.set_roles(missing, ("admin",))
    assert await store.get(missing) is None
    assert await store.list() == [user]


async def test_updates_leave_the_other_fields_alone(store: UserStore) -> None:
    user = await store.create("ada@example.com", ARGON, ("admin",))
    await store.set_disabled(user.id, True)
    await store.set_password_hash(user.id, "new-hash")
    await store.set_roles(user.id, ("ops",))
    fetched = await store.get(user.id)
    assert fetched == User(
        id=user.id,
        email=user.email,
        password_hash="new-hash",
        roles=("ops",),
        disabled=True,
        created_at=user.created_at,
    )


async def test_ping(store: UserStore) -> None:
    await store.ping()


# backend specifics -------------------------------------------------------------------


async def test_sqlite_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    first = SQLiteUserStore(SQLiteDatabase(path))
    user = await first.create("ada@example.com", ARGON, ("admin",))
    await first.close()
    second = SQLiteUserStore(SQLiteDatabase(path))
    try:
        assert await second.get(user.id) == user
        with pytest.raises(UserExists):
            await second.create("ada@example.com", None)
    finally:
        await second.close()


async def test_sqlite_stores_in_two_handles_share_uniqueness(tmp_path: Path) -> None:
    # Two connections to one file (as a CLI beside a server): the database,
    # not a per-process check, decides which create wins.
    path = tmp_path / "users.db"
    a = SQLiteUserStore(SQLiteDatabase(path))
    b = SQLiteUserStore(SQLiteDatabase(path))
    try:
        results = await asyncio.gather(
            *(s.create("race@example.com", None) for s in (a, b) for _ in range(5)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, User) for r in results) == 1, results
        assert sum(isinstance(r, UserExists) for r in results) == 9, results
    finally:
        await a.close()
        await b.close()


@pytest.mark.postgres
async def test_postgres_concurrent_starters(postgres_url: str) -> None:
    # Several instances start together on an empty schema: each creates the
    # table on first use, and none may trip over another's DDL (nor mistake
    # the catalog's unique violation for a duplicate email).
    stores = [PostgresUserStore(PostgresPool(postgres_url)) for _ in range(8)]
    try:
        # Connect first (ping does not touch the table), so that the schema
        # creations really do run at the same moment.
        await asyncio.gather(*(s.ping() for s in stores))
        created = await asyncio.gather(
            *(s.create(f"starter{i}@example.com", None) for i, s in enumerate(stores))
        )
        assert len({u.id for u in created}) == 8
        assert len(await stores[0].list()) == 8
    finally:
        for s in stores:
            await s.close()


@pytest.mark.postgres
async def test_postgres_uniqueness_holds_across_instances(postgres_url: str) -> None:
    stores = [PostgresUserStore(PostgresPool(postgres_url)) for _ in range(4)]
    try:
        await stores[0].ping()
        results = await asyncio.gather(
            *(s.create("race@example.com", None) for s in stores for _ in range(5)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, User) for r in results) == 1, results
        assert sum(isinstance(r, UserExists) for r in results) == 19, results
        winner = next(r for r in results if isinstance(r, User))
        # A later instance sees the existing table and data.
        late = PostgresUserStore(PostgresPool(postgres_url))
        try:
            assert await late.get_by_email("race@example.com") == winner
        finally:
            await late.close()
    finally:
        for s in stores:
            await s.close()


async def test_postgres_unreachable_is_store_unavailable() -> None:
    store = PostgresUserStore(
        PostgresPool("postgresql://nobody@127.0.0.1:1/none", timeout=2.0)
    )
    try:
        with pytest.raises(StoreUnavailable):
            await store.get("0" * 32)
        with pytest.raises(StoreUnavailable):
            await store.create("ada@example.com", None)
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()


async def test_sqlite_unusable_file_is_store_unavailable(tmp_path: Path) -> None:
    # A directory where the database file should be: sqlite cannot open it.
    (tmp_path / "users.db").mkdir()
    store = SQLiteUserStore(SQLiteDatabase(tmp_path / "users.db"))
    try:
        with pytest.raises(StoreUnavailable):
            await store.get("0" * 32)
    finally:
        await store.close()


async def test_user_ids_are_strings(store: UserStore) -> None:
    user = await store.create("ada@example.com", None)
    assert type(user.id) is str
    with pytest.raises(TypeError):
        await store.get(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await store.set_disabled(42, True)  # type: ignore[arg-type]
    assert await store.get(user.id) == user
    # Ids are compared exactly: no padding, no case folding, no number parsing.
    assert await store.get("0" + user.id) is None
    assert await store.get(user.id.upper()) is None


# email_verified ---------------------------------------------------------------


async def test_email_verified_starts_false_and_is_set_both_ways(store: UserStore) -> None:
    user = await store.create("v@example.com", ARGON, ("admin",))
    assert user.email_verified is False
    assert (await store.get(user.id)).email_verified is False  # type: ignore[union-attr]
    await store.set_email_verified(user.id, True)
    got = await store.get(user.id)
    assert got is not None and got.email_verified is True
    # Nothing else moved.
    assert (got.email, got.password_hash, got.roles, got.disabled) == (
        "v@example.com", ARGON, ("admin",), False,
    )  # fmt: skip
    by_email = await store.get_by_email("v@example.com")
    assert by_email is not None and by_email.email_verified is True
    assert [u.email_verified for u in await store.list()] == [True]
    await store.set_email_verified(user.id, False)
    assert (await store.get(user.id)).email_verified is False  # type: ignore[union-attr]


# set_email (email change) ------------------------------------------------------


async def test_set_email_moves_the_account_and_marks_it_verified(store: UserStore) -> None:
    user = await store.create("old@example.com", ARGON, ("admin",))
    assert await store.set_email(user.id, "new@example.com", expected="old@example.com")
    got = await store.get(user.id)
    assert got is not None
    assert (got.email, got.email_verified, got.password_hash, got.roles, got.disabled) == (
        "new@example.com", True, ARGON, ("admin",), False,
    )  # fmt: skip
    assert await store.get_by_email("old@example.com") is None
    moved = await store.get_by_email("new@example.com")
    assert moved is not None and moved.id == user.id
    # The old address is free again.
    assert (await store.create("old@example.com", None)).email == "old@example.com"


async def test_set_email_needs_the_expected_current_address(store: UserStore) -> None:
    user = await store.create("old@example.com", ARGON)
    assert not await store.set_email(user.id, "new@example.com", expected="other@example.com")
    assert not await store.set_email("0" * 32, "new@example.com", expected="old@example.com")
    got = await store.get(user.id)
    assert got is not None and (got.email, got.email_verified) == ("old@example.com", False)
    assert await store.get_by_email("new@example.com") is None


async def test_set_email_to_a_taken_address_raises_and_changes_nothing(store: UserStore) -> None:
    a = await store.create("a@example.com", ARGON)
    b = await store.create("b@example.com", ARGON)
    with pytest.raises(UserExists):
        await store.set_email(a.id, "b@example.com", expected="a@example.com")
    got_a, got_b = await store.get(a.id), await store.get(b.id)
    assert got_a is not None and (got_a.email, got_a.email_verified) == ("a@example.com", False)
    assert got_b is not None and got_b.email == "b@example.com"
    by_email = await store.get_by_email("b@example.com")
    assert by_email is not None and by_email.id == b.id


async def test_concurrent_moves_to_one_address_exactly_one_wins(store: UserStore) -> None:
    users = [await store.create(f"u{i}@example.com", ARGON) for i in range(6)]
    results = await asyncio.gather(
        *(store.set_email(u.id, "same@example.com", expected=u.email) for u in users),
        return_exceptions=True,
    )
    assert results.count(True) == 1
    assert all(isinstance(r, UserExists) for r in results if r is not True)
    winner = users[results.index(True)]
    owner = await store.get_by_email("same@example.com")
    assert owner is not None and owner.id == winner.id
    for user in users:
        if user is not winner:
            got = await store.get(user.id)
            assert got is not None and got.email == user.email


#: The table as the first release created it: no email_verified column.
_OLD_SQLITE = """
CREATE TABLE gatepass_users (
    id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT,
    roles TEXT NOT NULL DEFAULT '[]', disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL)
"""


async def test_sqlite_database_from_before_email_verified_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(_OLD_SQLITE)
        conn.execute(
            "INSERT INTO gatepass_users VALUES ('u1', 'old@example.com', NULL, '[]', 0, 1.0)"
        )
    conn.close()
    store = SQLiteUserStore(SQLiteDatabase(path))
    try:
        old = await store.get("u1")
        assert old is not None and old.email == "old@example.com" and not old.email_verified
        await store.set_email_verified("u1", True)
        assert (await store.get("u1")).email_verified is True  # type: ignore[union-attr]
    finally:
        await store.close()
    # Opening the upgraded file again runs no second ALTER (it would fail).
    again = SQLiteUserStore(SQLiteDatabase(path))
    try:
        assert (await again.get("u1")).email_verified is True  # type: ignore[union-attr]
    finally:
        await again.close()


@pytest.mark.postgres
async def test_postgres_database_from_before_email_verified_is_upgraded(
    postgres_url: str,
) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            "CREATE TABLE gatepass_users (id text PRIMARY KEY, email text NOT NULL UNIQUE,"
            " password_hash text, roles text[] NOT NULL DEFAULT '{}',"
            " disabled boolean NOT NULL DEFAULT false, created_at double precision NOT NULL)"
        )
        await conn.execute(
            "INSERT INTO gatepass_users VALUES ('u1', 'old@example.com', NULL, '{}', false, 1.0)"
        )
    finally:
        await conn.close()
    stores = [PostgresUserStore(PostgresPool(postgres_url)) for _ in range(2)]
    try:
        old = await stores[0].get("u1")
        assert old is not None and not old.email_verified
        await stores[0].set_email_verified("u1", True)
        assert (await stores[1].get("u1")).email_verified is True  # type: ignore[union-attr]
    finally:
        for s in stores:
            await s.close()
