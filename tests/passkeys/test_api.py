"""Passkeys through the JSON API, against a software authenticator
(tests/passkeys/authenticator.py): registration, sign-in with a passkey
alone, the passkey as second factor, management, and the attacks of
SECURITY 45 (replay, another client's challenge, counter regression, no
user verification, another user's credential, unknown credential, wrong
origin or RP ID, malformed input changing nothing)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gatepass.passkeys.store import Passkey, public_id
from gatepass.server.components import Components
from tests.passkeys.authenticator import SoftAuthenticator, b64
from tests.server.conftest import PASSWORD, make_client, register

ORIGIN = "https://testserver"
EMAIL = "ada@example.com"


def parts_of(client: TestClient) -> Components:
    parts: Components = client.app.state.gatepass.components  # type: ignore[attr-defined]
    return parts


def stored(client: TestClient, credential_id: str) -> Passkey | None:
    assert client.portal is not None
    found: Passkey | None = client.portal.call(parts_of(client).passkeys.store.get, credential_id)
    return found


def session_amr(client: TestClient) -> list[str]:
    user_id = client.get("/auth/me").json()["id"]
    assert client.portal is not None
    [record] = client.portal.call(parts_of(client).sessions.store.list_user, user_id)
    amr: list[str] = record.data["amr"]
    return amr


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, public_url=ORIGIN) as c:
        yield c


def login(client: TestClient, email: str = EMAIL) -> httpx.Response:
    return client.post("/auth/login", json={"email": email, "password": PASSWORD})


def enrol(client: TestClient, authenticator: SoftAuthenticator | None = None, *,
          email: str = EMAIL, name: str = "Laptop") -> SoftAuthenticator:  # fmt: skip
    """Register ``email``, sign in, add a passkey and sign out."""
    register(client, email)
    assert login(client, email).status_code == 200
    authenticator = authenticator or SoftAuthenticator(ORIGIN)
    options = client.post("/auth/passkeys/register/options")
    assert options.status_code == 200, options.text
    r = client.post(
        "/auth/passkeys/register",
        json={"credential": authenticator.create(options.json()), "name": name},
    )
    assert r.status_code == 201, r.text
    assert client.post("/auth/logout").status_code == 204
    return authenticator


def login_options(client: TestClient, **kw: Any) -> dict[str, Any]:
    r = client.post("/auth/passkeys/login/options", **kw)
    assert r.status_code == 200, r.text
    options: dict[str, Any] = r.json()
    return options


def enrol_handle(client: TestClient) -> bytes:
    """The user handle of the enrolled user (their id)."""
    assert client.portal is not None
    user = client.portal.call(parts_of(client).accounts.users.get_by_email, EMAIL)
    assert user is not None
    return user.id.encode()


def passkey_login(client: TestClient, credential: Any, **kw: Any) -> httpx.Response:
    return client.post("/auth/passkeys/login", json={"credential": credential}, **kw)


# -- registration and management ----------------------------------------------


def test_register_list_rename_and_the_factor_state(client: TestClient) -> None:
    register(client)
    assert login(client).status_code == 200
    assert client.get("/auth/passkeys").json() == {"passkeys": []}
    r = client.post("/auth/passkeys/register/options")
    options = r.json()
    assert r.headers["cache-control"] == "no-store"
    assert options["rp"]["id"] == "testserver"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["excludeCredentials"] == []
    laptop = SoftAuthenticator(ORIGIN)
    r = client.post(
        "/auth/passkeys/register",
        json={"credential": laptop.create(options), "name": "  My   laptop "},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == public_id(laptop.id) and body["name"] == "My laptop"
    assert body["last_used_at"] is None and body["transports"] == ["internal"]
    assert "public_key" not in body
    # A second one, named; the first is excluded from its options.
    options = client.post("/auth/passkeys/register/options").json()
    assert [c["id"] for c in options["excludeCredentials"]] == [laptop.id]
    phone = SoftAuthenticator(ORIGIN, backup_eligible=True)
    r = client.post(
        "/auth/passkeys/register", json={"credential": phone.create(options), "name": "Phone"}
    )
    assert r.status_code == 201
    listed = client.get("/auth/passkeys").json()["passkeys"]
    assert [p["name"] for p in listed] == ["My laptop", "Phone"]
    r = client.patch(f"/auth/passkeys/{public_id(phone.id)}", json={"name": "Work phone"})
    assert r.status_code == 200 and r.json()["name"] == "Work phone"
    assert (
        client.patch(f"/auth/passkeys/{public_id(phone.id)}", json={"name": ""}).status_code == 400
    )
    assert (
        client.patch(f"/auth/passkeys/{public_id(phone.id)}", json={"name": "x" * 65}).status_code
        == 400
    )
    bad = client.patch(f"/auth/passkeys/{public_id(phone.id)}", json={"name": "a\u0000b"})
    assert bad.status_code == 400
    assert [p["name"] for p in client.get("/auth/passkeys").json()["passkeys"]][1] == "Work phone"
    assert (
        client.patch("/auth/passkeys/unknownunknownunknown", json={"name": "a"}).status_code == 404
    )
    state = client.get("/auth/mfa").json()
    assert state["passkeys"] == 2 and state["methods"] == ["passkey"]


def test_registration_refuses_another_origin_rp_id_or_a_spent_challenge(
    client: TestClient,
) -> None:
    register(client)
    login(client)
    for kw in ({"origin": "https://evil.example"}, {"rp_id": "evil.example"}):
        options = client.post("/auth/passkeys/register/options").json()
        credential = SoftAuthenticator(ORIGIN).create(options, **kw)
        r = client.post("/auth/passkeys/register", json={"credential": credential, "name": "x"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_passkey", kw
        assert stored(client, credential["rawId"]) is None
    options = client.post("/auth/passkeys/register/options").json()
    credential = SoftAuthenticator(ORIGIN).create(options)
    assert (
        client.post(
            "/auth/passkeys/register", json={"credential": credential, "name": "a"}
        ).status_code
        == 201
    )
    again = client.post("/auth/passkeys/register", json={"credential": credential, "name": "b"})
    assert again.status_code == 400  # the challenge is spent
    assert len(client.get("/auth/passkeys").json()["passkeys"]) == 1


def test_registration_needs_a_login_and_a_challenge_of_this_user(tmp_path: Path) -> None:
    with make_client(tmp_path, public_url=ORIGIN) as client:
        assert client.post("/auth/passkeys/register/options").status_code == 401
        register(client, "bob@example.com")
        login(client, "bob@example.com")
        bobs = client.post("/auth/passkeys/register/options").json()
        client.post("/auth/logout")
        register(client)
        login(client)
        # Ada answers Bob's challenge (same browser): refused, nothing stored.
        credential = SoftAuthenticator(ORIGIN).create(bobs)
        r = client.post("/auth/passkeys/register", json={"credential": credential, "name": "x"})
        assert r.status_code == 400
        assert stored(client, credential["rawId"]) is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"credential": "nope", "name": "x"},
        {"credential": {"rawId": "short"}, "name": "x"},
        {"credential": {"rawId": "A" * 43, "response": {"clientDataJSON": "%%%"}}, "name": "x"},
        {"credential": {"rawId": "A" * 43, "response": []}, "name": "x"},
        {"credential": None, "name": None},
    ],
)
def test_malformed_registrations_are_400_and_change_nothing(
    client: TestClient, body: dict[str, Any]
) -> None:
    register(client)
    login(client)
    client.post("/auth/passkeys/register/options")
    r = client.post("/auth/passkeys/register", json=body)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert client.get("/auth/passkeys").json() == {"passkeys": []}
    r = client.post(
        "/auth/passkeys/register",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400


def test_removal_needs_a_recent_authentication(client: TestClient) -> None:
    laptop = enrol(client)
    assert passkey_login(client, laptop.get(login_options(client))).status_code == 200
    parts = parts_of(client)
    clock = parts.sessions.clock
    parts.sessions.clock = lambda: clock() + 600  # type: ignore[method-assign]
    try:
        r = client.delete(f"/auth/passkeys/{public_id(laptop.id)}")
        assert r.status_code == 403 and r.json()["error"] == "insufficient_user_authentication"
        assert stored(client, laptop.id) is not None
        r = client.request(
            "DELETE", f"/auth/passkeys/{public_id(laptop.id)}", json={"password": "wrong password!"}
        )
        assert r.status_code == 401 and stored(client, laptop.id) is not None
        r = client.request(
            "DELETE", f"/auth/passkeys/{public_id(laptop.id)}", json={"password": PASSWORD}
        )
        assert r.status_code == 204
    finally:
        parts.sessions.clock = clock  # type: ignore[method-assign]
    assert stored(client, laptop.id) is None
    assert client.delete(f"/auth/passkeys/{public_id(laptop.id)}").status_code == 404
    assert client.get("/auth/mfa").json()["methods"] == []


def test_another_users_passkey_cannot_be_renamed_or_removed(client: TestClient) -> None:
    bobs = enrol(client, email="bob@example.com")
    register(client)
    assert login(client).status_code == 200
    assert (
        client.patch(f"/auth/passkeys/{public_id(bobs.id)}", json={"name": "mine"}).status_code
        == 404
    )
    assert client.delete(f"/auth/passkeys/{public_id(bobs.id)}").status_code == 404
    found = stored(client, bobs.id)
    assert found is not None and found.name == "Laptop"


# -- sign-in with a passkey alone ---------------------------------------------------------


def test_sign_in_with_a_passkey_alone(client: TestClient) -> None:
    laptop = enrol(client)
    options = login_options(client)
    assert options["rpId"] == "testserver" and options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    r = passkey_login(client, laptop.get(options))
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == EMAIL and r.headers["cache-control"] == "no-store"
    assert client.get("/auth/me").status_code == 200
    assert session_amr(client) == ["hwk", "user", "mfa"]
    found = stored(client, laptop.id)
    assert found is not None and found.sign_count == 1 and found.last_used_at is not None


def test_a_synced_passkey_signs_in_as_swk(client: TestClient) -> None:
    phone = enrol(client, SoftAuthenticator(ORIGIN, backup_eligible=True))
    assert passkey_login(client, phone.get(login_options(client))).status_code == 200
    assert session_amr(client) == ["swk", "user", "mfa"]


def test_an_assertion_works_once(client: TestClient) -> None:
    laptop = enrol(client)
    credential = laptop.get(login_options(client))
    assert passkey_login(client, credential).status_code == 200
    client.post("/auth/logout")
    r = passkey_login(client, credential)
    assert r.status_code == 401 and r.json()["error"] == "invalid_passkey"
    assert client.get("/auth/me").status_code == 401


def test_a_failed_assertion_spends_its_challenge(client: TestClient) -> None:
    laptop = enrol(client)
    options = login_options(client)
    assert (
        passkey_login(client, laptop.get(options, origin="https://evil.example")).status_code == 401
    )
    assert passkey_login(client, laptop.get(options)).status_code == 401


def test_a_challenge_from_another_client_is_refused(client: TestClient) -> None:
    laptop = enrol(client)
    options = login_options(client, headers={"user-agent": "victim-browser"})
    r = passkey_login(client, laptop.get(options), headers={"user-agent": "attacker"})
    assert r.status_code == 401
    assert client.get("/auth/me").status_code == 401


def test_wrong_origin_and_rp_id_are_refused(client: TestClient) -> None:
    laptop = enrol(client)
    for kw in ({"origin": "https://evil.example"}, {"origin": "http://testserver"},
               {"rp_id": "evil.example"}):  # fmt: skip
        r = passkey_login(client, laptop.get(login_options(client), **kw))
        assert r.status_code == 401, kw
    found = stored(client, laptop.id)
    assert found is not None and found.sign_count == 0 and found.last_used_at is None


def test_sign_in_alone_requires_user_verification(client: TestClient) -> None:
    laptop = enrol(client)
    r = passkey_login(client, laptop.get(login_options(client), uv=False))
    assert r.status_code == 401
    assert client.get("/auth/me").status_code == 401


def test_a_counter_going_backwards_is_refused_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    laptop = enrol(client)
    assert passkey_login(client, laptop.get(login_options(client), counter=7)).status_code == 200
    client.post("/auth/logout")
    credential = laptop.get(login_options(client), counter=3)  # a clone's older counter
    with caplog.at_level(logging.WARNING, logger="gatepass.passkeys"):
        r = passkey_login(client, credential)
    assert r.status_code == 401
    [record] = [
        r for r in caplog.records if r.name == "gatepass.passkeys" and r.levelno == logging.WARNING
    ]
    message = record.getMessage()
    assert "3 after 7" in message and "cloned" in message
    for secret in (laptop.id, credential["response"]["signature"],
                   credential["response"]["clientDataJSON"]):  # fmt: skip
        assert secret not in message
    found = stored(client, laptop.id)
    assert found is not None and found.sign_count == 7
    # Same counter again is refused too; a higher one works.
    assert passkey_login(client, laptop.get(login_options(client), counter=7)).status_code == 401
    assert passkey_login(client, laptop.get(login_options(client), counter=8)).status_code == 200


def test_a_user_handle_of_another_user_is_refused(client: TestClient) -> None:
    laptop = enrol(client)
    r = passkey_login(client, laptop.get(login_options(client), user_handle=b"someone-else"))
    assert r.status_code == 401


def test_an_unknown_credential_is_refused(client: TestClient) -> None:
    enrol(client)
    stranger = SoftAuthenticator(ORIGIN)
    stranger.user_handle = laptop_handle = enrol_handle(client)
    assert laptop_handle
    r = passkey_login(client, stranger.get(login_options(client)))
    assert r.status_code == 401 and r.json()["error"] == "invalid_passkey"


def test_a_disabled_or_unverified_account_does_not_sign_in(tmp_path: Path) -> None:
    with make_client(tmp_path, public_url=ORIGIN) as client:
        laptop = enrol(client)
        assert client.portal is not None
        parts = parts_of(client)
        user_id = client.portal.call(parts.accounts.users.get_by_email, EMAIL).id  # type: ignore[union-attr]
        client.portal.call(parts.accounts.users.set_disabled, user_id, True)
        assert passkey_login(client, laptop.get(login_options(client))).status_code == 401
        assert client.get("/auth/me").status_code == 401
    with make_client(tmp_path / "v", public_url=ORIGIN, email_verification="required") as client:
        laptop = enrol_unverified(client)
        r = passkey_login(client, laptop.get(login_options(client)))
        assert r.status_code == 403 and r.json()["error"] == "email_unverified"
        assert client.get("/auth/me").status_code == 401


def enrol_unverified(client: TestClient) -> SoftAuthenticator:
    user_id = register(client)
    parts = parts_of(client)
    assert client.portal is not None
    # Confirmed only long enough to sign in and register a passkey.
    client.portal.call(parts.accounts.users.set_email_verified, user_id, True)
    assert login(client).status_code == 200
    client.portal.call(parts.accounts.users.set_email_verified, user_id, False)
    laptop = SoftAuthenticator(ORIGIN)
    options = client.post("/auth/passkeys/register/options").json()
    r = client.post(
        "/auth/passkeys/register", json={"credential": laptop.create(options), "name": "a"}
    )
    assert r.status_code == 201, r.text
    client.post("/auth/logout")
    return laptop


def test_passkey_sign_in_needs_csrf(client: TestClient) -> None:
    laptop = enrol(client)
    credential = laptop.get(login_options(client))
    r = client.post(
        "/auth/passkeys/login", json={"credential": credential}, headers={"x-csrf-token": "forged"}
    )
    assert r.status_code == 403 and r.json()["error"] == "csrf_failed"
    r = client.post("/auth/passkeys/login/options", headers={"x-csrf-token": "forged"})
    assert r.status_code == 403


@pytest.mark.parametrize(
    "credential",
    [
        None,
        "x",
        [],
        {"rawId": "A" * 43},
        {"rawId": "A" * 43, "response": {"clientDataJSON": b64(b"[]")}},
    ],
)
def test_malformed_assertions_are_4xx_and_change_nothing(
    client: TestClient, credential: Any
) -> None:
    laptop = enrol(client)
    r = passkey_login(client, credential)
    assert 400 <= r.status_code < 500 and r.json()["error"] in (
        "invalid_request",
        "invalid_passkey",
    )
    assert client.get("/auth/me").status_code == 401
    found = stored(client, laptop.id)
    assert found is not None and found.sign_count == 0 and found.last_used_at is None


# -- the passkey as second factor ----------------------------------------------------


def first_step(client: TestClient, email: str = EMAIL, **kw: Any) -> str:
    r = client.post("/auth/login", json={"email": email, "password": PASSWORD}, **kw)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "mfa_required" and r.json()["methods"] == ["passkey"]
    token: str = r.json()["mfa_token"]
    return token


def second_step(client: TestClient, token: str, credential: Any, **kw: Any) -> httpx.Response:
    return client.post("/auth/mfa/verify", json={"mfa_token": token, "passkey": credential}, **kw)


def test_a_passkey_as_the_second_factor(client: TestClient) -> None:
    laptop = enrol(client)
    token = first_step(client)
    assert client.get("/auth/me").status_code == 401
    options = login_options(client, json={"mfa_token": token})
    assert [c["id"] for c in options["allowCredentials"]] == [laptop.id]
    assert options["userVerification"] == "preferred"
    # User presence is enough beside the password.
    r = second_step(client, token, laptop.get(options, uv=False))
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == EMAIL
    assert session_amr(client) == ["pwd", "hwk", "mfa"]
    # The mfa_token and the passkey challenge are both spent.
    client.post("/auth/logout")
    assert second_step(client, token, laptop.get(options)).status_code == 401


def test_the_second_factor_refuses_another_users_passkey(client: TestClient) -> None:
    bobs = enrol(client, email="bob@example.com")
    enrol(client)
    token = first_step(client)
    options = login_options(client, json={"mfa_token": token})
    r = second_step(client, token, bobs.get(options))
    assert r.status_code == 401 and r.json()["error"] == "invalid_passkey"
    assert client.get("/auth/me").status_code == 401
    found = stored(client, bobs.id)
    assert found is not None and found.sign_count == 0


def test_a_passkey_challenge_is_bound_to_its_mfa_token_and_client(client: TestClient) -> None:
    laptop = enrol(client)
    first, second = first_step(client), first_step(client)
    options = login_options(client, json={"mfa_token": first})
    assert second_step(client, second, laptop.get(options)).status_code == 401
    # Another client cannot even ask for options with the token.
    r = client.post("/auth/passkeys/login/options", json={"mfa_token": second},
                    headers={"user-agent": "attacker"})  # fmt: skip
    assert r.status_code == 401 and r.json()["error"] == "invalid_mfa_token"
    # A passkey-alone challenge does not answer a second step either.
    assert second_step(client, second, laptop.get(login_options(client))).status_code == 401
    assert client.get("/auth/me").status_code == 401


def test_the_second_step_with_a_passkey_needs_csrf_for_a_browser_login(
    client: TestClient,
) -> None:
    laptop = enrol(client)
    token = first_step(client)
    r = client.post("/auth/passkeys/login/options", json={"mfa_token": token},
                    headers={"x-csrf-token": "forged"})  # fmt: skip
    assert r.status_code == 403
    options = login_options(client, json={"mfa_token": token})
    r = second_step(client, token, laptop.get(options), headers={"x-csrf-token": "forged"})
    assert r.status_code == 403
    assert client.get("/auth/me").status_code == 401


def test_the_token_flow_takes_a_passkey_too(client: TestClient) -> None:
    laptop = enrol(client)
    r = client.post("/auth/token", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 401 and r.json()["methods"] == ["passkey"]
    token = r.json()["mfa_token"]
    # A /auth/token client keeps no cookies: no CSRF token either.
    no_csrf = {"x-csrf-token": "", "cookie": ""}
    options = login_options(client, json={"mfa_token": token}, headers=no_csrf)
    r = second_step(client, token, laptop.get(options), headers=no_csrf)
    assert r.status_code == 200 and "access_token" in r.json()


def test_mfa_reset_removes_passkeys(tmp_path: Path) -> None:
    from tests.server.test_cli import cli_json, run_cli

    data_dir = tmp_path / "data"
    with make_client(tmp_path, public_url=ORIGIN) as client:
        laptop = enrol(client)
        assert cli_json(data_dir, "users", "list")[0]["mfa"] == ["passkey"]
        result = run_cli(data_dir, "mfa", "reset", EMAIL)
        assert result.returncode == 0, result.stderr
        assert "second factors removed" in result.stdout
        assert stored(client, laptop.id) is None
        assert cli_json(data_dir, "users", "list")[0]["mfa"] == []
        assert login(client).status_code == 200


def test_a_credential_registers_once_and_an_account_has_at_most_20(client: TestClient) -> None:
    register(client)
    login(client)
    laptop = SoftAuthenticator(ORIGIN)
    for i in range(2):
        options = client.post("/auth/passkeys/register/options").json()
        r = client.post("/auth/passkeys/register",
                        json={"credential": laptop.create(options), "name": f"n{i}"})  # fmt: skip
        assert r.status_code == (201 if i == 0 else 409), r.text
    for _ in range(19):
        options = client.post("/auth/passkeys/register/options").json()
        credential = SoftAuthenticator(ORIGIN).create(options)
        r = client.post("/auth/passkeys/register", json={"credential": credential, "name": "k"})
        assert r.status_code == 201
    assert len(client.get("/auth/passkeys").json()["passkeys"]) == 20
    r = client.post("/auth/passkeys/register/options")
    assert r.status_code == 409 and r.json()["error"] == "conflict"


def test_any_instance_finishes_a_ceremony_another_began(tmp_path: Path) -> None:
    """Two servers on one database: the challenge is in the shared store."""
    with make_client(tmp_path, public_url=ORIGIN) as first:
        laptop = enrol(first)
        options = login_options(first)
        with make_client(tmp_path, public_url=ORIGIN) as second:
            r = passkey_login(second, laptop.get(options))
            assert r.status_code == 200, r.text
            assert second.get("/auth/me").status_code == 200
            # And only once, whichever instance is asked.
            first.post("/auth/logout")
            assert passkey_login(first, laptop.get(options)).status_code == 401


def test_passkey_sign_in_in_jwt_browser_mode(tmp_path: Path) -> None:
    with make_client(tmp_path, public_url=ORIGIN, browser_mode="jwt") as client:
        laptop = enrol(client)
        r = passkey_login(client, laptop.get(login_options(client)))
        assert r.status_code == 200, r.text
        me = client.get("/auth/me")
        assert me.status_code == 200 and me.json()["email"] == EMAIL
