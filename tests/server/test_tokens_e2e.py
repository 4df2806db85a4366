"""The token API of a real ``gatepass serve`` subprocess, on each real store.

SECURITY.md cases 10-15 and RFC 6750 over the network: logout, refresh
rotation with reuse detection, concurrent refreshes, a restart, and the admin
CLI changing a password or disabling an account while the server runs.  The
session store (refresh families, revocation, generations) is SQLite by
default, Redis, or PostgreSQL (users there too).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.interop.serving import PASSWORD, GatepassServer

Start = Callable[..., GatepassServer]
CHALLENGE = 'Bearer realm="gatepass"'
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "redis":
        # redis://127.0.0.1:6379/0?prefix=gptest:<random>:
        return {"GATEPASS_SESSION_STORE_URL": request.getfixturevalue("isolated_redis_url")}
    if request.param == "postgres":
        dsn = request.getfixturevalue("postgres_url")
        return {"GATEPASS_DATABASE_URL": dsn, "GATEPASS_SESSION_STORE_URL": dsn}
    return {}


def _starter(tmp_path: Path, store: dict[str, str]) -> Iterator[Start]:
    servers: list[GatepassServer] = []

    def start(**settings: str) -> GatepassServer:
        server = GatepassServer(tmp_path / f"server{len(servers)}", **{**store, **settings})
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def start(tmp_path: Path, store_env: dict[str, str]) -> Iterator[Start]:
    """Starts servers on this test's store; every one is stopped afterwards."""
    yield from _starter(tmp_path, store_env)


@pytest.fixture
def start_sqlite(tmp_path: Path) -> Iterator[Start]:
    yield from _starter(tmp_path, {})


def _email(label: str) -> str:
    return f"{label}-{secrets.token_hex(4)}@example.com"


def _pair(server: GatepassServer, email: str, password: str = PASSWORD) -> tuple[str, str]:
    body = server.token(email, password)
    access, refresh = body["access_token"], body["refresh_token"]
    assert isinstance(access, str) and isinstance(refresh, str)
    return access, refresh


def _claims(access: str) -> dict[str, object]:
    part = access.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


