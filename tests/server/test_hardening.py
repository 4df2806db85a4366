"""The smaller holes an attack review found (issue 10): settings checked at
start-up, no-store on personal answers, headers on every answer, scopes by
policy, registration throttled, one user-id type."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gatepass.errors import ConfigurationError, InvalidScope
from gatepass.server.settings import Settings
from gatepass.sessions.manager import SessionManager
from gatepass.stores.memory import MemorySessionStore
from gatepass.tokens.scopes import ScopePolicy
from tests.server.conftest import PASSWORD, make_client, register

# ------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"GATEPASS_CORS_ORIGINS": "*"}, "not an origin"),
        ({"GATEPASS_CORS_ORIGINS": "https://app.example, https://*.example"}, "not an origin"),
        ({"GATEPASS_CORS_ORIGINS": "https://u:hunter2@app.example"}, "not an origin"),
        ({"GATEPASS_PUBLIC_URL": "ftp://example"}, "GATEPASS_PUBLIC_URL"),
        ({"GATEPASS_TOKEN_SCOPES": "admin"}, "GATEPASS_TOKEN_SCOPES"),
        ({"GATEPASS_TOKEN_SCOPES": 'admin=bad"scope'}, "Invalid scope"),
        ({"GATEPASS_REGISTRATION_LIMIT": "-1"}, "GATEPASS_REGISTRATION_LIMIT"),
        ({"GATEPASS_SESSION_IDLE_TIMEOUT": "0"}, "GATEPASS_SESSION_IDLE_TIMEOUT"),
        ({"GATEPASS_MAX_BODY_BYTES": "-5"}, "GATEPASS_MAX_BODY_BYTES"),
    ],
)
def test_bad_settings_are_refused_at_start_up(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.load(environ=env)
    assert needle in info.value.detail
    assert "hunter2" not in info.value.detail


def test_serve_with_a_wildcard_cors_origin_exits_non_zero(tmp_path: Path) -> None:
    """Not a server that starts and then answers 500 to everything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    env.update(GATEPASS_CORS_ORIGINS="*", GATEPASS_DATA_DIR=str(tmp_path), GATEPASS_PORT="1")
    result = subprocess.run(
        [sys.executable, "-m", "gatepass", "serve"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "not an origin" in result.stderr


# ------------------------------------------------------------ headers


def test_personal_answers_are_no_store(client: TestClient) -> None:
    register(client)
    assert client.post("/auth/login", json={"email": "ada@example.com",
                                            "password": PASSWORD}).status_code == 200  # fmt: skip
    for path in ("/auth/me", "/auth/sessions", "/auth/csrf"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "no-store" in r.headers["cache-control"], path
    # /admin/users: 403 for Ada, still not stored; 401 anonymous likewise.
    r = client.get("/admin/users")
    assert r.status_code == 403 and "no-store" in r.headers["cache-control"]
    client.cookies.clear()
    assert "no-store" in client.get("/auth/me").headers["cache-control"]
    # A public, credential-free answer keeps its own policy.
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.headers["cache-control"] == "public, max-age=60"


def test_admin_listing_is_no_store(tmp_path: Path) -> None:
    from tests.server.test_cli import add_user, run_cli

    data_dir = tmp_path / "data"
    with make_client(tmp_path) as client:
        add_user(data_dir)
        assert run_cli(data_dir, "roles", "grant", "ada@example.com", "admin").returncode == 0
        r = client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert r.status_code == 200
        r = client.get("/admin/users")
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"


def test_413_and_431_carry_the_security_headers(client: TestClient) -> None:
    too_long = client.post("/auth/login", content=b"{" + b" " * (2 << 20) + b"}",
                           headers={"content-type": "application/json"})  # fmt: skip
    huge_header = client.get("/auth/me", headers={"cookie": "a=" + "b" * 20_000})
    assert too_long.status_code == 413
    assert huge_header.status_code == 431
    for r in (too_long, huge_header):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"


# ------------------------------------------------------------ scopes


def test_scope_policy_grants_by_role_and_refuses_unknown_scopes() -> None:
    policy = ScopePolicy.parse("admin=users:read users:write; *=profile; support=users:read")
    assert policy.grant((), ["profile"]) == ("profile",)
    assert policy.grant((), ["users:read", "profile"]) == ("profile",)
    assert policy.grant(("admin",), ["users:write", "profile", "users:write"]) == (
        "users:write", "profile",
    )  # fmt: skip
    assert policy.grant(("support",), ["users:write"]) == ()
    assert policy.grant(("admin",), []) == ()
    for unknown in (["admin"], ["users:read", "users:delete"], ["*"]):
        with pytest.raises(InvalidScope):
            policy.grant(("admin",), unknown)
    assert policy.narrow(("support",), ("users:read", "users:write", "profile")) == (
        "users:read", "profile",
    )  # fmt: skip
    empty = ScopePolicy()
    with pytest.raises(InvalidScope):
        empty.grant(("admin",), ["anything"])


def test_token_scopes_come_from_the_policy_not_the_client(tmp_path: Path) -> None:
    from tests.server.test_cli import add_user, run_cli

    data_dir = tmp_path / "data"
    with make_client(tmp_path, token_scopes="admin=reports:write; *=reports:read") as client:
        add_user(data_dir)

        def token(scope: str) -> dict[str, object]:
            fields = {"email": "ada@example.com", "password": PASSWORD, "scope": scope}
            r = client.post("/auth/token", json=fields)
            body: dict[str, object] = r.json()
            body["status"] = r.status_code
            return body

        got = token("reports:read reports:write")
        assert got["status"] == 200 and got["scope"] == "reports:read"
        assert token("reports:delete")["error"] == "invalid_scope"
        assert token("")["scope"] == ""

        assert run_cli(data_dir, "roles", "grant", "ada@example.com", "admin").returncode == 0
        admin = token("reports:write reports:read")
        assert admin["scope"] == "reports:write reports:read"
        # The role goes: the next refresh drops its scope (and the role).
        assert run_cli(data_dir, "roles", "revoke", "ada@example.com", "admin").returncode == 0
        r = client.post("/auth/refresh", json={"refresh_token": admin["refresh_token"]})
        assert r.status_code == 200 and r.json()["scope"] == "reports:read"
        me = client.get("/auth/me", headers={"authorization": f"Bearer {r.json()['access_token']}"})
        assert me.json()["roles"] == []


def test_refresh_of_a_disabled_user_is_refused(tmp_path: Path) -> None:
    from tests.server.test_cli import add_user

    data_dir = tmp_path / "data"
    with make_client(tmp_path) as client:
        add_user(data_dir)
        pair = client.post(
            "/auth/token", json={"email": "ada@example.com", "password": PASSWORD}
        ).json()
        parts = client.app.state.gatepass.components  # type: ignore[attr-defined]
        assert client.portal is not None
        user = client.portal.call(parts.accounts.get, "ada@example.com")
        # Disabled behind the server's back (no generation bump): the roles
        # loader still refuses the refresh.
        client.portal.call(parts.accounts.users.set_disabled, user.id, True)
        r = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 401 and r.json()["error"] == "invalid_grant"


# ------------------------------------------------------------ registration


def test_registration_is_throttled_per_address(tmp_path: Path) -> None:
    with make_client(tmp_path, registration_limit=3, peer=("203.0.113.5", 1)) as client:
        statuses = [
            client.post("/auth/register", json={"email": f"u{i}@example.com",
                                                 "password": PASSWORD}).status_code
            for i in range(3)
        ]  # fmt: skip
        assert statuses == [201, 201, 201]
        # Over the limit: new and existing emails alike get 429, and nothing
        # is created.
        for email in ("u0@example.com", "new@example.com"):
            r = client.post("/auth/register", json={"email": email, "password": PASSWORD})
            assert r.status_code == 429 and r.json()["error"] == "rate_limited"
            assert int(r.headers["retry-after"]) > 0
        login = client.post("/auth/login", json={"email": "new@example.com", "password": PASSWORD})
        assert login.status_code == 401
    # Another address has its own allowance.
    with make_client(tmp_path, registration_limit=3, peer=("198.51.100.7", 1)) as other:
        r = other.post("/auth/register", json={"email": "new@example.com", "password": PASSWORD})
        assert r.status_code == 201


# ------------------------------------------------------------ user ids


async def test_user_ids_are_strings_at_the_api() -> None:
    manager = SessionManager(MemorySessionStore())
    for bad in (42, None, b"42", ""):
        with pytest.raises(TypeError):
            await manager.create(bad)  # type: ignore[arg-type]  # wrong on purpose
    issued = await manager.create("42")
    assert issued.record.user_id == "42"
    assert [r.key for r in await manager.list_user("42")] == [issued.record.key]
    assert await manager.list_user("042") == []


# ------------------------------------------------------------ outages


@pytest.mark.postgres
def test_a_missing_postgres_database_is_an_outage_not_a_crash(
    tmp_path: Path, postgres_url: str
) -> None:
    """Refused at connect time (no such database: dropped, or not created
    yet) is 503 store_unavailable, never 500 (SECURITY: outages)."""
    missing = postgres_url.split("?")[0].rsplit("/", 1)[0] + "/gatepass_no_such_database"
    with make_client(tmp_path, database_url=missing, session_store_url=missing) as client:
        r = client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert r.status_code == 503 and r.json()["error"] == "store_unavailable", r.text
        assert "gatepass_no_such_database" not in r.text
        assert client.get("/readyz").status_code == 503


def test_settings_keep_what_they_are_given() -> None:
    """A merge once overwrote GATEPASS_PUBLIC_URL with the default: pin it."""
    given = Settings(public_url="https://id.example.com", port=8443)
    assert given.public_url == "https://id.example.com"
    assert Settings(port=8443).public_url == "http://127.0.0.1:8443"
    env = Settings.load(environ={"GATEPASS_PUBLIC_URL": "https://auth.example.test"})
    assert env.public_url == "https://auth.example.test"
