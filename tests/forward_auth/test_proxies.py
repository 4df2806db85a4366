"""A non-Python app behind real nginx and real Caddy, protected by a real
``gatepass serve`` over HTTPS, driven by HTTP clients and by Chromium.

Hosts (all on 127.0.0.1, one certificate for ``*.example.test``):

* ``auth.example.test:<gatepass>``: gatepass itself, serving TLS.
* ``app1.example.test`` and ``app2.example.test`` on the proxy's port: the
  app, which is the proxy's own echo of the headers that reached it.

The proxy configs are the snippets in ``docs/forward-auth.md``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests.browser.conftest import CHROMIUM_ARGS
from tests.forward_auth.harness import (
    PASSWORD,
    Caddy,
    Certificate,
    Gatepass,
    Nginx,
    Proxy,
    make_certificate,
    require_binary,
    snippet,
    unavailable,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Request

pytestmark = pytest.mark.slow

APP1, APP2 = "app1.example.test", "app2.example.test"
ADA, ADMIN = "ada@example.com", "root@example.com"
#: A user whose email is not Latin-1: a raw header could not carry it.
YUKI = "用户@例子.example"
#: The rules example from the docs, as written: app1 /public/ public (GET,
#: HEAD), app1 /private denied, app2 /admin for role admin, /vault needs MFA.
RULES = snippet("rules")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="module", params=["nginx", "caddy"])
def proxy(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    certificate: Certificate,
) -> Iterator[Proxy]:
    kind = request.param
    require_binary(kind)
    root = tmp_path_factory.mktemp(f"forward-auth-{kind}")
    (root / "gatepass").mkdir()
    gatepass = Gatepass(root / "gatepass", certificate, RULES)
    gatepass.add_user(ADA)
    gatepass.add_user(ADMIN, "admin")
    gatepass.add_user(YUKI)
    gatepass.start()
    (root / kind).mkdir()
    cls = Nginx if kind == "nginx" else Caddy
    running = cls(root / kind, certificate, gatepass, (APP1, APP2))
    try:
        running.start()
        yield running
    finally:
        running.stop()
        gatepass.stop()
        log = gatepass.log()
        assert "Traceback" not in log, log
        assert PASSWORD not in log
    if kind == "caddy":
        assert_caddy_stayed_home(running.log)


def assert_caddy_stayed_home(log: Path) -> None:
    """Caddy's debug log names no host but loopback and the test hosts, and
    shows no ACME or OCSP traffic: nothing left the machine."""
    text = log.read_text()
    assert text, "Caddy wrote no log"
    lowered = text.lower()
    assert "acme" not in lowered
    assert "ocsp responder" not in lowered and "fetching ocsp" not in lowered
    for host in re.findall(r"https?://([a-z0-9.\-]+)", lowered):
        assert host in ("127.0.0.1", "localhost") or host.endswith("example.test"), host
    for line in text.splitlines():
        for address in _addresses(json.loads(line)):
            assert address.rsplit(":", 1)[0] in ("127.0.0.1", ""), (address, line)


_ADDRESS_KEYS = frozenset({"upstream", "address", "addr", "dial", "remote_ip", "dst"})


def _addresses(entry: object) -> Iterator[str]:
    """Every value logged under an address-like key, however deep."""
    if isinstance(entry, dict):
        for key, value in entry.items():
            if key in _ADDRESS_KEYS and isinstance(value, str):
                yield value
            else:
                yield from _addresses(value)
    elif isinstance(entry, list):
        for value in entry:
            yield from _addresses(value)


def sign_in(client: httpx.Client, gatepass: Gatepass, email: str) -> str:
    """Log in through gatepass's JSON API; returns the session cookie pair."""
    base = gatepass.public_url
    csrf = client.get(f"{base}/auth/csrf")
    token = csrf.json()["csrf_token"]
    r = client.post(
        f"{base}/auth/login", json={"email": email, "password": PASSWORD},
        headers={"x-csrf-token": token, "origin": base,
                 "cookie": f"__Secure-gatepass-csrf={token}"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    [cookie] = [
        c.split(";", 1)[0] for c in r.headers.get_list("set-cookie")
        if c.startswith("__Secure-gatepass=")
    ]  # fmt: skip
    assert "Domain=example.test" in r.headers["set-cookie"]
    return cookie


def echo(text: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=\[([^\]]*)\]", text))


def test_anonymous_is_sent_to_sign_in_and_back(proxy: Proxy) -> None:
    with proxy.client() as client:
        url = proxy.url(APP1, "/reports?year=2026&q=a%20b")
        r = client.get(url)
        assert r.status_code == 302
        location = r.headers["location"]
        assert location.startswith(f"{proxy.gatepass.public_url}/login?next=")
        assert parse_qs(urlsplit(location).query)["next"] == [url]
        # The login page keeps that absolute next: its host is named by the rules.
        page = client.get(location)
        assert page.status_code == 200
        assert f'name="next" value="{url.replace("&", "&amp;")}"' in page.text


def test_public_paths_need_nobody_and_identity_cannot_be_forged(proxy: Proxy) -> None:
    forged = {"x-auth-user-id": "admin", "x-auth-email": "root@example.com",
              "x-auth-email*": "UTF-8''root%40example.com", "x-auth-roles": "admin"}  # fmt: skip
    with proxy.client() as client:
        r = client.get(proxy.url(APP1, "/public/style.css"), headers=forged)
        assert r.status_code == 200
        seen = echo(r.text)
        assert seen["user"] == seen["email"] == seen["roles"] == "", r.text
        assert seen.get("star", "") == ""
        # A traversal out of /public/ is not public.
        r = client.get(proxy.url(APP1, "/public/%2e%2e/secret"), headers=forged)
        assert r.status_code == 302
        # Signed in as Ada, the forged headers are replaced by hers.
        cookie = sign_in(client, proxy.gatepass, ADA)
        r = client.get(proxy.url(APP2, "/x"), headers={**forged, "cookie": cookie})
        seen = echo(r.text)
        assert (seen["email"], seen["roles"]) == (ADA, ""), r.text


def test_rules_deny_and_allow_as_written(proxy: Proxy) -> None:
    with proxy.client() as client:
        ada = sign_in(client, proxy.gatepass, ADA)
        root = sign_in(client, proxy.gatepass, ADMIN)
        cases = [
            (ada, APP1, "/", 200), (ada, APP1, "/private", 403), (ada, APP1, "/private/x", 403),
            (ada, APP1, "/privateer", 200), (ada, APP2, "/admin", 403), (ada, APP2, "/other", 200),
            (root, APP2, "/admin/users", 200), (root, APP1, "/private", 403),
            # Password-only logins have no second factor.
            (ada, APP1, "/vault", 403), (root, APP2, "/vault/x", 403),
            (None, APP1, "/private", 403), (None, APP2, "/admin", 302),
        ]  # fmt: skip
        for cookie, host, path, status in cases:
            headers = {"cookie": cookie} if cookie else {}
            r = client.get(proxy.url(host, path), headers=headers)
            assert r.status_code == status, (cookie == root, host, path, r.text)
        r = client.get(proxy.url(APP2, "/admin/users"), headers={"cookie": root})
        assert echo(r.text)["roles"] == "admin"
        # The public rule lists GET and HEAD only: a POST there needs a user.
        assert client.head(proxy.url(APP1, "/public/x")).status_code == 200
        assert client.post(proxy.url(APP1, "/public/x")).status_code == 302


def test_an_email_outside_latin_1_reaches_the_app(proxy: Proxy) -> None:
    with proxy.client() as client:
        cookie = sign_in(client, proxy.gatepass, YUKI)
        r = client.get(proxy.url(APP1, "/"), headers={"cookie": cookie})
        assert r.status_code == 200
        seen = echo(r.text)
        assert seen["email"] == quote(YUKI, safe="!#$&+^`|")
        if "star" in seen:
            assert seen["star"] == "UTF-8''" + seen["email"]


def test_logout_ends_access_through_the_proxy_at_once(proxy: Proxy) -> None:
    with proxy.client() as client:
        cookie = sign_in(client, proxy.gatepass, ADA)
        assert client.get(proxy.url(APP1, "/"), headers={"cookie": cookie}).status_code == 200
        base = proxy.gatepass.public_url
        token = client.get(f"{base}/auth/csrf", headers={"cookie": cookie}).json()["csrf_token"]
        headers = {"cookie": cookie, "x-csrf-token": token, "origin": base}
        r = client.post(f"{base}/auth/logout", headers=headers)
        assert r.status_code == 204
        # The very next request, with the old cookie, is turned away.
        assert client.get(proxy.url(APP1, "/"), headers={"cookie": cookie}).status_code == 302


def test_gatepass_serves_https_with_hsts(proxy: Proxy) -> None:
    with proxy.gatepass.client() as client:
        r = client.get(f"{proxy.gatepass.public_url}/healthz")
        assert r.headers["strict-transport-security"].startswith("max-age=")
        assert r.url.scheme == "https"


def test_rules_reload_on_sighup_and_a_bad_file_keeps_them(proxy: Proxy) -> None:
    gatepass = proxy.gatepass
    with proxy.client() as client:
        assert client.get(proxy.url(APP2, "/public/x")).status_code == 302
        try:
            gatepass.rules.write_text(RULES + f'\n[[rules]]\nhost = "{APP2}"\npolicy = "public"\n')
            gatepass.reload()
            wait_for(lambda: client.get(proxy.url(APP2, "/public/x")).status_code == 200)
            gatepass.rules.write_text('[[rules]]\npolicy = "nobody-checks-this"\n')
            gatepass.reload()
            wait_for(lambda: "access rules not reloaded" in gatepass.log())
            assert "line 1" in gatepass.log()
            assert client.get(proxy.url(APP2, "/public/x")).status_code == 200  # old rules
        finally:
            gatepass.rules.write_text(RULES)
            gatepass.reload()
            wait_for(lambda: client.get(proxy.url(APP2, "/public/x")).status_code == 302)


def wait_for(condition: object, timeout: float = 10) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


# --------------------------------------------------------------------------
# A real browser


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium(certificate: Certificate) -> Iterator[Browser]:
    """Chromium resolving *.example.test to loopback (nothing else resolves)
    and trusting the test certificate by its key, as a real deployment's
    browser trusts a real one."""
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed")
    resolve = ("--host-resolver-rules=MAP *.example.test 127.0.0.1, MAP * ~NOTFOUND, "
               "EXCLUDE localhost, EXCLUDE 127.0.0.1")  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*CHROMIUM_ARGS, resolve,
                  f"--ignore-certificate-errors-spki-list={certificate.spki}"],
        )  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    ctx = chromium.new_context()
    ctx.set_default_timeout(15_000)
    outside: list[str] = []

    def record(request: Request) -> None:
        host = urlsplit(request.url).hostname or ""
        if request.url.startswith(("http:", "https:")) and not host.endswith(".example.test"):
            outside.append(request.url)

    ctx.on("request", record)
    try:
        yield ctx
    finally:
        ctx.close()
    assert outside == [], f"requests left the test hosts: {outside}"


