"""Device-bound sessions in real Chromium (SPEC "Device-bound sessions",
SECURITY 47), per the recipe in TESTING.md.

``gatepass serve`` over TLS on 127.0.0.1 with a self-signed P-256
certificate for ``localhost``, which Chromium trusts through its SPKI pin
(DBSC is silently off when a certificate error is merely ignored); the DBSC
features switched on (software keys: Linux has no TPM provider here).  The
browser signs in through the real login page, registers its own key,
refreshes the bound cookie by itself when it is gone, and gets told to stop
after logout; the same cookies replayed from a plain HTTP client, without
the key, are refused.  Both browser modes.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, EMAIL, PASSWORD, _unavailable
from tests.conftest import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

BOUND = "__Host-gatepass-bound"
SESSION = "__Host-gatepass"
ACCESS = "__Host-gatepass-at"
REFRESH_COOKIE = "__Host-gatepass-rt"
#: Chromium refreshes proactively below ~120 s left: stay well above it.
COOKIE_TTL = 600
#: Playwright's own features must be repeated: the last --enable-features wins.
FEATURES = (
    "--enable-features=DeviceBoundSessions:RefreshQuota/false,"
    "EnableBoundSessionCredentialsSoftwareKeysForManualTesting,"
    "CDPScreenshotNewSurface,SkipListAccountsWithoutGaiaCookies"
)
BLOCK_EXTERNAL = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"


class Certificate:
    def __init__(self, directory: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert = directory / "localhost.pem"
        self.key = directory / "localhost.key"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.key.chmod(0o600)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.spki = base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


class Server:
    """``gatepass serve`` over TLS with device-bound sessions on."""

    def __init__(self, root: Path, certificate: Certificate, browser_mode: str) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"https://localhost:{self.port}"
        self.certificate = certificate
        self.log = root / "gatepass.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
        self.env.update(
            GATEPASS_DATA_DIR=str(root / "data"),
            GATEPASS_PUBLIC_URL=self.url,
            GATEPASS_TLS_CERT=str(certificate.cert),
            GATEPASS_TLS_KEY=str(certificate.key),
            GATEPASS_DEVICE_BOUND_SESSIONS="on",
            GATEPASS_DBSC_COOKIE_TTL=str(COOKIE_TTL),
            GATEPASS_BROWSER_MODE=browser_mode,
            GATEPASS_EMAIL_VERIFICATION="off",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str = "") -> None:
        done = subprocess.run(
            [sys.executable, "-m", "gatepass", *args], input=stdin, capture_output=True,
            text=True, env=self.env, cwd=self.root, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def client(self, cookies: dict[str, str] | None = None) -> httpx.Client:
        """A plain HTTP client: no key, whatever cookies it is given."""
        return httpx.Client(
            base_url=self.url, verify=self.certificate.context(), cookies=cookies, timeout=10
        )

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gatepass", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "info"],
                env=self.env, cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        with self.client() as client:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"gatepass exited:\n{self.log.read_text()}")
                with suppress(httpx.TransportError):
                    if client.get("/healthz").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"gatepass did not start:\n{self.log.read_text()}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate(tmp_path_factory.mktemp("cert"))


@pytest.fixture
def dbsc_chromium(certificate: Certificate) -> Iterator[Browser]:
    """A Chromium per test, so each starts with no DBSC state at all."""
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                *CHROMIUM_ARGS,
                BLOCK_EXTERNAL,
                f"--ignore-certificate-errors-spki-list={certificate.spki}",
                FEATURES,
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(params=["session", "jwt"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, certificate: Certificate
) -> Iterator[Server]:
    srv = Server(tmp_path, certificate, request.param)
    srv.cli("users", "add", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def context(dbsc_chromium: Browser) -> Iterator[BrowserContext]:
    ctx = dbsc_chromium.new_context()
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        ctx.close()


class Events:
    """Chromium's own account of its DBSC sessions, through the DevTools
    protocol (``Network.deviceBoundSessionEventOccurred``)."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.seen: list[dict[str, Any]] = []
        cdp = context.new_cdp_session(page)
        cdp.on("Network.deviceBoundSessionEventOccurred", lambda e: self.seen.append(e))
        cdp.send("Network.enable")
        cdp.send("Network.enableDeviceBoundSessions", {"enable": True})

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.seen if f"{kind}EventDetails" in e]


def cookies(context: BrowserContext) -> dict[str, str]:
    return {c["name"]: c["value"] for c in context.cookies()}


