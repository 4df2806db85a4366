"""Store outages: a server whose Redis or PostgreSQL goes away and comes back.

While the store is down every request that needs it answers 503
``store_unavailable`` (never 401, which makes clients drop their session, never
500, never a request let through); requests that need no store still work;
when the store is back the same server process recovers by itself.

Each test owns a private redis-server / PostgreSQL on a free loopback port, so
stopping it disturbs nothing else.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import IN_CI, MongoServer, RedisServer, _nx_27017, free_port
from tests.server.conftest import PASSWORD, make_client, register

EMAIL = "ada@example.com"
COOKIE = "__Host-gatepass"


def as_token(client: TestClient, method: str, path: str, token: str | None) -> httpx.Response:
    """A request carrying only ``token`` as the session cookie (or none)."""
    client.cookies = httpx.Cookies()
    headers = {"cookie": f"{COOKIE}={token}"} if token else {}
    response: httpx.Response = client.request(method, path, headers=headers)
    return response


def login(client: TestClient, email: str = EMAIL) -> httpx.Response:
    client.cookies = httpx.Cookies()
    r: httpx.Response = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    client.cookies = httpx.Cookies()
    return r


def session_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(COOKIE + "="):
            return value.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError("no session cookie")


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.json()["error"] == "store_unavailable"
    assert response.headers["cache-control"] == "no-store"
    # The client must keep its cookie: nothing tells it to drop the session.
    assert not response.headers.get_list("set-cookie")


def assert_outage_behaviour(client: TestClient, token: str) -> None:
    """What every request gets while the session store is down."""
    # Authenticated requests, JSON and HTML, reads and writes: 503, not 401/500,
    # and never the page behind the check.
    for method, path in (
        ("GET", "/auth/me"),
        ("GET", "/auth/sessions"),
        ("GET", "/admin/users"),
        ("POST", "/auth/logout"),
        ("POST", "/auth/sessions/revoke-others"),
        ("GET", "/account"),
        ("GET", "/"),
    ):
        assert_unavailable(as_token(client, method, path, token))
    # A cookie that never was a session cannot be told apart without the store.
    assert_unavailable(as_token(client, "GET", "/auth/me", "A" * 43))
    # Logging in needs the store too: 503, not "invalid credentials".
    attempt = login(client)
    assert_unavailable(attempt)
    form = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "next": "/account"})
    assert form.status_code == 503
    assert not form.headers.get_list("set-cookie")

    ready = as_token(client, "GET", "/readyz", None)
    assert ready.status_code == 503
    assert "unavailable" in ready.json()["checks"].values()
    # Requests that need no store still work.
    assert as_token(client, "GET", "/healthz", None).status_code == 200
    assert as_token(client, "GET", "/", None).status_code == 200
    anonymous_me = as_token(client, "GET", "/auth/me", None)
    assert anonymous_me.status_code == 401
    assert anonymous_me.headers["www-authenticate"]


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not recovered within {timeout} s")
        time.sleep(0.1)


def test_redis_outage_and_recovery(tmp_path: Path, private_redis: RedisServer) -> None:
    with make_client(tmp_path, session_store_url=private_redis.url) as client:
        register(client)
        token = session_of(login(client))
        # Twice, so a cached copy of the session would be in play if there were one.
        assert as_token(client, "GET", "/auth/me", token).status_code == 200
        assert as_token(client, "GET", "/auth/me", token).status_code == 200

        private_redis.stop()
        assert_outage_behaviour(client, token)
        # Still down a little later (retries and reconnect attempts in between).
        time.sleep(1.2)
        assert_unavailable(as_token(client, "GET", "/auth/me", token))

        private_redis.start()  # same port, empty: this Redis keeps nothing on disk
        wait_until(lambda: as_token(client, "GET", "/readyz", None).status_code == 200)
        gone = as_token(client, "GET", "/auth/me", token)
        assert gone.status_code == 401  # the session really is gone now
        assert gone.headers["www-authenticate"]
        fresh = session_of(login(client))
        assert as_token(client, "GET", "/auth/me", fresh).status_code == 200
        assert as_token(client, "GET", "/auth/me", token).status_code == 401


# --- a private PostgreSQL -----------------------------------------------------


class PostgresServer:
    """A throw-away PostgreSQL cluster run as the ``postgres`` OS user."""

    def __init__(self, bindir: Path, directory: Path) -> None:
        self.bindir = bindir
        self.directory = directory
        self.data = directory / "pgdata"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--no-sync", "-E", "UTF8")  # fmt: skip

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.directory / "log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


def _skip_or_fail(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: service tests must run, not skip)")
    pytest.skip(message)


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        _skip_or_fail("PostgreSQL server binaries (initdb) are not installed")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        _skip_or_fail("a private PostgreSQL needs root (to run initdb as the postgres user)")
    try:
        import pwd

        owner = pwd.getpwnam("postgres")
    except KeyError:
        _skip_or_fail("there is no postgres OS user")
    # Not under pytest's tmp_path: its parents are private to root.
    directory = Path(tempfile.mkdtemp(prefix="gatepass-pg-"))
    os.chown(directory, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(Path(bins[-1]).parent, directory)
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.running():
            with contextlib.suppress(subprocess.SubprocessError):
                server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_postgres_outage_and_recovery(tmp_path: Path, private_postgres: PostgresServer) -> None:
    url = private_postgres.url
    with make_client(tmp_path, database_url=url, session_store_url=url) as client:
        register(client)
        token = session_of(login(client))
        assert as_token(client, "GET", "/auth/me", token).status_code == 200

        private_postgres.stop()
        assert_outage_behaviour(client, token)
        # Registration needs the user store: 503 as well, and no account half-made.
        r = client.post("/auth/register", json={"email": "bob@example.com", "password": PASSWORD})
        assert_unavailable(r)

        private_postgres.start()
        wait_until(lambda: as_token(client, "GET", "/readyz", None).status_code == 200)
        # The sessions are on disk: the old cookie works again, without a new login.
        me = as_token(client, "GET", "/auth/me", token)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == EMAIL
        assert as_token(client, "GET", "/auth/sessions", token).status_code == 200
        assert session_of(login(client))
        r = client.post("/auth/register", json={"email": "bob@example.com", "password": PASSWORD})
        assert r.status_code == 201


@pytest.mark.mongodb
def test_mongodb_outage_and_recovery(tmp_path: Path) -> None:
    # The nx-27017 emulator (see docs/storage.md), on disk so that a restart
    # keeps the data, as a MongoDB server would.
    executable = _nx_27017()
    if executable is None:
        _skip_or_fail("nx-27017 is not installed (pip install -e '.[test]')")
    assert executable is not None
    (tmp_path / "nx-data").mkdir()
    server = MongoServer(tmp_path, data_dir=str(tmp_path / "nx-data"))
    server.start(executable)
    url = server.url("app")
    try:
        with make_client(tmp_path, session_store_url=url) as client:  # users: SQLite
            register(client)
            token = session_of(login(client))
            assert as_token(client, "GET", "/auth/me", token).status_code == 200

            server.stop()
            assert_outage_behaviour(client, token)

            server.start(executable)
            wait_until(lambda: as_token(client, "GET", "/readyz", None).status_code == 200)
            me = as_token(client, "GET", "/auth/me", token)
            assert me.status_code == 200, me.text
            assert me.json()["email"] == EMAIL
            assert session_of(login(client))
            r = client.post(
                "/auth/register", json={"email": "bob@example.com", "password": PASSWORD}
            )
            assert r.status_code == 201
    finally:
        server.stop()
