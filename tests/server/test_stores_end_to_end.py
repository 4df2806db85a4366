"""The whole session flow against each real store, through the server."""

from __future__ import annotations

from starlette.testclient import TestClient

from gatepass.server.components import Components
from tests.server.conftest import login, login_elsewhere, register, status_as


def test_flow_on_every_store(store_client: TestClient) -> None:
    client = store_client
    register(client)
    token = login(client)
    assert client.get("/auth/me").status_code == 200
    second = login_elsewhere(client)
    assert len(client.get("/auth/sessions").json()) == 2
    assert client.post("/auth/sessions/revoke-others").status_code == 204
    assert status_as(client, "GET", "/auth/me", second) == 401
    assert client.get("/auth/me").status_code == 200
    assert client.post("/auth/logout").status_code == 204
    client.cookies.clear()
    r = client.get("/auth/me", headers={"cookie": f"__Host-gatepass={token}"})
    assert r.status_code == 401


def test_admin_role_takes_effect_on_live_sessions(store_client: TestClient) -> None:
    client = store_client
    register(client)
    login(client)
    assert client.get("/admin/users").status_code == 403
    parts: Components = client.app.state.gatepass.components  # type: ignore[attr-defined]
    assert client.portal is not None

    async def grant() -> None:
        user = await parts.accounts.get("ada@example.com")
        await parts.accounts.grant_role(user, "admin")

    client.portal.call(grant)
    r = client.get("/admin/users")
    assert r.status_code == 200
    assert [u["email"] for u in r.json()] == ["ada@example.com"]

    async def revoke() -> None:
        user = await parts.accounts.get("ada@example.com")
        await parts.accounts.revoke_role(user, "admin")

    client.portal.call(revoke)
    assert client.get("/admin/users").status_code == 403


def test_password_change_and_disable_end_every_session(store_client: TestClient) -> None:
    client = store_client
    register(client)
    login(client)
    second = login_elsewhere(client)
    parts: Components = client.app.state.gatepass.components  # type: ignore[attr-defined]
    assert client.portal is not None

    async def change() -> None:
        user = await parts.accounts.get("ada@example.com")
        await parts.accounts.set_password(user, "another long passphrase")

    client.portal.call(change)
    assert client.get("/auth/me").status_code == 401
    assert status_as(client, "GET", "/auth/me", second) == 401
    login(client, password="another long passphrase")

    async def disable() -> None:
        await parts.accounts.disable(await parts.accounts.get("ada@example.com"))

    client.portal.call(disable)
    assert client.get("/auth/me").status_code == 401
    r = client.post(
        "/auth/login", json={"email": "ada@example.com", "password": "another long passphrase"}
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_credentials"
