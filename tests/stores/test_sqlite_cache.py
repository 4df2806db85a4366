"""The local caches of SQLite and PostgreSQL: exact across processes (issue 14).

A cached session or revocation check costs no trip to the database thread;
a revocation from another process (the CLI, another worker) is refused at
the very next request.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gatepass.drivers.changes import ChangeCache, ChangeSignal
from tests.server.conftest import PASSWORD, make_client, register

# ------------------------------------------------------------ the cache rules


def test_a_write_during_a_read_leaves_nothing_cached(tmp_path: Path) -> None:
    signal = ChangeSignal(str(tmp_path / "db"))
    cache: ChangeCache[str, str] = ChangeCache(signal.word)
    word = cache.before_read()
    signal.publish()  # another process committed while we read
    cache.put("k", "old value", word)
    assert cache.get("k") is None
    word = cache.before_read()
    cache.put("k", "new value", word)
    assert cache.get("k") == "new value"
    # Any new word, from any process mapping the file, empties the cache.
    other = ChangeSignal(str(tmp_path / "db"))
    other.publish()
    assert cache.get("k") is None
    other.close()
    signal.close()


def test_entries_expire_and_the_cache_is_bounded(tmp_path: Path) -> None:
    now = [0.0]
    signal = ChangeSignal(None)
    cache: ChangeCache[int, int] = ChangeCache(signal.word, max_entries=3, max_age=30,
                                               clock=lambda: now[0])  # fmt: skip
    for i in range(5):
        cache.put(i, i, cache.before_read())
    assert [cache.get(i) for i in range(5)] == [None, None, 2, 3, 4]
    now[0] = 30.0
    assert cache.get(4) is None


def test_the_signal_file_is_owner_only(tmp_path: Path) -> None:
    ChangeSignal(str(tmp_path / "db")).close()
    assert (os.stat(tmp_path / "db-changes").st_mode & 0o777) == 0o600


# ------------------------------------------------------------ across processes


def _trips(client: TestClient) -> int:
    count: int = client.app.state.gatepass.components.sessions.store.stats.round_trips  # type: ignore[attr-defined]
    return count


def _cli(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")},
           **(env or {})}  # fmt: skip
    env["GATEPASS_DATA_DIR"] = str(data_dir)
    done = subprocess.run([sys.executable, "-m", "gatepass", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_cached_requests_skip_the_database_and_see_another_process_at_once(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with make_client(tmp_path) as client:
        register(client)
        body = {"email": "ada@example.com", "password": PASSWORD}
        assert client.post("/auth/login", json=body).status_code == 200
        cookie = {"cookie": f"__Host-gatepass={client.cookies['__Host-gatepass']}"}
        client.cookies = httpx.Cookies()
        pair = client.post("/auth/token", json=body).json()
        bearer = {"authorization": f"Bearer {pair['access_token']}"}
        for headers in (cookie, bearer):
            for _ in range(3):
                before = _trips(client)
                assert client.get("/auth/verify", headers=headers).status_code == 200
            # The third time: answered from the local caches, the account
            # (read by /auth/verify, from the same file) included.
            assert _trips(client) - before == 0

        # Another process ends every login.
        _cli(data_dir, "sessions", "revoke", "ada@example.com", "--all")
        assert client.get("/auth/verify", headers=cookie).status_code == 401
        assert client.get("/auth/verify", headers=bearer).status_code == 401

        # And a role granted by another process reaches the next request.
        assert client.post("/auth/login", json=body).status_code == 200
        session = {"cookie": f"__Host-gatepass={client.cookies['__Host-gatepass']}"}
        client.cookies = httpx.Cookies()
        for _ in range(3):
            assert client.get("/auth/verify?role=admin", headers=session).status_code == 403
        _cli(data_dir, "roles", "grant", "ada@example.com", "admin")
        assert client.get("/auth/verify?role=admin", headers=session).status_code == 200


def test_cached_accounts_see_another_process_at_once(tmp_path: Path) -> None:
    """/auth/me and /auth/verify read the account from the local cache; a
    change made by another process is what the very next request sees."""
    data_dir = tmp_path / "data"
    with make_client(tmp_path) as client:
        register(client)
        body = {"email": "ada@example.com", "password": PASSWORD}
        assert client.post("/auth/login", json=body).status_code == 200
        for _ in range(3):
            before = _trips(client)
            me = client.get("/auth/me")
            assert me.status_code == 200 and me.json()["email_verified"] is False
        assert _trips(client) - before == 0  # session and account both cached

        _cli(data_dir, "users", "verify", "ada@example.com")
        assert client.get("/auth/me").json()["email_verified"] is True

        # Disabled from another process: its sessions end, and the account
        # cached for forward auth is not served either.
        _cli(data_dir, "users", "disable", "ada@example.com")
        assert client.get("/auth/me").status_code == 401
        assert client.get("/auth/verify").status_code == 401


@pytest.mark.postgres
def test_postgres_caches_see_another_process_at_once(tmp_path: Path, postgres_url: str) -> None:
    """The same on PostgreSQL, kept exact by LISTEN/NOTIFY."""
    data_dir = tmp_path / "data"
    with make_client(tmp_path, session_store_url=postgres_url) as client:
        register(client)
        body = {"email": "ada@example.com", "password": PASSWORD}
        assert client.post("/auth/login", json=body).status_code == 200
        cookie = {"cookie": f"__Host-gatepass={client.cookies['__Host-gatepass']}"}
        client.cookies = httpx.Cookies()
        pair = client.post("/auth/token", json=body).json()
        bearer = {"authorization": f"Bearer {pair['access_token']}"}
        deadline = time.monotonic() + 10
        parts = client.app.state.gatepass.components  # type: ignore[attr-defined]
        while not parts.sessions.store.pool.changes.healthy:
            assert time.monotonic() < deadline, "the change stream did not start"
            client.get("/auth/verify", headers=cookie)
            time.sleep(0.02)
        for headers in (cookie, bearer):
            for _ in range(3):
                before = _trips(client)
                assert client.get("/auth/verify", headers=headers).status_code == 200
            assert _trips(client) - before == 0  # users live in SQLite here

        _cli(data_dir, "sessions", "revoke", "ada@example.com", "--all",
             env={"GATEPASS_SESSION_STORE_URL": postgres_url})  # fmt: skip
        assert client.get("/auth/verify", headers=cookie).status_code == 401
        assert client.get("/auth/verify", headers=bearer).status_code == 401
