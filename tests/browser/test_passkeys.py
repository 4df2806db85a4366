"""Passkeys in real Chromium with the DevTools ``WebAuthn`` virtual
authenticator (CTAP2, internal transport, resident keys, user verification):
register from /account, sign in with a passkey alone from /login, the
passkey as the second step after the password, a wrong-origin assertion
refused, rename and removal.  The server is a real ``gatepass serve`` at
``http://localhost:<port>`` (a secure context; an IP address is no RP ID).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import PageServer
from tests.browser.screens import VIEWPORT, shoot
from tests.browser.spa import api
from tests.conftest import free_port
from tests.oauth.conftest import running, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, CDPSession, Page

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    url: str
    log: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("passkeys")
    port = free_port()
    url = f"http://localhost:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    env.update(GATEPASS_DATA_DIR=str(tmp / "data"), GATEPASS_PUBLIC_URL=url,
               GATEPASS_REGISTRATION_LIMIT="0")  # fmt: skip
    log = tmp / "server.log"
    cmd = [sys.executable, "-m", "gatepass", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "info"]  # fmt: skip
    with running(cmd, env, tmp, log) as proc:
        wait_until(f"http://127.0.0.1:{port}/healthz", "gatepass serve", proc, log)
        yield Site(url, log)
    text = log.read_text()
    assert "Traceback" not in text and PASSWORD not in text


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[PageServer]:
    server = PageServer()
    server.start()
    yield server
    server.stop()


def authenticator(page: Page, *, uv: bool = True) -> tuple[CDPSession, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": uv,
        "automaticPresenceSimulation": True,
    }})  # fmt: skip
    return cdp, str(found["authenticatorId"])


def credentials(cdp: CDPSession, authenticator_id: str) -> list[dict[str, Any]]:
    found = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    listed: list[dict[str, Any]] = found["credentials"]
    return listed


def register(page: Page, site: Site) -> str:
    email = f"pk-{uuid.uuid4().hex[:10]}@example.com"
    page.goto(f"{site.url}/register")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/register'] button[type=submit]")
    page.wait_for_url(f"{site.url}/account")
    return email


def add_passkey(page: Page, site: Site, name: str) -> None:
    page.goto(f"{site.url}/account")
    form = page.locator("form[data-passkey=register]")
    assert form.is_visible()
    assert not page.locator("p[data-passkey=unsupported]").is_visible()
    form.locator("input[name=name]").fill(name)
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{site.url}/account?passkey=added")
    assert "Your passkey is added." in page.inner_text("main")


def sign_out(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/account")
    page.click("header form[action='/logout'] button")
    page.wait_for_url(f"{site.url}/login")


def no_errors(page: Page, watch: Any) -> None:
    # The tests' own probes of /auth/me while signed out log a 401; nothing else may.
    errors = [m for m in watch.console if m.startswith("error") and "status of 401" not in m]
    assert errors == [] and watch.page_errors == []
    assert page.evaluate("window.__cspViolations") == []


def test_register_and_sign_in_with_a_passkey_alone(
    context: BrowserContext, site: Site, watch: Any
) -> None:
    page = context.new_page()
    page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
    cdp, auth_id = authenticator(page)
    email = register(page, site)
    add_passkey(page, site, "Work laptop")
    [credential] = credentials(cdp, auth_id)
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"
    row = page.locator("section[aria-labelledby=passkeys-heading] ul.rows li")
    assert row.count() == 1 and "Work laptop" in row.inner_text()
    assert "Not used yet" in row.inner_text()
    shoot(page, "account-passkeys")
    sign_out(page, site)
    page.goto(f"{site.url}/login?next=%2Faccount")
    button = page.locator("[data-passkey=login] button")
    assert button.is_visible() and button.inner_text() == "Sign in with a passkey"
    shoot(page, "login-passkey")
    button.click()
    page.wait_for_url(f"{site.url}/account")
    status, me = api(page, "GET", "/auth/me")
    assert status == 200 and me["email"] == email
    assert "Last used" in page.locator("section[aria-labelledby=passkeys-heading]").inner_text()
    assert credentials(cdp, auth_id)[0]["signCount"] == 2  # registration and this sign-in
    no_errors(page, watch)


def test_a_passkey_is_the_second_step_after_the_password(
    context: BrowserContext, site: Site, watch: Any
) -> None:
    page = context.new_page()
    page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
    authenticator(page)
    email = register(page, site)
    add_passkey(page, site, "Phone")
    sign_out(page, site)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{site.url}/login/second-step**")
    # Only a passkey: no code field, a button instead.
    assert page.locator("input[name=code]").count() == 0
    status, _ = api(page, "GET", "/auth/me")
    assert status == 401
    shoot(page, "second-step-passkey")
    page.click("[data-passkey=second-step] button")
    page.wait_for_url(f"{site.url}/account")
    status, me = api(page, "GET", "/auth/me")
    assert status == 200 and me["email"] == email
    no_errors(page, watch)


def test_an_assertion_made_for_another_origin_is_refused(
    context: BrowserContext, site: Site, elsewhere: PageServer
) -> None:
    page = context.new_page()
    authenticator(page)
    register(page, site)
    add_passkey(page, site, "Laptop")
    sign_out(page, site)
    status, options = api(page, "POST", "/auth/passkeys/login/options", {})
    assert status == 200
    # Another site on the same host name may ask for an assertion for the
    # same RP ID ("localhost"); its origin is in the signed client data.
    page.goto(elsewhere.url("localhost", elsewhere.put("<!doctype html><title>x</title>")))
    credential = page.evaluate(
        """async (o) => {
            const buf = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')
                .padEnd(Math.ceil(s.length / 4) * 4, '=')), c => c.charCodeAt(0)).buffer;
            const txt = (b) => btoa(String.fromCharCode(...new Uint8Array(b)))
                .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
            const c = await navigator.credentials.get({publicKey: {
                challenge: buf(o.challenge), rpId: o.rpId, userVerification: 'required'}});
            return {id: c.id, rawId: txt(c.rawId), type: c.type, response: {
                clientDataJSON: txt(c.response.clientDataJSON),
                authenticatorData: txt(c.response.authenticatorData),
                signature: txt(c.response.signature),
                userHandle: c.response.userHandle ? txt(c.response.userHandle) : null}};
        }""",
        options,
    )
    client_data = json.loads(
        __import__("base64").urlsafe_b64decode(credential["response"]["clientDataJSON"] + "==")
    )
    assert client_data["origin"] == f"http://localhost:{elsewhere.port}"
    page.goto(f"{site.url}/login")
    status, body = api(page, "POST", "/auth/passkeys/login", {"credential": credential})
    assert status == 401 and body["error"] == "invalid_passkey"
    status, _ = api(page, "GET", "/auth/me")
    assert status == 401


def test_rename_and_remove_from_the_account_page(
    context: BrowserContext, site: Site, watch: Any
) -> None:
    page = context.new_page()
    cdp, auth_id = authenticator(page)
    register(page, site)
    add_passkey(page, site, "Old name")
    section = page.locator("section[aria-labelledby=passkeys-heading]")
    section.locator("details summary").click()
    section.locator("form[action$='/rename'] input[name=name]").fill("New name")
    section.locator("form[action$='/rename'] button").click()
    page.wait_for_load_state()
    assert "The passkey is renamed." in page.inner_text("main")
    assert "New name" in section.inner_text()
    section.locator("form[action$='/remove'] button").click()
    page.wait_for_load_state()
    assert "The passkey is removed." in page.inner_text("main")
    assert "You have no passkeys yet." in section.inner_text()
    status, listed = api(page, "GET", "/auth/passkeys")
    assert status == 200 and listed == {"passkeys": []}
    # The authenticator still holds it, but it signs in nobody now.
    assert len(credentials(cdp, auth_id)) == 1
    sign_out(page, site)
    page.goto(f"{site.url}/login")
    page.click("[data-passkey=login] button")
    page.locator("#passkey-message").wait_for(state="visible")
    assert "could not be verified" in page.inner_text("#passkey-message")
    status, _ = api(page, "GET", "/auth/me")
    assert status == 401
    no_errors(page, watch)
