"""Shared fixtures: real Redis and PostgreSQL servers, and the MongoDB emulator.

Service tests skip with a clear reason when the server is not reachable on a
developer's machine; under CI (``CI=true``) an unreachable service is a
failure, never a skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# The session-scoped Redis Cluster (three masters on loopback) for the
# "redis-cluster" backends of the store suites and tests/cluster.
from tests.cluster.server import redis_cluster, redis_cluster_url  # noqa: F401

REDIS_URL = os.environ.get("GATEPASS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("GATEPASS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: service tests must run, not skip)")
    pytest.skip(f"{message}; start it to run this test")


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The Redis URL plus a fresh key prefix in ``redis_url.prefix`` style.

    Yields the URL; tests isolate themselves with :func:`redis_prefix`.
    """
    require_service("Redis", "127.0.0.1", 6379)
    yield REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    return f"gptest:{secrets.token_hex(6)}:"


@pytest.fixture
def isolated_redis_url(redis_url: str, redis_prefix: str) -> str:
    """The shared Redis with a key prefix of this test's own, so sessions and
    throttling counters of other tests (or earlier runs) are never seen."""
    return f"{redis_url}?prefix={redis_prefix}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A DSN whose search_path is a fresh schema, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import asyncpg

    schema = f"gptest_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    yield f"{POSTGRES_URL}?search_path={schema}"
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


class MongoServer:
    """``nx-27017``: a MongoDB wire-protocol server in pure Python (an emulator,
    not MongoDB: no MongoDB server installs here; see docs/storage.md)."""

    def __init__(self, directory: Path, *, data_dir: str = "memory") -> None:
        self.port = free_port()
        self.directory = directory
        #: "memory", or a directory: databases on disk survive a restart.
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "gatepass") -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}"

    def start(self, executable: str) -> None:
        # One in-memory database per logical database (--data-dir memory), so
        # each test's database is its own; log and pid files of its own too.
        self.process = subprocess.Popen(
            [executable, "--data-dir", self.data_dir, "--host", "127.0.0.1", "-p", str(self.port),
             "--log-file", str(self.directory / "nx.log"),
             "--pid-file", str(self.directory / "nx.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not _reachable("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nx-27017 did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _nx_27017() -> str | None:
    # The console script sits beside this interpreter in a venv.
    beside = Path(sys.executable).parent / "nx-27017"
    return str(beside) if beside.exists() else shutil.which("nx-27017")


@pytest.fixture(scope="session")
def mongodb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """One emulator for the whole run, on a free loopback port."""
    executable = _nx_27017()
    problem = None
    try:
        import pymongo  # noqa: F401
    except ImportError:
        problem = "pymongo is not installed (pip install -e '.[test]')"
    if problem is None and executable is None:
        problem = "nx-27017 is not installed (pip install -e '.[test]')"
    server = MongoServer(tmp_path_factory.mktemp("nx-27017"))
    if problem is None and executable is not None:
        try:
            server.start(executable)
        except (OSError, RuntimeError) as exc:
            problem = f"nx-27017 could not start: {exc}"
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: service tests must run, not skip)")
        pytest.skip(problem)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mongodb_url(mongodb_server: MongoServer) -> str:
    """The emulator, with a database of this test's own."""
    return mongodb_server.url(f"gptest_{secrets.token_hex(6)}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class RedisServer:
    """A private, throw-away redis-server on a free loopback port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _reachable("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Secrets stay secret (issue 7 item 6): the session-wide log and error-message
# watch, and the registry tests feed with the secrets they produce.  And the
# store suites' shared backend fixtures (tests/backends.py).
pytest_plugins = ["tests.fuzz.secret_guard", "tests.backends"]


def remember_secret(value: str | None, *, kind: str = "token") -> None:
    """Register a secret a test produced (``kind="password"`` for a password)."""
    from tests.fuzz.secret_guard import remember_secret as remember

    remember(value, kind=kind)