def body(page: Page) -> str:
    return page.inner_text("body")


def test_browser_signs_in_once_and_reaches_two_protected_subdomains(
    proxy: Proxy, context: BrowserContext
) -> None:
    gatepass = proxy.gatepass
    page = context.new_page()
    # 1. The app sends the anonymous browser to sign in at auth.example.test...
    first = proxy.url(APP1, "/reports?year=2026")
    page.goto(first)
    assert page.url.startswith(f"{gatepass.public_url}/login?next=")
    page.fill("input[name=email]", ADA)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    # 2. ...and, signed in, back to where it was going.
    page.wait_for_url(first)
    assert f"email=[{ADA}]" in body(page)
    [cookie] = [c for c in context.cookies() if c["name"] == "__Secure-gatepass"]
    assert cookie["domain"] == ".example.test" and cookie["secure"] and cookie["httpOnly"]

    # 3. The other app: no second sign-in.
    response = page.goto(proxy.url(APP2, "/dashboard"))
    assert response is not None and response.status == 200
    assert f"email=[{ADA}]" in body(page)

    # 4. Rules deny and allow as written.
    for host, path, status in ((APP1, "/private/x", 403), (APP2, "/admin", 403),
                               (APP1, "/public/a", 200), (APP1, "/vault", 403)):  # fmt: skip
        response = page.goto(proxy.url(host, path))
        assert response is not None and response.status == status, (host, path)

    # 5. Signing out at gatepass ends access through the proxy at once.
    page.goto(f"{gatepass.public_url}/account")
    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_url(f"{gatepass.public_url}/login")
    page.goto(proxy.url(APP2, "/dashboard"))
    assert page.url.startswith(f"{gatepass.public_url}/login?next=")
    assert "email=[" not in body(page)


