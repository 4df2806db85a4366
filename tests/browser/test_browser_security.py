"""The browser security layer, in a real browser against the real server.

Debian's Chromium (driven by Playwright) talks to a ``gatepass serve``
subprocess: the HTML sign-in form, the session cookie's attributes as the
browser stores them, cross-site and same-site forged requests, CORS from an
allowlisted and a non-allowlisted origin, the Content-Security-Policy on
every page, and sign-out through the account page.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect

from gatepass.asgi.headers import DEFAULT_CSP
from tests.browser.conftest import (
    COOKIE,
    CSRF_COOKIE,
    EMAIL,
    PASSWORD,
    Gatepass,
    PageServer,
    Watch,
    login_through_form,
    session_cookie,
)

pytestmark = pytest.mark.browser


def me_in_browser(context: BrowserContext, server: Gatepass) -> tuple[int, Any]:
    """``GET /auth/me`` with the context's own cookies."""
    r = context.request.get(f"{server.url}/auth/me")
    return r.status, (r.json() if r.status == 200 else None)


# --------------------------------------------------------------------------
# 1. Signing in through the HTML form


@pytest.mark.parametrize("remember", [False, True], ids=["session-cookie", "remember-me"])
def test_form_login_sets_an_unreadable_session_cookie(
    context: BrowserContext, server: Gatepass, remember: bool
) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/login")
    login_token = page.input_value("form[action='/login'] input[name=csrf_token]")
    # Before login the form's token is the one in the readable cookie (double submit).
    assert page.evaluate("document.cookie") == f"{CSRF_COOKIE}={login_token}"

    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    if remember:
        page.check("input[name=remember]")
    with page.expect_response(f"{server.url}/login") as posted:
        page.click("form[action='/login'] button[type=submit]")
    assert posted.value.request.method == "POST"
    assert posted.value.status == 303
    page.wait_for_url(f"{server.url}/account")
    expect(page.locator("p strong")).to_have_text(EMAIL)

    cookies = {c["name"]: c for c in context.cookies(server.url)}
    assert set(cookies) == {COOKIE, CSRF_COOKIE}
    session = cookies[COOKIE]
    assert session["httpOnly"] is True
    assert session["secure"] is True
    assert session["sameSite"] == "Lax"
    assert session["path"] == "/"
    assert session["domain"] == "127.0.0.1"  # host-only, as __Host- requires
    if remember:
        assert session["expires"] > time.time() + 6 * 24 * 3600
    else:
        assert session["expires"] == -1  # gone when the browser closes
    csrf = cookies[CSRF_COOKIE]
    assert (csrf["httpOnly"], csrf["secure"], csrf["sameSite"]) == (False, True, "Lax")

    # Scripts see the CSRF cookie and never the session cookie.
    seen = page.evaluate("document.cookie")
    assert f"{COOKIE}=" not in seen
    assert seen == f"{CSRF_COOKIE}={csrf['value']}"
    assert session["value"] not in seen
    # The token rotated at login, and the readable cookie is exactly what the
    # page's forms echo.
    assert csrf["value"] != login_token
    form_tokens = set(page.eval_on_selector_all(
        "input[name=csrf_token]", "els => els.map(e => e.value)"
    ))  # fmt: skip
    assert form_tokens == {csrf["value"]}

    status, body = me_in_browser(context, server)
    assert status == 200
    assert (body["email"], body["roles"]) == (EMAIL, [])


def test_form_login_with_a_wrong_password_sets_no_session(
    context: BrowserContext, server: Gatepass
) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/login?next=/account")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", "not the password at all")
    with page.expect_response(f"{server.url}/login") as posted:
        page.click("form[action='/login'] button[type=submit]")
    assert posted.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("Invalid email or password.")
    assert COOKIE not in {c["name"] for c in context.cookies(server.url)}
    assert me_in_browser(context, server)[0] == 401


# --------------------------------------------------------------------------
# 2. Forged requests from another site, and from another origin of this site


def forged_form(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{name}" value="{value}">' for name, value in fields.items()
    )
    return (
        "<!doctype html><title>Win a prize</title>"
        f'<form method="post" action="{action}">{inputs}</form>'
        "<script>document.forms[0].submit()</script>"
    )


ATTACKERS = {
    # localhost vs 127.0.0.1: another site (Sec-Fetch-Site: cross-site); the
    # Lax session cookie is not even sent, so only the CSRF layer stands
    # between the form and e.g. a logout that clears the victim's cookies.
    "cross-site": "localhost",
    # Another port of 127.0.0.1: the same site, so the Lax cookie IS sent;
    # the Origin check is what refuses it.
    "same-site-untrusted-origin": "127.0.0.1",
}


