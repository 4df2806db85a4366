"""The token API in-process: Bearer, browser JWT mode, allowlist, stateful JWT, forward auth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gatepass.server.components import Components
from tests.server.conftest import PASSWORD, make_client, register

EMAIL = "ada@example.com"


def token_pair(client: TestClient, email: str = EMAIL) -> dict[str, object]:
    r = client.post("/auth/token", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, object] = r.json()
    return body


def bearer(token: object) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_token_endpoint_needs_no_csrf_and_returns_a_pair(client: TestClient) -> None:
    register(client)
    plain = TestClient(client.app, base_url="https://testserver")  # no CSRF help
    r = plain.post("/auth/token", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert not r.headers.get_list("set-cookie")
    me = plain.get("/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == EMAIL


def test_rfc6750_challenges(client: TestClient) -> None:
    plain = TestClient(client.app, base_url="https://testserver")
    anonymous = plain.get("/auth/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="gatepass"'
    garbage = plain.get("/auth/me", headers=bearer("not.a.token"))
    assert garbage.status_code == 401
    assert 'error="invalid_token"' in garbage.headers["www-authenticate"]
    assert garbage.json()["error"] == "invalid_token"
    spaced = plain.get("/auth/me", headers={"authorization": "Bearer a b"})
    assert spaced.status_code == 401


def test_bearer_requests_need_no_csrf_token(client: TestClient) -> None:
    register(client)
    pair = token_pair(client)
    plain = TestClient(client.app, base_url="https://testserver")
    r = plain.post("/auth/sessions/revoke-others", headers=bearer(pair["access_token"]))
    assert r.status_code == 204


def test_refresh_rotates_and_reuse_revokes_the_family(tmp_path: Path) -> None:
    with make_client(tmp_path, refresh_grace=0) as client:
        register(client)
        first = token_pair(client)
        r = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200
        second = r.json()
        assert second["refresh_token"] != first["refresh_token"]
        # Replaying the rotated token: the family dies, with its access tokens.
        reuse = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert reuse.status_code == 401
        assert reuse.json()["error"] == "invalid_grant"
        later = client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
        assert later.status_code == 401
        for pair in (first, second):
            assert client.get("/auth/me", headers=bearer(pair["access_token"])).status_code == 401


def test_grace_window_gives_two_tabs_the_same_successor(client: TestClient) -> None:
    register(client)
    first = token_pair(client)
    a = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    b = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert a["refresh_token"] == b["refresh_token"]
    again = client.post("/auth/refresh", json={"refresh_token": a["refresh_token"]})
    assert again.status_code == 200


def test_revoke_endpoint_for_access_and_refresh_tokens(client: TestClient) -> None:
    register(client)
    pair = token_pair(client)
    assert client.post("/auth/revoke", json={"token": pair["access_token"]}).status_code == 200
    assert client.get("/auth/me", headers=bearer(pair["access_token"])).status_code == 401
    assert client.post("/auth/revoke", json={"token": pair["refresh_token"]}).status_code == 200
    r = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401
    # RFC 7009: unknown tokens are not an error.
    assert client.post("/auth/revoke", json={"token": "nonsense"}).status_code == 200


def test_logout_with_bearer_ends_the_access_and_refresh_tokens(client: TestClient) -> None:
    register(client)
    pair = token_pair(client)
    plain = TestClient(client.app, base_url="https://testserver")
    assert plain.post("/auth/logout", headers=bearer(pair["access_token"])).status_code == 204
    assert plain.get("/auth/me", headers=bearer(pair["access_token"])).status_code == 401


def test_password_change_ends_tokens(client: TestClient) -> None:
    register(client)
    pair = token_pair(client)
    parts: Components = client.app.state.gatepass.components  # type: ignore[attr-defined]
    assert client.portal is not None

    async def change() -> None:
        await parts.accounts.set_password(await parts.accounts.get(EMAIL), "a brand new passphrase")

    client.portal.call(change)
    assert client.get("/auth/me", headers=bearer(pair["access_token"])).status_code == 401
    r = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401


def test_jwks_publishes_public_parts_only(client: TestClient) -> None:
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys
    for key in keys:
        assert {"kid", "alg", "use"} <= set(key)
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key)


def test_forward_auth(client: TestClient) -> None:
    user_id = register(client)
    pair = token_pair(client)
    plain = TestClient(client.app, base_url="https://testserver")
    assert plain.get("/auth/verify").status_code == 401
    ok = plain.get("/auth/verify", headers=bearer(pair["access_token"]))
    assert ok.status_code == 200
    assert ok.headers["x-auth-user-id"] == user_id
    assert ok.headers["x-auth-email"] == EMAIL
    admin_only = plain.get("/auth/verify?role=admin", headers=bearer(pair["access_token"]))
    assert admin_only.status_code == 403


@pytest.fixture
def jwt_client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, browser_mode="jwt") as c:
        yield c


def test_browser_jwt_mode_keeps_tokens_in_httponly_cookies(jwt_client: TestClient) -> None:
    client = jwt_client
    register(client)
    r = client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 200
    cookies = r.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith("__Host-gatepass-at="))
    refresh = next(c for c in cookies if c.startswith("__Host-gatepass-rt="))
    for cookie in (access, refresh):
        assert "HttpOnly" in cookie and "Secure" in cookie and "Path=/" in cookie
    assert "SameSite=Strict" in refresh
    assert "access_token" not in r.text  # never in the page
    assert client.get("/auth/me").json()["email"] == EMAIL

    # A state-changing request on the cookie still needs the CSRF token,
    # which is now bound to the token family.
    plain = TestClient(client.app, base_url="https://testserver", cookies=client.cookies)
    assert plain.post("/auth/sessions/revoke-others").status_code == 403
    token = client.get("/auth/csrf").json()["csrf_token"]
    with_token = plain.post("/auth/sessions/revoke-others", headers={"x-csrf-token": token})
    assert with_token.status_code == 204

    # Refresh through the cookie: CSRF-checked, then new cookies.
    assert plain.post("/auth/refresh").status_code == 403
    renewed = client.post("/auth/refresh")
    assert renewed.status_code == 200
    assert "__Host-gatepass-rt=" in " ".join(renewed.headers.get_list("set-cookie"))

    out = client.post("/auth/logout")
    assert out.status_code == 204
    client.cookies.clear()
    assert client.get("/auth/me").status_code == 401


def test_allowlist_mode(tmp_path: Path) -> None:
    with make_client(tmp_path, revocation_mode="allowlist") as client:
        register(client)
        pair = token_pair(client)
        assert client.get("/auth/me", headers=bearer(pair["access_token"])).status_code == 200
        assert client.post("/auth/revoke", json={"token": pair["access_token"]}).status_code == 200
        assert client.get("/auth/me", headers=bearer(pair["access_token"])).status_code == 401


def test_stateful_jwt_loads_roles_per_request(tmp_path: Path) -> None:
    with make_client(tmp_path, jwt_stateful=True) as client:
        register(client)
        pair = token_pair(client)
        headers = bearer(pair["access_token"])
        assert client.get("/admin/users", headers=headers).status_code == 403
        parts: Components = client.app.state.gatepass.components  # type: ignore[attr-defined]
        assert client.portal is not None

        async def grant() -> None:
            await parts.accounts.grant_role(await parts.accounts.get(EMAIL), "admin")

        client.portal.call(grant)
        # The same token, unchanged: roles come from the store, not the token.
        assert client.get("/admin/users", headers=headers).status_code == 200