def _assert_invalid_token(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_token"
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer "), challenge
    assert 'error="invalid_token"' in challenge


def _assert_invalid_grant(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_grant"
    assert "refresh_token" not in r.json()


def _refreshed(server: GatepassServer, refresh: str) -> tuple[str, str]:
    r = server.refresh(refresh)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"] != refresh
    return body["access_token"], body["refresh_token"]


# -- SECURITY 10 ------------------------------------------------------------------


def test_logout_with_bearer_ends_the_access_token_and_its_refresh_family(start: Start) -> None:
    server = start()
    email = _email("logout")
    server.add_user(email)
    access, refresh = _pair(server, email)
    other_access, other_refresh = _pair(server, email)  # another device: another family
    assert server.me(access).status_code == 200

    r = server.http.post("/auth/logout", headers={"authorization": f"Bearer {access}"})
    assert r.status_code == 204, r.text

    _assert_invalid_token(server.me(access))
    _assert_invalid_grant(server.refresh(refresh))
    # Logging out one device leaves the other alone.
    assert server.me(other_access).status_code == 200
    _refreshed(server, other_refresh)


# -- SECURITY 12 ------------------------------------------------------------------


def test_reusing_a_rotated_refresh_token_revokes_the_family_and_is_logged(start: Start) -> None:
    grace = 2
    server = start(GATEPASS_REFRESH_GRACE=str(grace))
    email = _email("reuse")
    server.add_user(email)
    access1, refresh1 = _pair(server, email)
    bystander_access, bystander_refresh = _pair(server, email)
    access2, refresh2 = _refreshed(server, refresh1)
    rotated_at = time.monotonic()
    assert server.me(access1).status_code == 200
    assert server.me(access2).status_code == 200

    time.sleep(max(0.0, rotated_at + grace + 1 - time.monotonic()))
    _assert_invalid_grant(server.refresh(refresh1))  # the replay

    # The whole family is gone: the successor and every access token of it.
    _assert_invalid_grant(server.refresh(refresh2))
    _assert_invalid_token(server.me(access2))
    _assert_invalid_token(server.me(access1))
    # Another family of the same user is untouched.
    assert server.me(bystander_access).status_code == 200
    _refreshed(server, bystander_refresh)

    server.stop()  # flush the log
    log = server.log()
    reuse_lines = [line for line in log.splitlines() if "reuse" in line.lower()]
    assert reuse_lines, log
    assert any("WARNING" in line for line in reuse_lines), reuse_lines
    for secret in (access1, access2, refresh1, refresh2, bystander_refresh):
        assert secret not in log
        # Nor the refresh token's secret half on its own.
        assert secret.split(".")[-1] not in log


# -- SECURITY 13 ------------------------------------------------------------------


def test_concurrent_refreshes_get_one_successor(start: Start) -> None:
    server = start()  # default grace: 10 s
    email = _email("race")
    server.add_user(email)
    _, refresh = _pair(server, email)
    family = _claims(server.token(email)["access_token"])  # type: ignore[arg-type]
    n = 20
    barrier = threading.Barrier(n)
    answers: list[httpx.Response | BaseException] = [RuntimeError("not run")] * n

    def worker(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            barrier.wait()
            try:
                answers[i] = client.post("/auth/refresh", json={"refresh_token": refresh})
            except BaseException as exc:  # reported below
                answers[i] = exc

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert time.monotonic() - started < 10, "the race did not fit in the grace window"

    responses = [a for a in answers if isinstance(a, httpx.Response)]
    assert len(responses) == n, answers
    assert [r.status_code for r in responses] == [200] * n, [r.text for r in responses]
    successors = {r.json()["refresh_token"] for r in responses}
    assert len(successors) == 1, successors
    [successor] = successors
    assert successor != refresh
    fids = {_claims(r.json()["access_token"])["fid"] for r in responses}
    assert len(fids) == 1 and fids != {family["fid"]}  # one family, not the other login's
    for r in responses[:3]:
        assert server.me(r.json()["access_token"]).status_code == 200

    # The successor works (once: it rotates to a new token of the same family).
    access3, refresh3 = _refreshed(server, successor)
    assert refresh3 not in (refresh, successor)
    assert {_claims(access3)["fid"]} == fids
    assert server.me(access3).status_code == 200


# -- SECURITY 14 ------------------------------------------------------------------


def test_restart_keeps_rotation_state_and_signing_keys(start: Start) -> None:
    grace = 1
    server = start(GATEPASS_REFRESH_GRACE=str(grace))
    email = _email("restart")
    server.add_user(email)
    access1, refresh1 = _pair(server, email)
    access2, refresh2 = _refreshed(server, refresh1)
    rotated_at = time.monotonic()
    kids = server.jwks_kids()

    server.stop()
    server.start()  # same data dir, store and port

    assert server.jwks_kids() == kids
    # Tokens issued before the restart verify after it: the keys persisted.
    assert server.me(access1).status_code == 200
    assert server.me(access2).status_code == 200

    time.sleep(max(0.0, rotated_at + grace + 1 - time.monotonic()))
    _assert_invalid_grant(server.refresh(refresh1))  # the rotation was remembered
    _assert_invalid_grant(server.refresh(refresh2))  # and the reuse revoked the family
    _assert_invalid_token(server.me(access2))


# -- SECURITY 15 ------------------------------------------------------------------


def test_password_change_by_cli_ends_the_users_tokens(start: Start) -> None:
    server = start()
    email = _email("password")
    server.add_user(email)
    access, refresh = _pair(server, email)
    assert server.me(access).status_code == 200

    new_password = "another long passphrase, freshly chosen"
    server.cli("users", "set-password", email, "--password-stdin", stdin=new_password + "\n")

    _assert_invalid_token(server.me(access))
    _assert_invalid_grant(server.refresh(refresh))
    # The old password is refused, the new one issues tokens that work.
    old = server.http.post("/auth/token", json={"email": email, "password": PASSWORD})
    assert old.status_code == 401
    new_access, new_refresh = _pair(server, email, password=new_password)
    assert server.me(new_access).status_code == 200
    _refreshed(server, new_refresh)
    assert new_password not in server.log()


def test_disabling_a_user_by_cli_ends_the_users_tokens(start: Start) -> None:
    server = start()
    email = _email("disable")
    server.add_user(email)
    access, refresh = _pair(server, email)
    assert server.me(access).status_code == 200

    server.cli("users", "disable", email)

    _assert_invalid_token(server.me(access))
    _assert_invalid_grant(server.refresh(refresh))
    r = server.http.post("/auth/token", json={"email": email, "password": PASSWORD})
    assert r.status_code == 401
    assert "access_token" not in r.text


# -- RFC 6750 and SECURITY 11 (store-independent) ------------------------------------


def test_bearer_challenges_follow_rfc_6750(start_sqlite: Start) -> None:
    server = start_sqlite()
    anonymous = server.http.get("/auth/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == CHALLENGE
    assert "error=" not in anonymous.headers["www-authenticate"]

    for garbage in ("garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 200):
        _assert_invalid_token(server.me(garbage))
    malformed = server.http.get("/auth/me", headers={"authorization": "Bearer not a token!"})
    _assert_invalid_token(malformed)


def test_jwks_publishes_public_keys_with_kid_alg_use(start_sqlite: Start) -> None:
    server = start_sqlite()
    before = server.jwks()["keys"]
    new_kid = json.loads(server.cli("keys", "rotate", "--algorithm", "ES256").stdout)["active"]
    server.wait_for_jwks(lambda kids: new_kid in kids)
    r = server.http.get("/.well-known/jwks.json")
    assert r.headers["content-type"].startswith("application/json")
    keys = r.json()["keys"]
    assert len(before) == 1 and len(keys) == 2
    assert {k["alg"] for k in keys} == {"RS256", "ES256"}
    for key in keys:
        assert isinstance(key["kid"], str) and key["kid"]
        assert key["use"] == "sig"
        assert key["alg"] in ("RS256", "ES256", "EdDSA")
        assert not PRIVATE_JWK_MEMBERS & key.keys(), key
        assert key["kty"] in ("RSA", "EC", "OKP")
    assert len({k["kid"] for k in keys}) == len(keys)
    assert "PRIVATE" not in r.text
