"""The PostgreSQL account cache: exact across processes and instances (issue 14).

``get`` by id is answered from process memory, emptied by LISTEN/NOTIFY on
every committed write to the accounts table, and bypassed while the
listening connection is down.  Every test runs against the real server.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from starlette.testclient import TestClient
from tests.conftest import free_port
from tests.server.conftest import PASSWORD, make_client, register

from gatepass.drivers.pg_changes import PgChangeStream
from gatepass.drivers.postgres import PostgresPool
from gatepass.users.model import User
from gatepass.users.postgres import PostgresUserStore

pytestmark = pytest.mark.postgres

ARGON = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "aGFzaA" * 7


async def listening(store: PostgresUserStore) -> None:
    """Until the store's change stream is up (it starts on first use)."""
    deadline = time.monotonic() + 10
    while not store.pool.changes.healthy:
        assert time.monotonic() < deadline, "the change stream never came up"
        store.pool.changes.ensure_started()
        await asyncio.sleep(0.01)


async def cached(store: PostgresUserStore, user: User) -> None:
    """Read ``user`` until a read costs no round trip (then it is cached).

    The notification of a write just made may still be on its way and empty
    the cache once more: hence a loop, not a single read."""
    await listening(store)
    deadline = time.monotonic() + 5
    while True:
        before = store.pool.stats.round_trips
        assert await store.get(user.id) == user
        if store.pool.stats.round_trips == before:
            return
        assert time.monotonic() < deadline, "the account was never cached"
        await asyncio.sleep(0.01)


async def in_another_process(dsn: str, user_id: str, code: str) -> None:
    """Run ``code`` (with ``store``, a PostgresUserStore on ``dsn``, and ``user_id``
    in scope) in a separate Python process, and wait for it to finish."""
    script = (
        "import asyncio, sys\n"
        "from gatepass.users.postgres import PostgresUserStore\n"
        "async def main():\n"
        "    store = PostgresUserStore.from_dsn(sys.argv[1])\n"
        "    user_id = sys.argv[2]\n"
        f"    {code}\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, dsn, user_id)
    assert await proc.wait() == 0


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresUserStore]:
    s = PostgresUserStore(PostgresPool(postgres_url))
    yield s
    await s.close()


async def test_a_cached_get_makes_no_round_trip(store: PostgresUserStore) -> None:
    user = await store.create("ada@example.com", ARGON)
    await cached(store, user)
    before = store.pool.stats.round_trips
    for _ in range(10):
        assert await store.get(user.id) == user
    assert store.pool.stats.round_trips == before
    # Unknown ids are never cached: random ids must not fill the cache.
    for _ in range(2):
        before = store.pool.stats.round_trips
        assert await store.get("0" * 32) is None
        assert store.pool.stats.round_trips - before == 1


async def test_another_process_changes_are_seen_at_the_next_get(
    store: PostgresUserStore, postgres_url: str
) -> None:
    user = await store.create("ada@example.com", ARGON)
    await cached(store, user)

    await in_another_process(postgres_url, user.id, "await store.set_disabled(user_id, True)")
    found = await store.get(user.id)
    assert found is not None and found.disabled

    await cached(store, found)
    await in_another_process(postgres_url, user.id, "await store.set_roles(user_id, ('admin',))")
    found = await store.get(user.id)
    assert found is not None and found.roles == ("admin",)

    await cached(store, found)
    code = "await store.set_password_hash(user_id, 'new-hash')"
    await in_another_process(postgres_url, user.id, code)
    found = await store.get(user.id)
    assert found is not None and found.password_hash == "new-hash"


async def test_an_admins_sql_is_seen_at_the_next_get(
    store: PostgresUserStore, postgres_url: str
) -> None:
    """A write outside gatepass (psql) is announced by the table's trigger."""
    user = await store.create("ada@example.com", ARGON)
    await cached(store, user)
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("UPDATE gatepass_users SET roles = '{auditor}' WHERE id = $1", user.id)
    finally:
        await conn.close()
    # The notification arrives on its own connection; let the loop read it,
    # as a server does between requests.
    await asyncio.sleep(0.05)
    found = await store.get(user.id)
    assert found is not None and found.roles == ("auditor",)


async def test_another_instance_in_this_process_is_seen(postgres_url: str) -> None:
    """Two pools on one DSN are two instances: only NOTIFY links them."""
    mine = PostgresUserStore(PostgresPool(postgres_url))
    theirs = PostgresUserStore(PostgresPool(postgres_url))
    try:
        user = await mine.create("ada@example.com", ARGON)
        await cached(mine, user)
        await theirs.set_disabled(user.id, True)
        await theirs.set_email_verified(user.id, True)
        await asyncio.sleep(0.05)  # the loop reads the notification
        found = await mine.get(user.id)
        assert found is not None and found.disabled and found.email_verified
    finally:
        await mine.close()
        await theirs.close()


