"""``gatepass serve --workers N``: several processes on one port (each its own
SO_REUSEPORT socket), caches coherent.

Each worker keeps local caches of sessions and accounts.  A logout answered
by one worker must be refused by every other worker at its very next
request.  Which worker holds a connection is read from the kernel
(``/proc/net/tcp`` and each worker's open sockets), so the test knows it
warmed one worker's cache and revoked through another.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

PASSWORD = "correct horse battery staple"
EMAIL = "ada@example.com"

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    env["GATEPASS_DATA_DIR"] = str(data_dir)
    return env


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _worker_of(conn: http.client.HTTPConnection, port: int, workers: list[int]) -> int:
    """The worker process holding the server end of ``conn``."""
    assert conn.sock is not None
    local = conn.sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and int(fields[2].split(":")[1], 16) == local:
            inode = fields[9]
    assert inode is not None, "the server end of the connection is not in /proc/net/tcp"
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError("no worker holds the connection")


def _request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    *,
    cookie: str = "",
    body: object = None,
    csrf: str | None = None,
) -> tuple[int, dict[str, list[str]], bytes]:
    headers = {"cookie": cookie} if cookie else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    if csrf is not None:
        headers["x-csrf-token"] = csrf
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    out: dict[str, list[str]] = {}
    for key, value in response.getheaders():
        out.setdefault(key.lower(), []).append(value)
    return response.status, out, payload


def _cookie(headers: dict[str, list[str]], name: str) -> str:
    [value] = [c.split(";", 1)[0] for c in headers["set-cookie"] if c.startswith(name + "=")]
    return value


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, list[int]]]:
    data_dir = tmp_path / "data"
    env = _env(data_dir)
    added = subprocess.run(
        [sys.executable, "-m", "gatepass", "users", "add", EMAIL, "--password-stdin"],
        input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gatepass", "serve", "--workers", "2", "--port", str(port),
         "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            workers = _children(process.pid)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                ok = _request(conn, "GET", "/healthz")[0] == 200
                conn.close()
            except OSError:
                ok = False
            # uvicorn's supervisor also starts a resource tracker: keep the
            # processes that listen, i.e. the workers.
            listening = [pid for pid in workers if _serves(pid)]
            if ok and len(listening) == 2:
                yield port, listening
                return
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _serves(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"resource_tracker" not in cmdline


def test_a_logout_on_one_worker_is_refused_by_the_other_at_once(
    served: tuple[int, list[int]],
) -> None:
    port, workers = served
    # Keep-alive connections until each worker holds one (the kernel picks).
    by_worker: dict[int, http.client.HTTPConnection] = {}
    spare: list[http.client.HTTPConnection] = []
    for _ in range(60):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert _request(conn, "GET", "/healthz")[0] == 200
        pid = _worker_of(conn, port, workers)
        if pid in by_worker:
            spare.append(conn)
        else:
            by_worker[pid] = conn
        if len(by_worker) == 2:
            break
    assert len(by_worker) == 2, "the kernel sent every connection to one worker"
    a, b = by_worker.values()

    status, headers, body = _request(a, "GET", "/auth/csrf")
    token = json.loads(body)["csrf_token"]
    csrf_cookie = _cookie(headers, "__Host-gatepass-csrf")
    status, headers, body = _request(
        a, "POST", "/auth/login", cookie=csrf_cookie, csrf=token,
        body={"email": EMAIL, "password": PASSWORD},
    )  # fmt: skip
    assert status == 200, body
    session = _cookie(headers, "__Host-gatepass")

    # Both workers have the session (and the account) in their caches now.
    for conn in (a, b, a, b):
        assert _request(conn, "GET", "/auth/verify", cookie=session)[0] == 200

    # Worker A ends the session...
    status, headers, body = _request(a, "GET", "/auth/csrf", cookie=session)
    bound = json.loads(body)["csrf_token"]
    status, _, body = _request(a, "POST", "/auth/logout", cookie=session, csrf=bound)
    assert status in (200, 204), body
    # ...and worker B refuses it at its very next request.
    assert _request(b, "GET", "/auth/verify", cookie=session)[0] == 401
    assert _request(b, "GET", "/auth/me", cookie=session)[0] == 401
    assert _request(a, "GET", "/auth/verify", cookie=session)[0] == 401
    for conn in (*by_worker.values(), *spare):
        conn.close()


def test_workers_refuse_stores_that_live_in_one_process(tmp_path: Path) -> None:
    env = {**_env(tmp_path / "data"), "GATEPASS_SESSION_STORE_URL": "memory://"}
    done = subprocess.run(
        [sys.executable, "-m", "gatepass", "serve", "--workers", "2", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "memory://" in done.stderr and "--workers" in done.stderr


def test_workers_that_cannot_start_stop_the_server_with_status_1(tmp_path: Path) -> None:
    """A taken port (a socket without SO_REUSEPORT) is a failed start, not a
    restart loop: the supervisor gives up and exits 1."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gatepass", "serve", "--workers", "2", "--port", str(port)],
            env=_env(tmp_path / "data"), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        taken.close()
    assert done.returncode == 1


@pytest.mark.parametrize("count", ["0", "65", "two"])
def test_a_worker_count_out_of_range_is_refused(count: str) -> None:
    from gatepass.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["serve", "--workers", count])
    assert exited.value.code == 2
