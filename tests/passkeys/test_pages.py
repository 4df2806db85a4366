"""The passkey forms of the pages without a browser: /account's rename and
remove (no JavaScript needed), and the second-step page answered with a
passkey (the form passkeys.js fills)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gatepass.passkeys.store import public_id
from tests.passkeys.test_api import ORIGIN, enrol, login_options, parts_of, passkey_login, stored
from tests.server.conftest import PASSWORD, make_client

EMAIL = "ada@example.com"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, public_url=ORIGIN) as c:
        yield c


def test_the_account_page_lists_renames_and_removes(client: TestClient) -> None:
    laptop = enrol(client, name="Old <name>")
    assert passkey_login(client, laptop.get(login_options(client))).status_code == 200
    page = client.get("/account")
    assert "Old &lt;name&gt;" in page.text and "Old <name>" not in page.text
    assert f"/account/passkeys/{public_id(laptop.id)}/remove" in page.text
    assert laptop.id not in page.text  # the credential id never reaches a page
    assert '<script src="/static/passkeys.js" defer></script>' in page.text
    url = f"/account/passkeys/{public_id(laptop.id)}"
    r = client.post(f"{url}/rename", data={"name": ""})
    assert r.status_code == 400
    r = client.post(f"{url}/rename", data={"name": "Desk"})
    assert r.status_code == 200 and "The passkey is renamed." in r.text
    found = stored(client, laptop.id)
    assert found is not None and found.name == "Desk"
    assert client.post("/account/passkeys/nope/rename", data={"name": "x"}).status_code == 404
    # A stale sign-in cannot remove it.
    parts = parts_of(client)
    clock = parts.sessions.clock
    parts.sessions.clock = lambda: clock() + 600  # type: ignore[method-assign]
    try:
        r = client.post(f"{url}/remove", data={})
        assert r.status_code == 403 and "sign in again first" in r.text
        assert stored(client, laptop.id) is not None
    finally:
        parts.sessions.clock = clock  # type: ignore[method-assign]
    r = client.post(f"{url}/remove", data={})
    assert r.status_code == 200 and "The passkey is removed." in r.text
    assert stored(client, laptop.id) is None
    assert client.post(f"{url}/remove", data={}).status_code == 404


def test_the_forms_need_a_login_and_csrf(client: TestClient) -> None:
    laptop = enrol(client)
    url = f"/account/passkeys/{public_id(laptop.id)}"
    r = client.post(f"{url}/remove", data={}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert passkey_login(client, laptop.get(login_options(client))).status_code == 200
    r = client.post(
        f"{url}/remove", data={"csrf_token": "forged"}, headers={"x-csrf-token": "forged"}
    )
    assert r.status_code == 403
    assert stored(client, laptop.id) is not None


def test_the_second_step_page_takes_a_passkey(client: TestClient) -> None:
    laptop = enrol(client)
    r = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "next": "/account"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].startswith("/login/second-step")
    page = client.get(r.headers["location"])
    assert "Use a passkey" in page.text and 'name="code"' not in page.text
    options = login_options(client, json={"second_step": True})
    assert [c["id"] for c in options["allowCredentials"]] == [laptop.id]
    # Garbage, then a wrong origin: the page says so, no login.
    r = client.post("/login/second-step", data={"passkey": "{not json", "next": "/account"})
    assert r.status_code == 400 and "could not be verified" in r.text
    bad = laptop.get(options, origin="https://evil.example")
    r = client.post("/login/second-step", data={"passkey": json.dumps(bad), "next": "/account"})
    assert r.status_code == 401 and "could not be verified" in r.text
    assert client.get("/auth/me").status_code == 401
    options = login_options(client, json={"second_step": True})
    good = laptop.get(options)
    r = client.post("/login/second-step", data={"passkey": json.dumps(good), "next": "/x"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert client.get("/auth/me").status_code == 200


def test_second_step_options_without_a_held_token_are_refused(client: TestClient) -> None:
    enrol(client)
    r = client.post("/auth/passkeys/login/options", json={"second_step": True})
    assert r.status_code == 401 and r.json()["error"] == "invalid_mfa_token"