@pytest.mark.parametrize("token_kind", ["no-token", "attacker-session-token", "anonymous-token"])
@pytest.mark.parametrize("attacker", list(ATTACKERS))
def test_forged_form_posts_are_refused(
    context: BrowserContext,
    server: Gatepass,
    other_pages: PageServer,
    attacker: str,
    token_kind: str,
) -> None:
    victim = server.register()
    page = context.new_page()
    victim_cookie = login_through_form(page, server, victim)
    elsewhere = server.login(victim)  # the victim's other device
    [this_session] = [
        s["id"] for s in context.request.get(f"{server.url}/auth/sessions").json() if s["current"]
    ]

    # The attacker has an account too, and a perfectly valid token of their own.
    attacker_email = server.register()
    attacker_session = server.login(attacker_email)
    extra: dict[str, str] = {}
    if token_kind == "attacker-session-token":
        extra["csrf_token"] = server.csrf_token(attacker_session)
    elif token_kind == "anonymous-token":
        extra["csrf_token"] = server.csrf_token()

    targets: list[tuple[str, dict[str, str]]] = [
        ("/logout", {}),
        (f"/account/sessions/{this_session}/revoke", {}),
        ("/account/sessions/revoke-others", {}),
        ("/auth/sessions/revoke-others", {}),
        ("/auth/logout", {}),
        # Login CSRF: signing the victim into the attacker's account.
        ("/login", {"email": attacker_email, "password": PASSWORD, "next": "/account"}),
        ("/auth/login", {"email": attacker_email, "password": PASSWORD}),
        # Sign-up CSRF: the victim signed into an account the attacker creates.
        ("/register", {"email": f"planted-{uuid.uuid4().hex[:8]}@example.com",
                       "password": PASSWORD}),
        ("/account/providers/unlink", {"issuer": "https://idp.example", "subject": "s"}),
    ]  # fmt: skip
    host = ATTACKERS[attacker]
    for path, fields in targets:
        target = f"{server.url}{path}"
        evil = other_pages.url(host, other_pages.put(forged_form(target, {**fields, **extra})))

        def is_forged_post(r: Response, target: str = target) -> bool:
            return r.url == target and r.request.method == "POST"

        with page.expect_response(is_forged_post) as answered:
            page.goto(evil, wait_until="commit")
        response = answered.value
        assert response.status == 403, (path, response.status)
        assert response.json()["error"] == "csrf_failed"
        sent = response.request.all_headers()
        expected_site = "cross-site" if host == "localhost" else "same-site"
        assert sent["sec-fetch-site"] == expected_site
        assert (f"{COOKIE}=" in sent.get("cookie", "")) == (expected_site == "same-site")

        # Still signed in, as the victim, with the very same cookie.
        assert session_cookie(context, server) == victim_cookie, path
        status, body = me_in_browser(context, server)
        assert (status, body["email"] if body else None) == (200, victim), path
        assert server.me(elsewhere).status_code == 200, path

    page.goto(f"{server.url}/account")
    expect(page.locator("p strong")).to_have_text(victim)
    expect(page.locator("ul.rows li")).to_have_count(2)  # both sessions


# --------------------------------------------------------------------------
# 3. CORS


FETCH_JSON = """async ([url, init]) => {
  try {
    const r = await fetch(url, {credentials: "include", ...init});
    const text = await r.text();
    return {ok: true, status: r.status, body: text ? JSON.parse(text) : null};
  } catch (e) {
    return {ok: false, error: `${e.name}: ${e.message}`};
  }
}"""


def open_spa(context: BrowserContext, pages: PageServer) -> Page:
    page = context.new_page()
    page.goto(pages.url("127.0.0.1", pages.put("<!doctype html><title>SPA</title>")))
    return page