def test_browser_public_path_and_admin_role(proxy: Proxy, context: BrowserContext) -> None:
    page = context.new_page()
    response = page.goto(proxy.url(APP1, "/public/readme.txt"))
    assert response is not None and response.status == 200
    assert "user=[]" in body(page)
    page.goto(proxy.url(APP2, "/admin/users"))
    page.fill("input[name=email]", ADMIN)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(proxy.url(APP2, "/admin/users"))
    assert "roles=[admin]" in body(page)


# --------------------------------------------------------------------------
# The documented nginx cache


class CachingNginx(Nginx):
    cache = True


CACHE_SECONDS = 2


@pytest.fixture(scope="module")
def cached(
    tmp_path_factory: pytest.TempPathFactory, certificate: Certificate
) -> Iterator[Proxy]:
    require_binary("nginx")
    root = tmp_path_factory.mktemp("forward-auth-cache")
    (root / "gatepass").mkdir()
    (root / "nginx").mkdir()
    gatepass = Gatepass(root / "gatepass", certificate, RULES,
                        GATEPASS_FORWARD_AUTH_CACHE=str(CACHE_SECONDS))  # fmt: skip
    gatepass.add_user(ADA)
    gatepass.add_user(ADMIN, "admin")
    gatepass.start()
    running = CachingNginx(root / "nginx", certificate, gatepass, (APP1, APP2))
    try:
        running.start()
        yield running
    finally:
        running.stop()
        gatepass.stop()


