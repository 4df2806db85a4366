"""The HTML pages, in-process: sign-up, sign-in, account (devices, providers),
favicon and static files, HTML error pages for browsers and JSON for the rest."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gatepass.integration import Gatepass
from gatepass.oauth.identities import ExternalIdentity
from gatepass.server.devices import describe_user_agent, present_logins
from tests.conftest import free_port
from tests.server.conftest import PASSWORD, login_elsewhere, make_client, register

HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def form_register(client: TestClient, email: str, password: str) -> httpx.Response:
    page = client.get("/register", headers=HTML)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return client.post(
        "/register",
        data={"email": email, "password": password, "csrf_token": token.group(1)},
        headers={**HTML, "x-csrf-token": token.group(1)},
        follow_redirects=False,
    )


# -- devices -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ua", "label"),
    [
        (CHROME_LINUX, "Chrome on Linux"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", "Edge on Windows"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0",
         "Firefox on macOS"),
        ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
         "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
         "Samsung Internet on Android"),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/126.0.0.0 Safari/537.36", "Chrome on ChromeOS"),
        ("curl/8.5.0", "curl"),
        ("python-httpx/0.28.1", "Python (httpx)"),
        ("Mozilla/5.0 (X11; Linux x86_64) Gecko", "Unknown browser on Linux"),
        ("", "Unknown device"),
        (None, "Unknown device"),
    ],
)  # fmt: skip
def test_user_agents_read_as_people_say_them(ua: str | None, label: str) -> None:
    assert describe_user_agent(ua) == label


def test_logins_are_presented_from_dicts_or_objects() -> None:
    class Row:
        id = "b"
        kind = "api"
        created_at = 1_000.0
        last_seen_at = 1_000.0 + 3 * 3600
        ip = "203.0.113.7"
        user_agent = "curl/8.5.0"
        current = False

    rows = present_logins(
        [
            Row(),
            {"id": "a", "created_at": "1970-01-01T00:16:40Z",
             "last_seen_at": "1970-01-01T05:00:00Z",
             "ip": None, "user_agent": CHROME_LINUX, "current": True, "device_bound": True},
        ],
        now=1_000.0 + 5 * 3600,
    )
    assert [r.id for r in rows] == ["a", "b"]  # the current login first
    assert (rows[0].kind, rows[0].device, rows[0].last_active) == ("session", "Chrome on Linux",
                                                                   "now")  # fmt: skip
    assert (rows[1].kind, rows[1].device, rows[1].last_active) == ("api", "curl", "2 hours ago")
    assert rows[1].signed_in == "1 Jan 1970, 00:16 UTC"
    assert (rows[0].device_bound, rows[1].device_bound) == (True, False)


# -- sign-up and sign-in ---------------------------------------------------------


def test_register_page_creates_the_account_and_signs_in(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        page = client.get("/register", headers=HTML)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'action="/register"' in page.text and 'autocomplete="new-password"' in page.text
        r = form_register(client, "grace@example.com", PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == "/account"
        assert client.get("/auth/me").json()["email"] == "grace@example.com"
        account = client.get("/account", headers=HTML)
        assert "grace@example.com" in account.text


def test_register_page_errors_are_shown_on_the_form(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        register(client, "ada@example.com")
        client.cookies = httpx.Cookies()
        taken = form_register(client, "ada@example.com", PASSWORD)
        assert taken.status_code == 409
        assert "already exists" in taken.text and 'value="ada@example.com"' in taken.text
        weak = form_register(client, "bob@example.com", "short")
        assert weak.status_code == 400 and 'role="alert"' in weak.text
        assert "short" not in re.sub(r'<input[^>]*>', "", weak.text).split("<main>")[1].split(
            "alert")[0]  # fmt: skip
        bad = form_register(client, "<script>@x", PASSWORD)
        assert bad.status_code == 400 and "<script>@x" not in bad.text
        assert client.get("/auth/me").status_code == 401  # none of these signed anyone in


def test_sign_up_link_only_when_registration_is_open(tmp_path: Path) -> None:
    with make_client(tmp_path / "open") as client:
        assert 'href="/register"' in client.get("/login").text
    with make_client(tmp_path / "closed", registration="closed") as client:
        login = client.get("/login")
        assert 'href="/register"' not in login.text
        closed = client.get("/register", headers=HTML)
        assert closed.status_code == 403 and "Registration is closed" in closed.text
        token = client.get("/auth/csrf").json()["csrf_token"]
        post = client.post(
            "/register", data={"email": "x@example.com", "password": PASSWORD,
                               "csrf_token": token}, headers=HTML,
        )  # fmt: skip
        assert post.status_code == 403
        assert client.post("/auth/login", json={"email": "x@example.com",
                                                "password": PASSWORD}).status_code == 401


# -- the account page ----------------------------------------------------------


def test_account_shows_devices_times_and_distinct_buttons(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        register(client)
        client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD},
                    headers={"user-agent": CHROME_LINUX})  # fmt: skip
        saved = client.cookies
        client.cookies = httpx.Cookies()
        client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD},
                    headers={"user-agent": SAFARI_IPHONE})  # fmt: skip
        client.cookies = saved
        page = client.get("/account", headers=HTML)
        words = text_of(page.text)
        assert "Chrome on Linux This device" in words
        assert "Safari on iPhone" in words
        assert "Mozilla/5.0" not in page.text  # no raw User-Agent strings
        assert words.count("Signed in ") >= 2 and "Last active" in words
        buttons = re.findall(r"<button[^>]*>([^<]+)</button>", page.text)
        assert sorted(set(buttons)) == [
            "Add a passkey", "Change email address", "Change password", "Mail me a new link",
            "Set up an authenticator app",
            "Sign out", "Sign out everywhere else", "Sign out of this device",
        ]
        assert buttons.count("Sign out") == 1


# -- static, favicon, error pages ---------------------------------------------


def test_favicon_and_stylesheet(client: TestClient) -> None:
    page = client.get("/login")
    assert '<link rel="icon" href="/static/favicon.svg"' in page.text
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert "max-age=3600" in icon.headers["cache-control"]
    assert client.get("/favicon.ico", follow_redirects=True).status_code == 200
    css = client.get("/static/gatepass.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/../server/settings.py").status_code == 404
    assert "style=" not in page.text and "<style" not in page.text
    # Script only as static files (passkeys.js), never inline.
    assert re.findall(r"<script[^>]*>[^<]*</script>", page.text) == [
        '<script src="/static/passkeys.js" defer></script>'
    ]


def test_404_is_html_for_browsers_and_json_for_the_rest(client: TestClient) -> None:
    page = client.get("/no/such/page", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text and "Accept" in page.headers["vary"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    api = client.get("/no/such/page", headers={"accept": "application/json"})
    assert api.status_code == 404 and api.json()["error"] == "not_found"
    assert client.get("/no/such/page").json()["error"] == "not_found"  # */*


def test_503_is_html_for_browsers_and_json_for_the_rest(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with make_client(tmp_path, session_store_url=dead) as client:
        cookie = {"cookie": "__Host-gatepass=" + "x" * 43}
        page = client.get("/account", headers={**HTML, **cookie})
        assert page.status_code == 503, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "Temporarily unavailable" in page.text
        assert page.headers["retry-after"] == "5"
        api = client.get("/auth/me", headers=cookie)
        assert api.status_code == 503 and api.json()["error"] == "store_unavailable"


# -- providers: offered only when up; link and unlink ------------------------


def _with_dead_provider(tmp_path: Path, **overrides: Any) -> TestClient:
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens: discovery fails
    extra = {
        "GATEPASS_OAUTH_PROVIDERS": "corp",
        "GATEPASS_OAUTH_CORP_ISSUER": issuer,
        "GATEPASS_OAUTH_CORP_CLIENT_ID": "corp-client",
        "GATEPASS_OAUTH_CORP_TITLE": "Corp SSO",
    }
    return make_client(tmp_path, extra=extra, **overrides)


def test_an_unreachable_provider_is_not_offered_and_fails_as_a_page(tmp_path: Path) -> None:
    with _with_dead_provider(tmp_path) as client:
        server: Gatepass = client.app.state.gatepass  # type: ignore[attr-defined]
        assert server.components is not None and server.components.oauth is not None
        assert server.components.oauth.status() == {"corp": "unavailable"}
        assert "/auth/oauth/corp/start" not in client.get("/login").text
        page = client.get("/auth/oauth/corp/start", headers=HTML, follow_redirects=False)
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert "unavailable right now" in page.text and "(unavailable)" not in page.text
        api = client.get("/auth/oauth/corp/start", follow_redirects=False)
        assert api.status_code == 503 and api.json()["error"] == "provider_unavailable"


def _link(client: TestClient, user_id: str, subject: str) -> None:
    server: Gatepass = client.app.state.gatepass  # type: ignore[attr-defined]
    assert server.components is not None and server.components.oauth is not None
    identities = server.components.oauth.identities
    provider = server.components.oauth.providers["corp"]

    async def add() -> None:
        await identities.add(ExternalIdentity(
            issuer=provider.config.issuer, subject=subject, user_id=user_id,
            provider="corp", email=None, created_at=1_800_000_000.0,
        ))  # fmt: skip

    client.portal.call(add)


def _unlink_forms(page: str) -> list[dict[str, str]]:
    forms = re.findall(r'<form[^>]*action="/account/providers/unlink".*?</form>', page, re.S)
    return [dict(re.findall(r'name="(\w+)" value="([^"]*)"', f)) for f in forms]


def test_unlink_a_provider_from_the_account_page(tmp_path: Path) -> None:
    with _with_dead_provider(tmp_path) as client:
        user_id = register(client)
        client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        _link(client, user_id, "sub-ada")
        page = client.get("/account", headers=HTML)
        assert "Corp SSO" in page.text and "Linked 15 Jan 2027" in page.text
        [fields] = _unlink_forms(page.text)
        done = client.post("/account/providers/unlink", data=fields, headers=HTML)
        assert done.status_code == 200 and "Corp SSO is unlinked." in done.text
        assert _unlink_forms(done.text) == []
        again = client.post("/account/providers/unlink", data=fields, headers=HTML)
        assert again.status_code == 404


def test_the_last_way_to_sign_in_cannot_be_unlinked(tmp_path: Path) -> None:
    with _with_dead_provider(tmp_path) as client:
        server: Gatepass = client.app.state.gatepass  # type: ignore[attr-defined]
        parts = server.components
        assert parts is not None

        async def passwordless() -> str:
            user = await parts.accounts.users.create("sso@example.com", None, ())
            issued = await parts.sessions.create(user.id, ())
            return f"{user.id} {issued.token}"

        user_id, token = client.portal.call(passwordless).split()
        _link(client, user_id, "sub-sso")
        client.cookies = httpx.Cookies()
        as_sso = {**HTML, "cookie": f"__Host-gatepass={token}"}
        page = client.get("/account", headers=as_sso)
        assert page.status_code == 200 and "sso@example.com" in page.text
        assert _unlink_forms(page.text) == []  # no button offered
        assert "only way to sign in" in page.text
        provider = parts.oauth.providers["corp"] if parts.oauth else None
        assert provider is not None
        forged = {"issuer": provider.config.issuer, "subject": "sub-sso"}
        refused = client.post("/account/providers/unlink", data=forged, headers=as_sso)
        assert refused.status_code == 409
        assert "only way to sign in" in refused.text

        # A second link makes either removable, but never the last one.
        _link(client, user_id, "sub-sso-2")
        ok = client.post("/account/providers/unlink", data=forged, headers=as_sso)
        assert ok.status_code == 200
        last = client.post("/account/providers/unlink",
                           data={**forged, "subject": "sub-sso-2"}, headers=as_sso)  # fmt: skip
        assert last.status_code == 409


def test_unlink_cannot_touch_another_users_identity(tmp_path: Path) -> None:
    with _with_dead_provider(tmp_path) as client:
        victim = register(client, "victim@example.com")
        _link(client, victim, "sub-victim")
        register(client, "eve@example.com")
        login_elsewhere(client, "eve@example.com")
        client.post("/auth/login", json={"email": "eve@example.com", "password": PASSWORD})
        server: Gatepass = client.app.state.gatepass  # type: ignore[attr-defined]
        assert server.components is not None and server.components.oauth is not None
        issuer = server.components.oauth.providers["corp"].config.issuer
        r = client.post("/account/providers/unlink",
                        data={"issuer": issuer, "subject": "sub-victim"}, headers=HTML)  # fmt: skip
        assert r.status_code == 404

        async def still() -> bool:
            assert server.components is not None and server.components.oauth is not None
            return await server.components.oauth.identities.get(issuer, "sub-victim") is not None

        assert client.portal.call(still)


def test_a_provider_that_comes_back_is_offered_again(tmp_path: Path) -> None:
    """Down at start-up, so not offered; the sign-in page starts a rediscovery
    in the background once the retry interval has passed, and when the
    provider answers again it is offered again."""
    import json
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    document = json.dumps({
        "issuer": issuer, "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/jwks",
        "code_challenge_methods_supported": ["S256"],
    }).encode()  # fmt: skip

    class Discovery(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            pass

    extra = {
        "GATEPASS_OAUTH_PROVIDERS": "corp",
        "GATEPASS_OAUTH_CORP_ISSUER": issuer,
        "GATEPASS_OAUTH_CORP_CLIENT_ID": "corp-client",
        "GATEPASS_OAUTH_CORP_TITLE": "Corp SSO",
    }
    with make_client(tmp_path, extra=extra) as client:
        server: Gatepass = client.app.state.gatepass  # type: ignore[attr-defined]
        assert server.components is not None and server.components.oauth is not None
        provider = server.components.oauth.providers["corp"]
        assert provider.status == "unavailable"
        assert "Corp SSO" not in client.get("/login").text  # too soon to retry

        httpd = ThreadingHTTPServer(("127.0.0.1", port), Discovery)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            provider._tried_at -= 60  # the retry interval has passed
            client.get("/login")  # not offered yet: the retry runs in the background
            deadline = time.monotonic() + 10
            while provider.status != "ok" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "Sign in with Corp SSO" in client.get("/login").text
        finally:
            httpd.shutdown()
            httpd.server_close()


def test_operator_overrides_a_page_and_the_stylesheet(tmp_path: Path) -> None:
    brand = tmp_path / "brand"
    (brand / "static").mkdir(parents=True)
    (brand / "base.html").write_text(
        (resources.files("gatepass") / "templates" / "base.html").read_text()
        .replace("Secured by gatepass", "Acme Identity")
    )  # fmt: skip
    (brand / "static" / "gatepass.css").write_text("body{color:#123456}")
    with make_client(tmp_path, templates_dir=brand) as client:
        page = client.get("/login")
        assert "Acme Identity" in page.text and 'action="/login"' in page.text
        assert client.get("/static/gatepass.css").text == "body{color:#123456}"
        assert client.get("/static/favicon.svg").status_code == 200  # built-in kept
        assert "Acme Identity" in client.get("/nope", headers=HTML).text  # error pages too