def test_cors_allowlisted_origin_reads_the_json(
    context: BrowserContext, server: Gatepass, spa_pages: PageServer
) -> None:
    user = server.register()
    login_through_form(context.new_page(), server, user)
    spa = open_spa(context, spa_pages)
    origin = spa_pages.url("127.0.0.1", "")

    with spa.expect_response(f"{server.url}/auth/me") as answered:
        result = spa.evaluate(FETCH_JSON, [f"{server.url}/auth/me", {}])
    assert result["ok"], result
    assert result["status"] == 200
    assert result["body"]["email"] == user
    headers = answered.value.all_headers()
    assert headers["access-control-allow-origin"] == origin
    assert headers["access-control-allow-credentials"] == "true"
    assert "origin" in headers["vary"].lower()
    sent = answered.value.request.all_headers()
    assert (sent["origin"], sent["sec-fetch-site"]) == (origin, "same-site")
    assert f"{COOKIE}=" in sent["cookie"]  # same site: the Lax cookie goes along


def test_cors_other_origin_cannot_read(
    context: BrowserContext, server: Gatepass, other_pages: PageServer, spa_pages: PageServer
) -> None:
    user = server.register()
    login_through_form(context.new_page(), server, user)
    for host in ("127.0.0.1", "localhost"):  # same site other origin; another site
        page = context.new_page()
        page.goto(other_pages.url(host, other_pages.put("<!doctype html><title>x</title>")))
        result = page.evaluate(FETCH_JSON, [f"{server.url}/auth/me", {}])
        assert result == {"ok": False, "error": "TypeError: Failed to fetch"}, host
    # The control: the very same script, run by the allowlisted origin, reads it
    # (so what failed above is CORS, not the network or the script).
    result = open_spa(context, spa_pages).evaluate(FETCH_JSON, [f"{server.url}/auth/me", {}])
    assert (result["status"], result["body"]["email"]) == (200, user), result


def test_cors_allowlisted_origin_changes_state_with_the_token(
    context: BrowserContext, server: Gatepass, spa_pages: PageServer
) -> None:
    user = server.register()
    own = login_through_form(context.new_page(), server, user)
    elsewhere = server.login(user)
    spa = open_spa(context, spa_pages)
    revoke = f"{server.url}/auth/sessions/revoke-others"

    # Without the token: refused, and the SPA can read why.
    result = spa.evaluate(FETCH_JSON, [revoke, {"method": "POST"}])
    assert result["status"] == 403, result
    assert result["body"]["error"] == "csrf_failed"
    # Another session's token (or an anonymous one) is no better.
    for token in (server.csrf_token(server.login(user)), server.csrf_token()):
        result = spa.evaluate(
            FETCH_JSON, [revoke, {"method": "POST", "headers": {"X-CSRF-Token": token}}]
        )
        assert result["status"] == 403, result
    assert server.me(elsewhere).status_code == 200

    # The SPA cannot read our cookie, but it can ask for its token.
    token_result = spa.evaluate(FETCH_JSON, [f"{server.url}/auth/csrf", {}])
    assert token_result["status"] == 200, token_result
    token = token_result["body"]["csrf_token"]
    # Cookies ignore ports: this same-site page sees the readable CSRF cookie
    # (the token it just got), never the HttpOnly session cookie.
    assert spa.evaluate("document.cookie") == f"{CSRF_COOKIE}={token}"
    result = spa.evaluate(
        FETCH_JSON, [revoke, {"method": "POST", "headers": {"X-CSRF-Token": token}}]
    )
    assert (result["ok"], result["status"]) == (True, 204), result

    assert server.me(elsewhere).status_code == 401  # the other device is signed out
    assert server.me(own).status_code == 200  # this one is not
    assert me_in_browser(context, server)[0] == 200

    # DELETE (preflighted with that method) ends one chosen session.
    tablet = server.login(user)
    listed = spa.evaluate(FETCH_JSON, [f"{server.url}/auth/sessions", {}])["body"]
    [tablet_id] = [s["id"] for s in listed if not s["current"]]
    result = spa.evaluate(
        FETCH_JSON,
        [f"{server.url}/auth/sessions/{tablet_id}",
         {"method": "DELETE", "headers": {"X-CSRF-Token": token}}],
    )  # fmt: skip
    assert result["status"] == 204, result
    assert server.me(tablet).status_code == 401
    assert server.me(own).status_code == 200