async def test_own_writes_are_seen_without_waiting_for_the_notification(
    store: PostgresUserStore,
) -> None:
    user = await store.create("ada@example.com", ARGON)
    await cached(store, user)
    await store.set_disabled(user.id, True)  # no await between write and read
    found = await store.get(user.id)
    assert found is not None and found.disabled


async def test_a_lost_listener_flushes_and_the_cache_recovers(
    store: PostgresUserStore, postgres_url: str
) -> None:
    user = await store.create("ada@example.com", ARGON)
    await cached(store, user)
    changes = store.pool.changes
    pid = changes.backend_pid
    assert pid is not None
    admin = await asyncpg.connect(postgres_url)
    try:
        # Kill the listening backend, then change the account at once: the
        # notification of this write may reach no listener of ours.
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        deadline = time.monotonic() + 5
        while changes.backend_pid == pid:
            assert time.monotonic() < deadline, "the loss was never noticed"
            await asyncio.sleep(0.005)
        await admin.execute("UPDATE gatepass_users SET disabled = true WHERE id = $1", user.id)
    finally:
        await admin.close()
    # Whether or not the stream is back yet, the stale account is not served.
    found = await store.get(user.id)
    assert found is not None and found.disabled
    # And once the stream is back, the cache serves again.
    await cached(store, found)
    assert changes.backend_pid not in (None, pid)


async def test_no_listener_means_no_cache(postgres_url: str) -> None:
    """A listener that cannot connect (here: a closed port) never lets the
    cache serve: every get reads the database."""
    pool = PostgresPool(postgres_url)
    pool.changes = PgChangeStream(f"postgresql://127.0.0.1:{free_port()}/test")
    store = PostgresUserStore(pool)
    try:
        user = await store.create("ada@example.com", ARGON)
        for _ in range(3):
            before = pool.stats.round_trips
            assert await store.get(user.id) == user
            assert pool.stats.round_trips - before == 1
        assert not pool.changes.healthy
    finally:
        await store.close()


async def test_the_cache_is_bounded(postgres_url: str) -> None:
    store = PostgresUserStore(PostgresPool(postgres_url), max_entries=2)
    try:
        users = [await store.create(f"u{i}@example.com", ARGON) for i in range(3)]
        await listening(store)
        for user in users:
            await store.get(user.id)
        before = store.pool.stats.round_trips
        assert await store.get(users[2].id) == users[2]
        assert await store.get(users[1].id) == users[1]
        assert store.pool.stats.round_trips == before
        assert await store.get(users[0].id) == users[0]  # evicted: read again
        assert store.pool.stats.round_trips - before == 1
    finally:
        await store.close()


# ------------------------------------------------------------- the server


def _trips(client: TestClient) -> int:
    count: int = client.app.state.gatepass.components.sessions.store.stats.round_trips  # type: ignore[attr-defined]
    return count


def test_cached_gets_on_postgres_make_no_round_trip(tmp_path: Path, postgres_url: str) -> None:
    """Everything on PostgreSQL (accounts, sessions, revocation): a cached
    session GET and a cached Bearer GET make no round trip at all; an account
    disabled through another store instance is refused at the next request."""
    with make_client(tmp_path, database_url=postgres_url) as client:
        user_id = register(client)
        body = {"email": "ada@example.com", "password": PASSWORD}
        assert client.post("/auth/login", json=body).status_code == 200
        cookie = {"cookie": f"__Host-gatepass={client.cookies['__Host-gatepass']}"}
        client.cookies = httpx.Cookies()
        pair = client.post("/auth/token", json=body).json()
        bearer = {"authorization": f"Bearer {pair['access_token']}"}
        parts = client.app.state.gatepass.components  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while not parts.sessions.store.pool.changes.healthy:
            assert time.monotonic() < deadline, "the change stream did not start"
            client.get("/auth/verify", headers=cookie)
            time.sleep(0.02)
        for headers in (cookie, bearer):
            for _ in range(3):
                before = _trips(client)
                assert client.get("/auth/verify", headers=headers).status_code == 200
            assert _trips(client) - before == 0  # session/token, revocation, account

        # Disabled through another instance (its own pool; the sessions are
        # left alone): forward auth reads the account, and the next request
        # sees it.
        async def disable() -> None:
            other = PostgresUserStore(PostgresPool(postgres_url))
            try:
                await other.set_disabled(user_id, True)
            finally:
                await other.close()

        asyncio.run(disable())
        time.sleep(0.05)  # the server's loop reads the notification
        assert client.get("/auth/verify", headers=cookie).status_code == 401
        assert client.get("/auth/verify", headers=bearer).status_code == 401