def verify_calls(gatepass: Gatepass) -> int:
    return len(re.findall(r'"GET /auth/verify HTTP/1\.[01]"', gatepass.log()))


def test_cached_answers_are_per_credential_and_logout_ends_access_within_the_cache_time(
    cached: Proxy,
) -> None:
    gatepass = cached.gatepass
    with cached.client() as client:
        ada = sign_in(client, gatepass, ADA)
        root = sign_in(client, gatepass, ADMIN)
        before = verify_calls(gatepass)
        for _ in range(3):
            r = client.get(cached.url(APP1, "/"), headers={"cookie": ada})
            assert echo(r.text)["email"] == ADA
        assert verify_calls(gatepass) == before + 1  # really cached
        # The same URL, another user, within the cache time: their own answer.
        r = client.get(cached.url(APP1, "/"), headers={"cookie": root})
        assert echo(r.text)["email"] == ADMIN
        # Nobody, or a made-up cookie, never gets a cached 200.
        assert client.get(cached.url(APP1, "/")).status_code == 302
        fake = "__Secure-gatepass=" + "A" * 43
        assert client.get(cached.url(APP1, "/"), headers={"cookie": fake}).status_code == 302
        # Refusals are not cached: each one asks gatepass.
        before = verify_calls(gatepass)
        for _ in range(2):
            r = client.get(cached.url(APP1, "/private"), headers={"cookie": ada})
            assert r.status_code == 403
        assert verify_calls(gatepass) == before + 2

        base = gatepass.public_url
        token = client.get(f"{base}/auth/csrf", headers={"cookie": ada}).json()["csrf_token"]
        headers = {"cookie": ada, "x-csrf-token": token, "origin": base}
        assert client.post(f"{base}/auth/logout", headers=headers).status_code == 204
        # Within the cache time (nginx counts whole seconds: up to one more).
        wait_for(
            lambda: client.get(cached.url(APP1, "/"), headers={"cookie": ada}).status_code == 302,
            timeout=CACHE_SECONDS + 1.5,
        )
