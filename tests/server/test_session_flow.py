"""The stateful flow of the seed, through the server's HTTP contract."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.server.conftest import PASSWORD, login, login_elsewhere, register, session_cookie


def test_register_login_me_sessions_logout(client: TestClient) -> None:
    user_id = register(client)
    r = client.post("/auth/login", json={"email": "Ada@Example.com", "password": PASSWORD})
    assert r.status_code == 200
    assert r.json()["user"] == {
        "id": user_id, "email": "ada@example.com", "roles": [], "email_verified": False
    }
    set_cookie = session_cookie(r)
    assert set_cookie.startswith("__Host-gatepass=")
    assert "; Path=/; Secure; HttpOnly; SameSite=Lax" in set_cookie
    assert "Max-Age" not in set_cookie  # a browser-session cookie unless "remember me"
    assert r.headers["cache-control"] == "no-store"
    token = client.cookies["__Host-gatepass"]

    me = client.get("/auth/me")
    assert me.status_code == 200
    assert me.json() == {
        "id": user_id, "email": "ada@example.com", "roles": [], "email_verified": False
    }

    sessions = client.get("/auth/sessions").json()
    assert len(sessions) == 1
    assert sessions[0]["current"] is True
    assert sessions[0]["user_agent"]
    assert token not in str(sessions)

    r = client.post("/auth/logout")
    assert r.status_code == 204
    assert "Max-Age=0" in session_cookie(r)
    assert session_cookie(r).startswith("__Host-gatepass=;")

    # The old cookie, replayed, is rejected: the session is gone server-side.
    client.cookies.clear()
    r = client.get("/auth/me", headers={"cookie": f"__Host-gatepass={token}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"]
    assert r.json()["error"] == "not_authenticated"


def test_remember_me_sets_a_persistent_cookie(client: TestClient) -> None:
    register(client)
    r = client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD, "remember": True}
    )
    assert r.status_code == 200
    assert "Max-Age=2592000" in session_cookie(r)


def test_unknown_user_and_wrong_password_look_identical(client: TestClient) -> None:
    register(client)
    wrong = client.post("/auth/login", json={"email": "ada@example.com", "password": "x" * 12})
    unknown = client.post("/auth/login", json={"email": "bob@example.com", "password": "x" * 12})
    malformed = client.post("/auth/login", json={"email": "not-an-email", "password": "x" * 12})
    for r in (wrong, unknown, malformed):
        assert r.status_code == 401
        assert r.json() == {"error": "invalid_credentials", "detail": "Invalid email or password."}
        assert "set-cookie" not in r.headers
    assert wrong.headers.keys() == unknown.headers.keys()


def test_login_issues_a_fresh_id_and_kills_a_planted_one(client: TestClient) -> None:
    register(client)
    first = login(client)
    # The attacker plants their own (valid) session id in the victim's browser…
    second = login(client)
    assert second != first
    # …and the id presented at login is destroyed, not adopted.
    client.cookies.clear()
    r = client.get("/auth/me", headers={"cookie": f"__Host-gatepass={first}"})
    assert r.status_code == 401


def test_invented_session_id_is_never_adopted(client: TestClient) -> None:
    invented = "B" * 43
    r = client.get("/auth/me", headers={"cookie": f"__Host-gatepass={invented}"})
    assert r.status_code == 401
    # The stale cookie is cleared rather than kept.
    assert "Max-Age=0" in session_cookie(r)


@pytest.mark.parametrize(
    "cookie",
    [
        "__Host-gatepass=",
        "__Host-gatepass=garbage",
        "__Host-gatepass=" + "A" * 42,
        "__Host-gatepass=" + "A" * 44,
        "__Host-gatepass=" + "%00" * 20,
        "__Host-gatepass=\"" + "A" * 43,
        "__Host-gatepass=" + "é" * 43,
        "__Host-gatepass=" + "A" * 5000,
    ],
)
def test_garbage_cookies_are_anonymous_never_500(client: TestClient, cookie: str) -> None:
    r = client.get("/auth/me", headers={"cookie": cookie.encode("utf-8")})
    assert r.status_code == 401


def test_duplicate_session_cookie_is_not_authenticated(client: TestClient) -> None:
    register(client)
    token = login(client)
    client.cookies.clear()
    for header in (
        f"__Host-gatepass={token}; __Host-gatepass={'C' * 43}",
        f"__Host-gatepass={'C' * 43}; __Host-gatepass={token}",
        f"__host-gatepass={'C' * 43}; __Host-gatepass={token}",
    ):
        assert client.get("/auth/me", headers={"cookie": header}).status_code == 401
    # The real cookie alone still works: nothing was destroyed by the attempts.
    assert client.get("/auth/me", headers={"cookie": f"__Host-gatepass={token}"}).status_code == 200


def test_revoke_one_and_revoke_others(client: TestClient) -> None:
    register(client)
    a = login(client)
    b = login_elsewhere(client)  # another device
    c = login_elsewhere(client)
    client.cookies.clear()
    as_a = {"cookie": f"__Host-gatepass={a}"}
    listed = client.get("/auth/sessions", headers=as_a).json()
    assert len(listed) == 3
    other = next(s for s in listed if not s["current"])
    assert client.delete(f"/auth/sessions/{other['id']}", headers=as_a).status_code == 204
    assert len(client.get("/auth/sessions", headers=as_a).json()) == 2
    assert client.post("/auth/sessions/revoke-others", headers=as_a).status_code == 204
    assert [s["current"] for s in client.get("/auth/sessions", headers=as_a).json()] == [True]
    for token in (b, c):
        r = client.get("/auth/me", headers={"cookie": f"__Host-gatepass={token}"})
        assert r.status_code == 401


def test_cannot_revoke_another_users_session(client: TestClient) -> None:
    register(client)
    register(client, "eve@example.com")
    ada = login(client)
    # Logging in on the same client would end Ada's session: use another browser.
    eve = login_elsewhere(client, "eve@example.com")
    client.cookies.clear()
    ada_session = client.get("/auth/sessions", headers={"cookie": f"__Host-gatepass={ada}"})
    target = ada_session.json()[0]["id"]
    r = client.delete(f"/auth/sessions/{target}", headers={"cookie": f"__Host-gatepass={eve}"})
    assert r.status_code == 404
    assert client.get("/auth/me", headers={"cookie": f"__Host-gatepass={ada}"}).status_code == 200


def test_admin_route_401_403_200(client: TestClient) -> None:
    register(client)
    assert client.get("/admin/users").status_code == 401
    login(client)
    r = client.get("/admin/users")
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{", {"content-type": "application/json"}, 400),
        (b"[]", {"content-type": "application/json"}, 400),
        (b'{"email": 1, "password": "x"}', {"content-type": "application/json"}, 400),
        (b'{"email": "a@b.co"}', {"content-type": "application/json"}, 400),
        (b'{"email":"a@b.co","password":"x"}', {"content-type": "text/plain"}, 400),
        (b"\xff\xfe", {"content-type": "application/json"}, 400),
        (b"[" * 100_000, {"content-type": "application/json"}, 413),
        (b'{"email":"a@b.co","password":"short"}', {"content-type": "application/json"}, 400),
    ],
)
def test_register_bad_input_is_a_clear_4xx_and_stores_nothing(
    client: TestClient, body: bytes, headers: dict[str, str], status: int
) -> None:
    r = client.post("/auth/register", content=body, headers=headers)
    assert r.status_code == status
    assert set(r.json()) == {"error", "detail"}
    r = client.post("/auth/login", json={"email": "a@b.co", "password": "x" * 8})
    assert r.status_code == 401


def test_oversize_password_is_refused_before_hashing(client: TestClient) -> None:
    r = client.post("/auth/register", json={"email": "a@b.co", "password": "x" * 5000})
    assert r.status_code in (400, 413)
    r = client.post("/auth/login", json={"email": "a@b.co", "password": "x" * 5000})
    assert r.status_code in (400, 413)


def test_duplicate_registration_is_409(client: TestClient) -> None:
    register(client)
    r = client.post("/auth/register", json={"email": "ADA@example.com", "password": PASSWORD})
    assert r.status_code == 409


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"users": "ok", "sessions": "ok"}