def test_cors_allowlisted_origin_signs_in_and_out_through_fetch(
    context: BrowserContext, server: Gatepass, spa_pages: PageServer
) -> None:
    """A single-page app on the allowlisted origin does the whole flow itself."""
    user = server.register()
    spa = open_spa(context, spa_pages)
    api = server.url
    assert spa.evaluate(FETCH_JSON, [f"{api}/auth/me", {}])["status"] == 401

    def post(path: str, token: str, payload: object = None) -> dict[str, Any]:
        init: dict[str, Any] = {"method": "POST", "headers": {"X-CSRF-Token": token}}
        if payload is not None:
            init["headers"]["content-type"] = "application/json"
            init["body"] = json.dumps(payload)
        result: dict[str, Any] = spa.evaluate(FETCH_JSON, [f"{api}{path}", init])
        return result

    anonymous = spa.evaluate(FETCH_JSON, [f"{api}/auth/csrf", {}])["body"]["csrf_token"]
    credentials = {"email": user, "password": PASSWORD}
    # A token that is not the one in this browser's cookie fails the double submit.
    assert post("/auth/login", server.csrf_token(), credentials)["status"] == 403
    signed_in = post("/auth/login", anonymous, credentials)
    assert signed_in["status"] == 200, signed_in
    assert signed_in["body"]["user"]["email"] == user
    assert COOKIE in {c["name"] for c in context.cookies(api)}

    me = spa.evaluate(FETCH_JSON, [f"{api}/auth/me", {}])
    assert (me["status"], me["body"]["email"]) == (200, user)
    # The token rotated at login: the anonymous one no longer works.
    assert post("/auth/logout", anonymous)["status"] == 403
    token = spa.evaluate(FETCH_JSON, [f"{api}/auth/csrf", {}])["body"]["csrf_token"]
    assert token != anonymous
    assert post("/auth/logout", token)["status"] == 204
    assert spa.evaluate(FETCH_JSON, [f"{api}/auth/me", {}])["status"] == 401
    assert COOKIE not in {c["name"] for c in context.cookies(api)}


def test_cors_other_origin_cannot_change_state(
    context: BrowserContext, server: Gatepass, other_pages: PageServer
) -> None:
    user = server.register()
    login_through_form(context.new_page(), server, user)
    elsewhere = server.login(user)
    page = context.new_page()
    page.goto(other_pages.url("127.0.0.1", other_pages.put("<!doctype html><title>x</title>")))
    revoke = f"{server.url}/auth/sessions/revoke-others"
    attacker_token = server.csrf_token(server.login(server.register()))

    # With a custom header the preflight is refused, so the POST is never sent.
    result = page.evaluate(
        FETCH_JSON, [revoke, {"method": "POST", "headers": {"X-CSRF-Token": attacker_token}}]
    )
    assert result == {"ok": False, "error": "TypeError: Failed to fetch"}
    # A "simple" request needs no preflight and carries the Lax cookie (same
    # site), so it does reach the server: the server itself must refuse it.
    # (Its answer is opaque to the page, and Chromium then drops it for its
    # Cross-Origin-Resource-Policy; what counts is that nothing changed.)
    for body in ("", f"csrf_token={attacker_token}"):
        with page.expect_event(
            "requestfailed", lambda r: r.url == revoke and r.method == "POST"
        ) as failed:
            result = page.evaluate(
                FETCH_JSON,
                [revoke, {"method": "POST", "mode": "no-cors", "body": body,
                          "headers": {"content-type": "application/x-www-form-urlencoded"}}],
            )  # fmt: skip
        assert result == {"ok": False, "error": "TypeError: Failed to fetch"}
        assert failed.value.failure == "net::ERR_BLOCKED_BY_RESPONSE.NotSameOrigin"
        assert server.me(elsewhere).status_code == 200
    assert server.me(elsewhere).status_code == 200
    assert me_in_browser(context, server)[0] == 200


# --------------------------------------------------------------------------
# 4. Content-Security-Policy


def violations(page: Page) -> list[dict[str, str]]:
    found: list[dict[str, str]] = page.evaluate("window.__cspViolations")
    return found


def test_pages_raise_no_csp_violation(
    context: BrowserContext, server: Gatepass, watch: Watch
) -> None:
    user = server.register()
    page = context.new_page()

    def visit(action: Any) -> None:
        with page.expect_response(
            lambda r: r.request.is_navigation_request() and r.url.startswith(server.url)
        ) as nav:
            action()
        page.wait_for_load_state("networkidle")
        assert nav.value.headers["content-security-policy"] == DEFAULT_CSP
        assert violations(page) == [], page.url
        # The stylesheet was allowed and applied (so "no violation" is not
        # just "nothing tried to load").
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(244, 245, 247)", page.url

    visit(lambda: page.goto(f"{server.url}/"))
    visit(lambda: page.goto(f"{server.url}/login"))
    page.fill("input[name=email]", user)
    page.fill("input[name=password]", "wrong password here")
    visit(lambda: page.click("form[action='/login'] button[type=submit]"))  # the 401 form
    page.fill("input[name=email]", user)
    page.fill("input[name=password]", PASSWORD)
    visit(lambda: page.click("form[action='/login'] button[type=submit]"))
    assert page.url == f"{server.url}/account"
    visit(lambda: page.goto(f"{server.url}/"))
    visit(lambda: page.goto(f"{server.url}/account"))
    visit(lambda: page.click("form[action='/logout'] button"))
    assert page.url == f"{server.url}/login"

    assert watch.csp_messages() == [], watch.console
    assert watch.page_errors == []


