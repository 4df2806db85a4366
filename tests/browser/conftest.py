"""Real-browser fixtures: Debian's Chromium driven by Playwright, a real
``gatepass serve`` subprocess, and tiny page servers for the other origins.

Origins in play (Chromium's view):

* ``http://127.0.0.1:<gatepass>``: the app.
* ``http://127.0.0.1:<spa>``: same *site*, other *origin*; listed in
  ``GATEPASS_CORS_ORIGINS`` (a trusted single-page app).
* ``http://127.0.0.1:<other>``: same site, other origin, *not* listed.
* ``http://localhost:<other>``: another *site* altogether (an attacker).

Nothing is mocked: the browser talks HTTP to the real server, and every
external request (there should be none) is aborted and fails the test.

When ``/usr/bin/chromium`` or Playwright is missing the browser tests skip
on a developer's machine and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import IN_CI
from tests.serving import ServeProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Nothing but loopback resolves: a page of ours that pulled in a web font or
#: an analytics script would fail to load it (and the ``context`` fixture
#: fails the test on the attempt).  Not ``context.route``: routing intercepts
#: every request, and Playwright then reports the headers from before the
#: network stack added ``Sec-Fetch-*`` and cookies, which are what these
#: tests check.
BLOCK_EXTERNAL = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
PASSWORD = "correct horse battery staple"
EMAIL = "ada@example.com"
COOKIE = "__Host-gatepass"
CSRF_COOKIE = "__Host-gatepass-csrf"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})

#: Records every CSP violation a document reports, from before its first script.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push({
    directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile,
  });
});
"""


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: browser tests must run, not skip)")
    pytest.skip(f"{message}; install it to run the browser tests")


# --------------------------------------------------------------------------
# The browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One Chromium per module; each test gets a fresh context."""
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, BLOCK_EXTERNAL]
        )
        try:
            yield browser
        finally:
            browser.close()


class Watch:
    """What happened in one browser context: requests, console, page errors."""

    def __init__(self) -> None:
        self.external: list[str] = []
        self.console: list[str] = []
        self.page_errors: list[str] = []

    def csp_messages(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m or "Refused to" in m]


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in ("http", "https", "ws", "wss") or parts.hostname in LOCAL_HOSTS


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def context(chromium: Browser, watch: Watch) -> Iterator[BrowserContext]:
    """A fresh, empty browser context (its own cookie jar).

    Any request for another host (web fonts, analytics, …) cannot resolve
    and fails the test; console messages and page errors are recorded, and any
    CSP violation reported in the console fails the test too.
    """
    ctx = chromium.new_context()
    ctx.set_default_timeout(10_000)
    ctx.add_init_script(CSP_LISTENER)

    ctx.on("request", lambda r: None if _is_local(r.url) else watch.external.append(r.url))
    ctx.on("console", lambda m: watch.console.append(f"{m.type}: {m.text}"))
    ctx.on("weberror", lambda e: watch.page_errors.append(str(e.error)))
    try:
        yield ctx
    finally:
        ctx.close()
    assert watch.external == [], f"external requests were made: {watch.external}"
    assert watch.csp_messages() == [], watch.console


# --------------------------------------------------------------------------
# Pages on other origins


class PageServer:
    """A tiny HTTP server, in a thread, serving whatever HTML a test puts in ``pages``.

    It binds 127.0.0.1, so it is reachable as ``http://127.0.0.1:<port>`` and
    as ``http://localhost:<port>``, which Chromium treats as another site.
    """

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.send_header("cache-control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    def put(self, html: str) -> str:
        """Serve ``html`` at a fresh path; return that path."""
        path = f"/{uuid.uuid4().hex}.html"
        self.pages[path] = html
        return path

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def spa_pages() -> Iterator[PageServer]:
    """Pages on ``http://127.0.0.1:<port>``, an origin the server allowlists."""
    server = PageServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def other_pages() -> Iterator[PageServer]:
    """Pages on a port the server does not allowlist (as 127.0.0.1: same
    site, untrusted origin; as localhost: another site)."""
    server = PageServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------
# The real server


class Gatepass(ServeProcess):
    """A running ``gatepass serve`` plus a cookie-less HTTP client that plays
    other browsers and devices (no jar: each request says what it sends)."""

    def __init__(self, base: Path, **settings: str) -> None:
        super().__init__(base, never_logged=[PASSWORD], **settings)
        self.http = httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)

    def request(
        self, method: str, path: str, session: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A request as an SPA on our own origin makes it: with the session
        cookie, and for unsafe methods a fresh CSRF token (double-submitted)."""
        cookies = [f"{COOKIE}={session}"] if session else []
        headers: dict[str, str] = dict(kwargs.pop("headers", {}))
        if method not in ("GET", "HEAD"):
            token = self.csrf_token(session)
            headers["x-csrf-token"] = token
            headers["origin"] = self.url
            cookies.append(f"{CSRF_COOKIE}={token}")
        if cookies:
            headers["cookie"] = "; ".join(cookies)
        self.http.cookies.clear()
        return self.http.request(method, path, headers=headers, **kwargs)

    def csrf_token(self, session: str | None = None) -> str:
        headers = {"cookie": f"{COOKIE}={session}"} if session else {}
        self.http.cookies.clear()
        r = self.http.get("/auth/csrf", headers=headers)
        assert r.status_code == 200, r.text
        token: str = r.json()["csrf_token"]
        return token

    def register(self, email: str | None = None) -> str:
        """A fresh account (through the JSON API); returns its email."""
        email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
        r = self.request("POST", "/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        return email

    def login(self, email: str) -> str:
        """Log in from another device; returns that session's cookie value."""
        r = self.request("POST", "/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        [value] = [
            c.split(";", 1)[0].split("=", 1)[1]
            for c in r.headers.get_list("set-cookie")
            if c.startswith(f"{COOKIE}=")
        ]
        return value

    def me(self, session: str) -> httpx.Response:
        return self.request("GET", "/auth/me", session)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, spa_pages: PageServer) -> Iterator[Gatepass]:
    """``gatepass serve`` on a free loopback port with its own data dir,
    allowlisting the SPA origin for CORS, with one user made by the CLI."""
    served = Gatepass(
        tmp_path_factory.mktemp("gatepass-browser"),
        # Every test user registers from 127.0.0.1: no per-address quota here
        # (tests/server/test_hardening.py tests it).
        GATEPASS_REGISTRATION_LIMIT="0",
        GATEPASS_CORS_ORIGINS=spa_pages.url("127.0.0.1", ""),
    )
    served.cli("users", "add", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    try:
        with served:
            yield served
    finally:
        served.http.close()


# --------------------------------------------------------------------------
# Helpers the tests share


def login_through_form(page: Page, server: Gatepass, email: str) -> str:
    """Sign in with the HTML form as a person would; returns the session cookie value."""
    page.goto(f"{server.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{server.url}/account")
    return session_cookie(page.context, server)


def session_cookie(context: BrowserContext, server: Gatepass) -> str:
    [value] = [c["value"] for c in context.cookies(server.url) if c["name"] == COOKIE]
    return value