def wait_for(page: Page, predicate: Any, what: Any, timeout: float = 20.0) -> None:
    """Poll ``predicate``, letting Playwright deliver events meanwhile (the
    sync API dispatches them only inside its own calls)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        page.wait_for_timeout(100)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what if isinstance(what, str) else what()}"
            )


def sign_in(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == f"{server.url}/account"


def credentials(server: Server, jar: dict[str, str]) -> dict[str, str]:
    """The long-lived cookies a thief copies (not the bound one)."""
    mode = server.env["GATEPASS_BROWSER_MODE"]
    names = (ACCESS, REFRESH_COOKIE) if mode == "jwt" else (SESSION,)
    return {n: jar[n] for n in names}


def me(server: Server, jar: dict[str, str]) -> int:
    with server.client(jar) as client:
        return client.get("/auth/me").status_code


def bound_sign_in(context: BrowserContext, server: Server) -> tuple[Page, Events, str]:
    """Sign in through the login page; wait for Chromium to register its key."""
    page = context.new_page()
    events = Events(context, page)
    sign_in(page, server)
    wait_for(
        page,
        lambda: events.of("creation") and BOUND in cookies(context),
        lambda: f"the registration; events {events.seen}; log {server.log_lines()[-15:]}",
    )
    [created] = events.of("creation")
    assert created["succeeded"] is True, created
    assert created["creationEventDetails"]["fetchResult"] == "Success"
    assert any('"POST /auth/dbsc/register HTTP/1.1" 200' in x for x in server.log_lines())
    sid: str = created["sessionId"]
    return page, events, sid


def test_chromium_binds_and_refreshes_and_stolen_cookies_fail(
    context: BrowserContext, server: Server
) -> None:
    page, events, sid = bound_sign_in(context, server)
    listed = page.evaluate("fetch('/auth/sessions').then(r => r.json())")
    assert [login["device_bound"] for login in listed] == [True]
    page.goto(f"{server.url}/account")
    assert page.locator(".badge", has_text="Device-bound").count() == 1

    jar = cookies(context)
    stolen = credentials(server, jar)
    # Replayed without the key: refused with the long-lived cookies alone,
    # with a forged bound cookie, with an expired one...
    assert me(server, stolen) == 401
    expires, mac = jar[BOUND].split(".")
    assert me(server, {**stolen, BOUND: f"{int(expires) + 3600}.{mac}"}) == 401
    assert me(server, {**stolen, BOUND: f"{int(time.time()) - 5}.{mac}"}) == 401
    # ...and accepted with the live one (so the refusals above are the binding's).
    assert me(server, {**stolen, BOUND: jar[BOUND]}) == 200

    # The bound cookie is gone: Chromium refreshes it (a challenge, a signed
    # proof) before it sends the protected request, which then succeeds.
    context.clear_cookies(name=BOUND)
    response = page.goto(f"{server.url}/account")
    assert response is not None and response.status == 200
    assert page.url == f"{server.url}/account"
    [refreshed] = events.of("refresh")
    assert refreshed["succeeded"] is True, refreshed
    assert refreshed["refreshEventDetails"]["refreshResult"] == "Refreshed"
    # (Set again: its value is a MAC over the expiry, so within the same
    # second it may equal the one deleted.)
    assert BOUND in cookies(context)
    lines = server.log_lines()
    assert any('"POST /auth/dbsc/refresh HTTP/1.1" 403' in x for x in lines)  # the challenge
    assert any('"POST /auth/dbsc/refresh HTTP/1.1" 200' in x for x in lines)  # the answer
    # The thief can ask for a challenge, but has no key to answer it with.
    with server.client(stolen) as client:
        first = client.post("/auth/dbsc/refresh", headers={"sec-secure-session-id": sid})
        assert first.status_code == 403 and "secure-session-challenge" in first.headers
    assert me(server, stolen) == 401


def test_chromium_session_ends_with_logout(context: BrowserContext, server: Server) -> None:
    page, events, _sid = bound_sign_in(context, server)
    stolen = {**credentials(server, cookies(context)), BOUND: cookies(context)[BOUND]}
    with page.expect_navigation():
        page.click("form[action='/logout'] button")
    assert BOUND not in cookies(context)
    wait_for(page, lambda: events.of("termination"), "the end of the DBSC session")
    assert me(server, stolen) == 401


def test_chromium_session_ended_elsewhere_is_told_to_stop(
    context: BrowserContext, server: Server
) -> None:
    page, events, sid = bound_sign_in(context, server)
    # "Log out everywhere else" from another device: this login ends.
    with server.client() as other:
        csrf = other.get("/auth/csrf").json()["csrf_token"]
        r = other.post(
            "/auth/login",
            json={"email": EMAIL, "password": PASSWORD},
            headers={"x-csrf-token": csrf, "origin": server.url},
        )
        assert r.status_code == 200, r.text
        csrf = other.get("/auth/csrf").json()["csrf_token"]
        r = other.post(
            "/auth/sessions/revoke-others", headers={"x-csrf-token": csrf, "origin": server.url}
        )
        assert r.status_code == 204, r.text
    # The browser's next refresh is answered with continue: false.
    context.clear_cookies(name=BOUND)
    page.goto(f"{server.url}/account")
    assert "/login" in page.url
    wait_for(page, lambda: events.of("termination"), "the end of the DBSC session")
    [ended] = events.of("termination")
    assert ended["sessionId"] == sid
    assert any('"POST /auth/dbsc/refresh HTTP/1.1" 200' in x for x in server.log_lines())
