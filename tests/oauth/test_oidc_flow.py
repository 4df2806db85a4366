"""Sign-in through a real OpenID Provider (npm oidc-provider), end to end.

gatepass runs as ``gatepass serve`` on 127.0.0.1; the provider on localhost.
The "browser" is an HTTP client playing the user on the provider's dev
login and consent pages.  SECURITY.md cases 34, 36 and 37.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.oauth.conftest import Gatepass, OpenIDProvider, gatepass, node_provider_env
from tests.oauth.harness import SESSION_COOKIE, TX_COOKIE, Browser, location, play_user, query

PASSWORD = "correct horse battery staple"
TX_SET_COOKIE = re.compile(
    rf"^{TX_COOKIE}=[A-Za-z0-9_-]+; Max-Age=600; Expires=[^;]+; Path=/; Secure; HttpOnly; "
    r"SameSite=Lax$"
)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def unique(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def start(
    browser: Browser, server: Gatepass, provider: str = "node", next_path: str = "/account"
) -> str:
    r = browser.get(f"{server.url}/auth/oauth/{provider}/start?next={next_path}")
    assert r.status_code == 302, r.text
    [tx] = [c for c in r.headers.get_list("set-cookie") if c.startswith(TX_COOKIE + "=")]
    assert TX_SET_COOKIE.match(tx), tx
    return location(r)


def callback_prefix(server: Gatepass, provider: str = "node") -> str:
    return f"{server.url}/auth/oauth/{provider}/callback"


def authorize(browser: Browser, server: Gatepass, login: str, provider: str = "node") -> str:
    """Start, play the user; the callback URL the provider sent the browser to."""
    url = start(browser, server, provider)
    return play_user(browser, url, login, callback_prefix(server, provider))


def finish(browser: Browser, url: str) -> httpx.Response:
    return browser.get(url, headers={"accept": "application/json"})


def me(browser: Browser, server: Gatepass) -> dict[str, object]:
    r = browser.get(f"{server.url}/auth/me")
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def assert_refused(response: httpx.Response, status: int = 400, code: str = "oauth_failed") -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    set_cookies = response.headers.get_list("set-cookie")
    assert not [c for c in set_cookies if c.startswith(SESSION_COOKIE + "=")], set_cookies
    # The transaction is over either way.
    assert any(c.startswith(f"{TX_COOKIE}=;") and "Max-Age=0" in c for c in set_cookies)


def with_query(url: str, **changes: str | None) -> str:
    params = query(url)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode(params)))


# -- the happy paths ------------------------------------------------------


@pytest.mark.parametrize("provider", ["node", "nodepub"])
def test_full_login_lands_on_account(
    server: Gatepass, op: OpenIDProvider, browser: Browser, provider: str
) -> None:
    login = unique()
    url = start(browser, server, provider)
    # SECURITY 36: PKCE S256 on every authorization request, plus state and nonce.
    params = query(url)
    assert url.startswith(op.issuer + "/")
    assert params["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,128}", params["code_challenge"])
    assert len(params["state"]) >= 43 and len(params["nonce"]) >= 43
    assert params["redirect_uri"] == callback_prefix(server, provider)
    assert params["response_type"] == "code"
    assert "openid" in params["scope"].split()

    back = play_user(browser, url, login, callback_prefix(server, provider))
    assert query(back)["iss"] == op.issuer  # RFC 9207, checked by gatepass
    r = finish(browser, back)
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/account"
    [session] = [c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")]
    assert re.match(
        rf"{SESSION_COOKIE}=[A-Za-z0-9_-]{{43}}; Path=/; Secure; HttpOnly; SameSite=Lax$", session
    )
    assert TX_COOKIE not in browser.cookies(server.url)
    assert me(browser, server)["email"] == f"{login}@example.com"
    page = browser.get(f"{server.url}/account")
    assert page.status_code == 200 and f"{login}@example.com" in page.text
    log = server.log_text()
    for secret in (params["state"], params["nonce"], query(back)["code"], CLIENT_SECRET_FRAGMENT):
        assert secret not in log


CLIENT_SECRET_FRAGMENT = "a-test-client-secret"


def test_provider_refuses_an_authorization_request_without_pkce(
    server: Gatepass, op: OpenIDProvider, browser: Browser
) -> None:
    """The OP requires PKCE, so every successful flow above sent a verifier."""
    url = with_query(start(browser, server), code_challenge=None, code_challenge_method=None)
    r = browser.get(url)
    assert r.status_code in (302, 303, 400)
    if r.status_code != 400:
        assert query(location(r)).get("error") == "invalid_request"


def test_same_identity_signs_in_as_the_same_user_under_a_fresh_session(
    server: Gatepass, browser: Browser
) -> None:
    login = unique()
    assert finish(browser, authorize(browser, server, login)).status_code == 302
    first_id, first_session = me(browser, server)["id"], browser.cookies(server.url)[SESSION_COOKIE]
    # Signed in already: the second flow re-authenticates (link mode, same user).
    assert finish(browser, authorize(browser, server, login)).status_code == 302
    assert me(browser, server)["id"] == first_id
    assert browser.cookies(server.url)[SESSION_COOKIE] != first_session
    old = httpx.get(
        f"{server.url}/auth/me", headers={"cookie": f"{SESSION_COOKIE}={first_session}"}
    )
    assert old.status_code == 401
    # And from another browser, without any session: the same user.
    other = Browser()
    try:
        assert finish(other, authorize(other, server, login)).status_code == 302
        assert me(other, server)["id"] == first_id
    finally:
        other.close()


# -- SECURITY 34: state -----------------------------------------------------


def test_state_missing_wrong_or_absent_cookie_is_refused(
    server: Gatepass, browser: Browser
) -> None:
    back = authorize(browser, server, unique())
    saved = dict(browser.cookies(server.url))
    for bad in (with_query(back, state=None), with_query(back, state="x" * 43)):
        assert_refused(finish(browser, bad))
        browser.cookies(server.url).update(saved)
    # No transaction cookie at all.
    browser.cookies(server.url).clear()
    assert_refused(finish(browser, back))


def test_callback_from_another_browser_is_refused(server: Gatepass) -> None:
    victim, attacker = Browser(), Browser()
    try:
        # The attacker completes a flow and hands the callback to the victim,
        # who has a sign-in of her own in progress (another transaction cookie).
        back = authorize(attacker, server, unique("attacker"))
        start(victim, server)
        assert_refused(finish(victim, back))
        assert SESSION_COOKIE not in victim.cookies(server.url)
    finally:
        victim.close()
        attacker.close()


def test_replayed_callback_is_refused_even_with_the_same_cookie(
    server: Gatepass, browser: Browser
) -> None:
    back = authorize(browser, server, unique())
    tx = browser.cookies(server.url)[TX_COOKIE]
    assert finish(browser, back).status_code == 302
    replay = Browser()
    try:
        replay.cookies(server.url)[TX_COOKIE] = tx
        assert_refused(finish(replay, back))
        assert "replayed" in server.log_text()
    finally:
        replay.close()


def test_access_denied_and_oversized_parameters(
    server: Gatepass, op: OpenIDProvider, browser: Browser
) -> None:
    state = query(start(browser, server))["state"]
    saved = dict(browser.cookies(server.url))
    denied = f"{callback_prefix(server)}?" + urlencode(
        {"error": "access_denied", "state": state, "iss": op.issuer}
    )
    assert_refused(finish(browser, denied))
    browser.cookies(server.url).update(saved)
    huge = f"{callback_prefix(server)}?" + urlencode(
        {"code": "c" * 5000, "state": state, "iss": op.issuer}
    )
    assert_refused(finish(browser, huge))
    browser.cookies(server.url).update(saved)
    twice = f"{callback_prefix(server)}?state={state}&state={state}&code=x&iss={op.issuer}"
    assert_refused(finish(browser, twice))


def test_browser_failures_get_an_html_page(server: Gatepass, browser: Browser) -> None:
    r = browser.get(f"{callback_prefix(server)}?code=x&state=y", headers={"accept": "text/html"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert "started in another browser" in r.text


def test_unknown_provider_is_404(server: Gatepass, browser: Browser) -> None:
    assert browser.get(f"{server.url}/auth/oauth/nope/start").status_code == 404


def test_login_page_lists_the_providers(server: Gatepass, browser: Browser) -> None:
    page = browser.get(f"{server.url}/login?next=/account").text
    assert 'href="/auth/oauth/node/start?next=%2Faccount"' in page
    assert "Sign in with Node OP" in page


# -- SECURITY 37 and linking ------------------------------------------------


def register_and_login(browser: Browser, server: Gatepass, email: str) -> str:
    r = browser.get(f"{server.url}/auth/csrf")
    token = r.json()["csrf_token"]
    headers = {"x-csrf-token": token, "origin": server.url}
    r = browser.request(
        "POST",
        f"{server.url}/auth/register",
        json={"email": email, "password": PASSWORD},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    r = browser.request(
        "POST",
        f"{server.url}/auth/login",
        json={"email": email, "password": PASSWORD},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    user_id: str = r.json()["user"]["id"]
    return user_id


def test_unverified_email_never_links_to_the_local_account(
    server: Gatepass, browser: Browser
) -> None:
    name = unique()
    local = Browser()
    try:
        local_id = register_and_login(local, server, f"{name}@example.com")
    finally:
        local.close()
    assert finish(browser, authorize(browser, server, f"unverified-{name}")).status_code == 302
    who = me(browser, server)
    assert who["id"] != local_id
    assert str(who["email"]).endswith("@oauth.invalid")


def test_verified_email_of_an_existing_account_needs_trust_or_an_explicit_link(
    server: Gatepass, browser: Browser
) -> None:
    name = unique()
    local = Browser()
    try:
        local_id = register_and_login(local, server, f"{name}@example.com")
    finally:
        local.close()
    # Not trusted for auto-link: refused, with the way out in the message.
    r = finish(browser, authorize(browser, server, name))
    assert_refused(r, 409, "conflict")
    assert "link" in r.json()["detail"]
    # The same OP configured with trust_email: the verified email signs in.
    assert finish(browser, authorize(browser, server, name, "nodetrust")).status_code == 302
    assert me(browser, server)["id"] == local_id


def test_signed_in_user_links_a_provider(server: Gatepass, browser: Browser) -> None:
    local_id = register_and_login(browser, server, f"{unique()}@example.com")
    before = browser.cookies(server.url)[SESSION_COOKIE]
    login = unique("linked")
    assert finish(browser, authorize(browser, server, login)).status_code == 302
    assert me(browser, server)["id"] == local_id
    assert browser.cookies(server.url)[SESSION_COOKIE] != before
    other = Browser()
    try:
        # The provider account now signs in as the local user.
        assert finish(other, authorize(other, server, login)).status_code == 302
        assert me(other, server)["id"] == local_id
        # And another signed-in user cannot take it over.
        register_and_login(other, server, f"{unique()}@example.com")
        assert_refused(finish(other, authorize(other, server, login)), 409, "identity_linked")
    finally:
        other.close()


def test_creation_of_unknown_identities_can_be_turned_off(
    op: OpenIDProvider, tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> None:
    tmp = tmp_path_factory.mktemp("closed")
    env = node_provider_env(op) | {"GATEPASS_OAUTH_CREATE_USERS": "false"}
    with gatepass(tmp, op.take_port(), **env) as closed:
        r = finish(browser, authorize(browser, closed, unique()))
        assert_refused(r, 403, "forbidden")
        ready = httpx.get(f"{closed.url}/readyz").json()
        assert ready["providers"] == {"node": "ok", "nodepub": "ok", "nodetrust": "ok"}
