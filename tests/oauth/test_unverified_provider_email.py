"""Provider sign-in and unverified emails, through the real OpenID Provider.

The provider (tests/oauth/provider.mjs) signs ``<name>`` in with
``<name>@example.com`` verified, and ``unverified-<name>`` with the same
address and ``email_verified: false``.

* Under ``GATEPASS_EMAIL_VERIFICATION=required`` a sign-in whose provider
  does not assert a verified email is refused with 403 ``email_unverified``
  (a clear page for browsers), no session and no account made.
* Whatever the setting, an unverified provider email never takes over the
  local account with that address, not even through a provider configured
  with ``TRUST_EMAIL``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.oauth.conftest import Gatepass, OpenIDProvider, gatepass, node_provider_env
from tests.oauth.harness import SESSION_COOKIE, TX_COOKIE, Browser, play_user

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def strict(op: OpenIDProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gatepass]:
    tmp = tmp_path_factory.mktemp("strict")
    env = node_provider_env(op) | {"GATEPASS_EMAIL_VERIFICATION": "required"}
    with gatepass(tmp, op.take_port(), **env) as served:
        yield served


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def unique(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def sign_in_via(
    browser: Browser, server: Gatepass, login: str, provider: str = "node", accept: str = ""
) -> tuple[int, str, list[str]]:
    r = browser.get(f"{server.url}/auth/oauth/{provider}/start?next=/account")
    assert r.status_code == 302, r.text
    back = play_user(
        browser, r.headers["location"], login, f"{server.url}/auth/oauth/{provider}/callback"
    )
    done = browser.get(back, headers={"accept": accept or "application/json"})
    return done.status_code, done.text, done.headers.get_list("set-cookie")


def users(server: Gatepass) -> list[dict[str, object]]:
    """The accounts, as the admin CLI lists them (same data as the server)."""
    done = subprocess.run(
        [sys.executable, "-m", "gatepass", "users", "list"],
        capture_output=True, text=True, env=server.env, cwd=server.base, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed: list[dict[str, object]] = json.loads(done.stdout)
    return listed


def no_session(set_cookies: list[str]) -> bool:
    return not [
        c for c in set_cookies if c.startswith(SESSION_COOKIE + "=") and "Max-Age=0" not in c
    ]


def test_required_refuses_a_provider_without_a_verified_email(
    strict: Gatepass, browser: Browser
) -> None:
    name = unique()
    before = len(users(strict))
    status, body, cookies = sign_in_via(browser, strict, f"unverified-{name}")
    assert status == 403, body
    assert json.loads(body)["error"] == "email_unverified"
    assert "did not confirm an email address" in json.loads(body)["detail"]
    assert no_session(cookies)
    assert any(c.startswith(f"{TX_COOKIE}=;") for c in cookies)
    assert browser.get(f"{strict.url}/auth/me").status_code == 401
    # No placeholder account was left behind.
    assert len(users(strict)) == before


def test_required_refusal_is_a_readable_page_for_browsers(
    strict: Gatepass, browser: Browser
) -> None:
    status, body, cookies = sign_in_via(
        browser, strict, f"unverified-{unique()}", accept="text/html"
    )
    assert status == 403
    assert "<html" in body.lower() and "Sign-in failed" in body
    assert "did not confirm an email address" in body
    assert no_session(cookies)


def test_required_signs_in_a_provider_that_asserts_a_verified_email(
    strict: Gatepass, browser: Browser
) -> None:
    name = unique()
    status, body, _ = sign_in_via(browser, strict, name)
    assert status == 302, body
    me = browser.get(f"{strict.url}/auth/me").json()
    assert (me["email"], me["email_verified"]) == (f"{name}@example.com", True)


def test_required_refuses_a_known_identity_whose_account_is_unverified(
    op: OpenIDProvider, tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> None:
    """An account made while verification was optional (placeholder address,
    unverified) does not sign in once the site requires verification."""
    tmp = tmp_path_factory.mktemp("switch")
    port = op.take_port()
    login = f"unverified-{unique()}"
    with gatepass(tmp, port, **node_provider_env(op)) as optional:
        status, body, _ = sign_in_via(browser, optional, login)
        assert status == 302, body
        assert browser.get(f"{optional.url}/auth/me").json()["email_verified"] is False
    again = Browser()
    try:
        env = node_provider_env(op) | {"GATEPASS_EMAIL_VERIFICATION": "required"}
        with gatepass(tmp, port, **env) as required:
            status, body, cookies = sign_in_via(again, required, login)
            assert status == 403 and json.loads(body)["error"] == "email_unverified", body
            assert no_session(cookies)
    finally:
        again.close()


@pytest.mark.parametrize("provider", ["node", "nodetrust"])
def test_an_unverified_provider_email_never_takes_over_a_local_account(
    strict: Gatepass, op: OpenIDProvider, browser: Browser, provider: str
) -> None:
    """Even a provider trusted for email linking: only a verified email links."""
    name = unique()
    # The local account, registered with a password, under required: the
    # owner has not confirmed the address yet (the most tempting target).
    r = browser.get(f"{strict.url}/auth/csrf")
    headers = {"x-csrf-token": r.json()["csrf_token"], "origin": strict.url}
    r = browser.request("POST", f"{strict.url}/auth/register",
                        json={"email": f"{name}@example.com", "password": PASSWORD},
                        headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    local_id = r.json()["id"]
    attacker = Browser()
    try:
        status, body, cookies = sign_in_via(attacker, strict, f"unverified-{name}", provider)
        assert status == 403 and json.loads(body)["error"] == "email_unverified", body
        assert no_session(cookies)
    finally:
        attacker.close()
    [local] = [u for u in users(strict) if u["id"] == local_id]
    assert local["email"] == f"{name}@example.com" and local["email_verified"] is False


def test_unverified_email_with_a_trusted_provider_does_not_link_when_optional(
    op: OpenIDProvider, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same attack where verification is optional: a separate account,
    never the local one."""
    tmp = tmp_path_factory.mktemp("optional-trust")
    with gatepass(tmp, op.take_port(), **node_provider_env(op)) as server:
        name = unique()
        owner = Browser()
        attacker = Browser()
        try:
            r = owner.get(f"{server.url}/auth/csrf")
            headers = {"x-csrf-token": r.json()["csrf_token"], "origin": server.url}
            r = owner.request("POST", f"{server.url}/auth/register",
                              json={"email": f"{name}@example.com", "password": PASSWORD},
                              headers=headers)  # fmt: skip
            local_id = r.json()["id"]
            status, body, _ = sign_in_via(attacker, server, f"unverified-{name}", "nodetrust")
            assert status == 302, body
            who = attacker.get(f"{server.url}/auth/me").json()
            assert who["id"] != local_id
            assert str(who["email"]).endswith("@oauth.invalid")
        finally:
            owner.close()
            attacker.close()
