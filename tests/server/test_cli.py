"""The real ``gatepass`` admin CLI, run as a subprocess on a data directory
that an in-process server shares (so its effects are checked through HTTP).

Passwords go in on standard input only and never come back out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.server.conftest import PASSWORD, login, login_elsewhere, make_client, status_as

EMAIL = "ada@example.com"
#: Every command says which data directory it uses, on stderr.
USING = "gatepass: using data directory "
NEW_PASSWORD = "a brand new passphrase 42"


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    env["GATEPASS_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def start_cli(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gatepass", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or cli_env(data_dir),
        cwd=data_dir.parent,
    )


def finish_cli(
    proc: subprocess.Popen[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        out, err = proc.communicate(stdin if stdin is not None else "", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_cli(
    data_dir: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return finish_cli(start_cli(data_dir, *args, env=env), stdin)


def cli_json(data_dir: Path, *args: str) -> Any:
    result = run_cli(data_dir, *args)
    assert result.returncode == 0, (args, result.stderr)
    return json.loads(result.stdout)


def assert_clean_failure(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Non-zero exit, one ``gatepass: …`` line on stderr, nothing on stdout."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith(USING)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gatepass: "), result.stderr
    for needle in needles:
        assert needle in lines[0]
    assert result.stdout == ""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"  # the directory make_client(tmp_path) uses
    path.mkdir(exist_ok=True)  # the server fixture may have made it first
    return path


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TestClient]:
    """A server on the same data directory as the CLI, running throughout."""
    with make_client(tmp_path) as c:
        yield c


def add_user(data_dir: Path, email: str = EMAIL, password: str = PASSWORD) -> dict[str, object]:
    result = run_cli(data_dir, "users", "add", email, "--password-stdin", stdin=password + "\n")
    assert result.returncode == 0, result.stderr
    assert password not in result.stdout + result.stderr
    created: dict[str, object] = json.loads(result.stdout)
    return created


def test_users_add_reads_the_password_from_stdin_only(app: TestClient, data_dir: Path) -> None:
    created = add_user(data_dir, "Ada@Example.com")
    assert created["email"] == EMAIL
    assert created["roles"] == []

    listed = run_cli(data_dir, "users", "list")
    assert listed.returncode == 0
    users = json.loads(listed.stdout)
    assert users == [
        {"id": created["id"], "email": EMAIL, "roles": [], "disabled": False,
         "email_verified": False, "mfa": []}
    ]  # fmt: skip
    assert "hash" not in listed.stdout and "argon2" not in listed.stdout

    # The password read from stdin (newline stripped) is the one that logs in.
    login(app)
    assert app.get("/auth/me").json()["id"] == created["id"]
    r = app.post("/auth/login", json={"email": EMAIL, "password": PASSWORD + "\n"})
    assert r.status_code == 401


SECRET = "hunter2-hunter2-hunter2"


def test_a_password_is_never_accepted_as_an_argument(data_dir: Path) -> None:
    attempts = [
        ["users", "add", EMAIL, "--password", SECRET],
        ["users", "add", EMAIL, "--password=" + SECRET],
        ["users", "add", EMAIL, "--pass", SECRET],  # no abbreviation of --password-stdin
        ["users", "add", EMAIL, SECRET],
        ["users", "set-password", EMAIL, "--password", SECRET],
        ["--password", SECRET, "users", "add", EMAIL],
        [SECRET],
    ]
    procs = [start_cli(data_dir, *args) for args in attempts]
    for proc, args in zip(procs, attempts, strict=True):
        result = finish_cli(proc, PASSWORD + "\n")
        assert result.returncode == 2, args  # argparse's usage error
        assert "Traceback" not in result.stderr
        # Not even echoed back in the usage error: it would land in logs.
        assert "hunter2" not in result.stdout + result.stderr, args
    assert cli_json(data_dir, "users", "list") == []


def test_bare_password_flag_is_not_an_abbreviation_of_password_stdin(data_dir: Path) -> None:
    result = run_cli(data_dir, "users", "add", EMAIL, "--password", stdin=PASSWORD + "\n")
    assert result.returncode == 2
    assert cli_json(data_dir, "users", "list") == []


def test_errors_are_one_line_without_traceback(tmp_path: Path, data_dir: Path) -> None:
    add_user(data_dir)
    cases: list[tuple[list[str], str | None, str]] = [
        (["users", "add", EMAIL, "--password-stdin"], PASSWORD, "already exists"),
        (["users", "add", "ADA@example.com", "--password-stdin"], PASSWORD, "already exists"),
        (["users", "add", "bob@example.com", "--password-stdin"], "short", "password"),
        (["users", "add", "bob@example.com", "--password-stdin"], "", "password"),
        (["users", "add", "bob@example.com", "--password-stdin"], "x" * 5000, "password"),
        (["users", "add", "not-an-email", "--password-stdin"], PASSWORD, "email"),
        (["users", "set-password", EMAIL, "--password-stdin"], "short", "password"),
        (["users", "set-password", "bob@example.com", "--password-stdin"], PASSWORD, "No such"),
        (["users", "disable", "bob@example.com"], None, "No such user"),
        (["roles", "grant", "bob@example.com", "admin"], None, "No such user"),
        (["roles", "revoke", "bob@example.com", "admin"], None, "No such user"),
        (["sessions", "list", "bob@example.com"], None, "No such user"),
        (["sessions", "revoke", "bob@example.com", "--all"], None, "No such user"),
        (["sessions", "revoke", EMAIL, "A" * 22], None, "No such login"),
    ]
    # Independent and all failing, so they run side by side.
    procs = [start_cli(data_dir, *args) for args, _, _ in cases]
    for proc, (_, stdin, needle) in zip(procs, cases, strict=True):
        result = finish_cli(proc, None if stdin is None else stdin + "\n")
        assert_clean_failure(result, needle)
        if stdin:
            assert stdin not in result.stderr
    # Nothing was created or changed by the failures.
    users = cli_json(data_dir, "users", "list")
    assert [(u["email"], u["roles"], u["disabled"]) for u in users] == [(EMAIL, [], False)]

    # Configuration problems are reported the same way.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_clean_failure(run_cli(data_dir, "users", "list", env=cli_env(blocker)), "data directory")
    assert_clean_failure(
        run_cli(data_dir, "users", "list", env=cli_env(data_dir, GATEPASS_PORT="eighty")),
        "GATEPASS_PORT",
    )
    unreachable = cli_env(data_dir, GATEPASS_SESSION_STORE_URL="redis://127.0.0.1:1/0")
    assert_clean_failure(run_cli(data_dir, "sessions", "list", EMAIL, env=unreachable), "Redis")


def test_malformed_role_names_are_refused(data_dir: Path) -> None:
    add_user(data_dir)
    roles = ["", " admin", "admin,root", "a\nb", "x" * 65, "-admin"]
    procs = [start_cli(data_dir, "roles", "grant", EMAIL, role) for role in roles]
    for proc in procs:
        result = finish_cli(proc)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
    assert cli_json(data_dir, "users", "list")[0]["roles"] == []
    # A stored role of any shape can still be revoked.
    assert run_cli(data_dir, "roles", "revoke", EMAIL, "").returncode == 0


def test_roles_grant_and_revoke_reach_a_live_session(app: TestClient, data_dir: Path) -> None:
    add_user(data_dir)
    login(app)
    assert app.get("/admin/users").status_code == 403

    granted = run_cli(data_dir, "roles", "grant", EMAIL, "admin")
    assert granted.returncode == 0, granted.stderr
    assert json.loads(granted.stdout) == {"email": EMAIL, "roles": ["admin"]}
    # Granting twice changes nothing.
    again = run_cli(data_dir, "roles", "grant", EMAIL, "admin")
    assert json.loads(again.stdout)["roles"] == ["admin"]
    r = app.get("/admin/users")
    assert r.status_code == 200
    assert [u["email"] for u in r.json()] == [EMAIL]
    assert app.get("/auth/me").json()["roles"] == ["admin"]

    revoked = run_cli(data_dir, "roles", "revoke", EMAIL, "admin")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["roles"] == []
    assert app.get("/admin/users").status_code == 403


def test_set_password_ends_every_session(app: TestClient, data_dir: Path) -> None:
    add_user(data_dir)
    first = login(app)
    second = login_elsewhere(app)

    result = run_cli(
        data_dir, "users", "set-password", EMAIL, "--password-stdin", stdin=NEW_PASSWORD + "\n"
    )
    assert result.returncode == 0, result.stderr
    assert NEW_PASSWORD not in result.stdout + result.stderr
    assert "2 logins ended" in result.stdout

    assert status_as(app, "GET", "/auth/me", first) == 401
    assert status_as(app, "GET", "/auth/me", second) == 401
    app.cookies.clear()
    old = app.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert old.status_code == 401
    login(app, password=NEW_PASSWORD)


def test_disable_ends_sessions_and_blocks_login(app: TestClient, data_dir: Path) -> None:
    add_user(data_dir)
    token = login(app)
    result = run_cli(data_dir, "users", "disable", EMAIL)
    assert result.returncode == 0, result.stderr
    assert status_as(app, "GET", "/auth/me", token) == 401
    app.cookies.clear()
    r = app.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_credentials"
    users = cli_json(data_dir, "users", "list")
    assert users[0]["disabled"] is True


def test_sessions_list_and_revoke(app: TestClient, data_dir: Path) -> None:
    add_user(data_dir)
    add_user(data_dir, "bob@example.com")
    first = login(app)
    second = login_elsewhere(app)
    bobs = login_elsewhere(app, "bob@example.com")

    listed = run_cli(data_dir, "sessions", "list", EMAIL)
    assert listed.returncode == 0, listed.stderr
    sessions = json.loads(listed.stdout)
    assert len(sessions) == 2
    for s in sessions:
        assert set(s) == {
            "id", "kind", "created_at", "last_seen_at", "ip", "user_agent", "current",
            "device_bound",
        }  # fmt: skip
        assert s["kind"] == "session"
        assert s["current"] is False
    # Public ids only: no cookie value is ever printed.
    for token in (first, second, bobs):
        assert token not in listed.stdout

    # Which listed id is the first browser's?  The server tells its owner.
    current = [s["id"] for s in app.get("/auth/sessions").json() if s["current"]]
    assert len(current) == 1
    first_id = current[0]
    (second_id,) = {s["id"] for s in sessions} - {first_id}

    # Bob's session id cannot be ended under Ada's name, nor hers under his.
    bob_id = cli_json(data_dir, "sessions", "list", "bob@example.com")[0]["id"]
    assert_clean_failure(run_cli(data_dir, "sessions", "revoke", EMAIL, bob_id), "No such login")
    assert_clean_failure(
        run_cli(data_dir, "sessions", "revoke", "bob@example.com", first_id), "No such login"
    )
    assert status_as(app, "GET", "/auth/me", bobs) == 200

    one = run_cli(data_dir, "sessions", "revoke", EMAIL, second_id)
    assert one.returncode == 0, one.stderr
    assert status_as(app, "GET", "/auth/me", second) == 401
    assert status_as(app, "GET", "/auth/me", first) == 200
    remaining = cli_json(data_dir, "sessions", "list", EMAIL)
    assert [s["id"] for s in remaining] == [first_id]

    everything = run_cli(data_dir, "sessions", "revoke", EMAIL, "--all")
    assert everything.returncode == 0, everything.stderr
    assert "1 login ended" in everything.stdout
    assert status_as(app, "GET", "/auth/me", first) == 401
    assert cli_json(data_dir, "sessions", "list", EMAIL) == []
    # Other users are untouched.
    assert status_as(app, "GET", "/auth/me", bobs) == 200


def test_sessions_revoke_needs_all_or_an_id(data_dir: Path) -> None:
    add_user(data_dir)
    for args in (["sessions", "revoke", EMAIL], ["sessions", "revoke", EMAIL, "--all", "X"]):
        result = run_cli(data_dir, *args)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr


def test_users_verify_lets_an_unverified_user_in(tmp_path: Path, data_dir: Path) -> None:
    with make_client(tmp_path, email_verification="required") as app:
        add_user(data_dir)
        creds = {"email": EMAIL, "password": PASSWORD}
        r = app.post("/auth/login", json=creds)
        assert (r.status_code, r.json()["error"]) == (403, "email_unverified")
        assert cli_json(data_dir, "users", "list")[0]["email_verified"] is False
        result = run_cli(data_dir, "users", "verify", EMAIL)
        assert (result.returncode, result.stdout) == (0, f"{EMAIL}: email verified\n")
        assert app.post("/auth/login", json=creds).status_code == 200
        assert app.get("/auth/me").json()["email_verified"] is True
        assert cli_json(data_dir, "users", "list")[0]["email_verified"] is True
    assert_clean_failure(run_cli(data_dir, "users", "verify", "nobody@example.com"), "No such")