def test_csp_violations_are_detected(
    context: BrowserContext, server: Gatepass, watch: Watch
) -> None:
    """The detector itself: an inline style and an inline script on a page of
    ours are refused, reported as events and in the console."""
    page = context.new_page()
    page.goto(f"{server.url}/login")
    page.evaluate(
        """() => {
          const style = document.createElement("style");
          style.textContent = "body { background-color: rgb(1, 2, 3) }";
          document.head.append(style);
          const script = document.createElement("script");
          script.textContent = "window.__inlineRan = true";
          document.body.append(script);
        }"""
    )
    page.wait_for_function("window.__cspViolations.length >= 2")
    assert {v["directive"] for v in violations(page)} == {"style-src-elem", "script-src-elem"}
    assert page.evaluate("window.__inlineRan === undefined")
    # The inline style was refused; the stylesheet's colour holds.
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(244, 245, 247)"
    deadline = time.monotonic() + 5
    while len(watch.csp_messages()) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(watch.csp_messages()) == 2, watch.console
    watch.console.clear()  # expected here; the fixture fails the others on any


# --------------------------------------------------------------------------
# 5. Signing out through the account page


def test_sign_out_button_ends_the_session(
    context: BrowserContext, chromium: Browser, server: Gatepass
) -> None:
    user = server.register()
    page = context.new_page()
    old = login_through_form(page, server, user)

    with page.expect_response(f"{server.url}/logout") as posted:
        page.click("form[action='/logout'] button")
    assert posted.value.status == 303
    assert '"storage"' in posted.value.all_headers()["clear-site-data"]
    page.wait_for_url(f"{server.url}/login")
    assert COOKIE not in {c["name"] for c in context.cookies(server.url)}
    assert me_in_browser(context, server)[0] == 401

    # The old cookie value, replayed: by a client and by another browser.
    replayed = context.request.get(f"{server.url}/auth/me", headers={"cookie": f"{COOKIE}={old}"})
    assert replayed.status == 401
    assert server.me(old).status_code == 401
    # (Chromium refuses to plant a __Host- cookie through the DevTools
    # protocol, so the other browser presents it as a header on every request.)
    thief = chromium.new_context(extra_http_headers={"cookie": f"{COOKIE}={old}"})
    try:
        stolen = thief.new_page()
        with stolen.expect_response(f"{server.url}/account") as answered:
            stolen.goto(f"{server.url}/account")
        assert answered.value.status == 303
        assert stolen.url == f"{server.url}/login?next=%2Faccount"
        # …and the server tells that browser to drop the dead cookie.
        assert f"{COOKIE}=; Max-Age=0" in answered.value.all_headers()["set-cookie"]
    finally:
        thief.close()


def test_account_page_signs_out_other_sessions(context: BrowserContext, server: Gatepass) -> None:
    user = server.register()
    page = context.new_page()
    own = login_through_form(page, server, user)
    first, second = server.login(user), server.login(user)
    page.reload()
    rows = page.locator("ul.rows li")
    expect(rows).to_have_count(3)

    # One other device, by its own button.
    # The current device's row has no button ("Sign out" at the top ends it).
    other_row = rows.filter(has=page.locator("button")).first
    with page.expect_response(re.compile(r"/account/sessions/[^/]+/revoke$")) as posted:
        other_row.locator("button").click()
    assert posted.value.status == 303
    page.wait_for_url(f"{server.url}/account")
    expect(rows).to_have_count(2)
    assert sorted(server.me(s).status_code for s in (first, second)) == [200, 401]

    # Every other device at once.
    page.click("form[action='/account/sessions/revoke-others'] button")
    page.wait_for_url(f"{server.url}/account")
    expect(rows).to_have_count(1)
    expect(rows.locator(".badge")).to_have_text("This device")
    assert [server.me(s).status_code for s in (first, second, own)] == [401, 401, 200]
