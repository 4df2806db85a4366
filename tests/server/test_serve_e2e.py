"""The real ``gatepass serve``, as a subprocess on a loopback port, driven over HTTP.

The issue's acceptance flow on each store (SQLite by default, Redis, PostgreSQL),
with the admin CLI changing roles on the same data while the server runs, the
HTML sign-in form, and the idle and absolute session timeouts in real time.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.serving import ServeProcess

PASSWORD = "correct horse battery staple"
EMAIL = "ada@example.com"
COOKIE = "__Host-gatepass"
CSRF_COOKIE = "__Host-gatepass-csrf"
SET_COOKIE_RE = re.compile(
    rf"^{re.escape(COOKIE)}=([A-Za-z0-9_-]{{43}}); Path=/; Secure; HttpOnly; SameSite=Lax$"
)


class Served(ServeProcess):
    """A running ``gatepass serve`` and a cookie-less HTTP client for it."""

    def __init__(self, base: Path, **settings: str) -> None:
        super().__init__(base, never_logged=[PASSWORD], **settings)
        # No cookie jar in play: every request says exactly which cookie it sends.
        self.http = httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)

    def request(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        json: object = None,
        data: dict[str, str] | None = None,
        csrf_cookie: str | None = None,
    ) -> httpx.Response:
        """``csrf_cookie`` is the CSRF cookie a browser would hold; without it,
        a state-changing request first fetches a token as an SPA would."""
        cookies: list[str] = []
        if token is not None:
            cookies.append(f"{COOKIE}={token}")
        headers: dict[str, str] = {}
        if method not in ("GET", "HEAD"):
            headers["origin"] = self.url  # what a browser on this origin sends
            if csrf_cookie is None:
                fetched = self.request("GET", "/auth/csrf", token)
                csrf_cookie = fetched.json()["csrf_token"]
                headers["x-csrf-token"] = csrf_cookie
            cookies.append(f"{CSRF_COOKIE}={csrf_cookie}")
        if cookies:
            headers["cookie"] = "; ".join(cookies)
        self.http.cookies.clear()
        response = self.http.request(method, path, headers=headers, json=json, data=data)
        self.http.cookies.clear()
        return response

    def cli(
        self, *args: str, stdin: str = "", check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return super().cli(*args, stdin=stdin, check=check)


@contextmanager
def serve(tmp_path: Path, name: str = "server", **settings: str) -> Iterator[Served]:
    """Start ``gatepass serve`` on a free loopback port; stop it on exit."""
    served = Served(tmp_path / name, GATEPASS_REGISTRATION_LIMIT="0", **settings)
    try:
        with served:
            yield served
    finally:
        served.http.close()


def session_token(response: httpx.Response) -> str:
    """The session id set by ``response``, after checking every attribute."""
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE + "=")]
    assert len(cookies) == 1, cookies
    match = SET_COOKIE_RE.match(cookies[0])
    assert match, cookies[0]
    assert response.headers["cache-control"] == "no-store"
    return match.group(1)


def login(server: Served, email: str = EMAIL, password: str = PASSWORD) -> str:
    r = server.request("POST", "/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return session_token(r)


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def store_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "redis":
        return {"GATEPASS_SESSION_STORE_URL": request.getfixturevalue("isolated_redis_url")}
    if request.param == "postgres":
        dsn = request.getfixturevalue("postgres_url")
        return {"GATEPASS_DATABASE_URL": dsn, "GATEPASS_SESSION_STORE_URL": dsn}
    return {}


def test_acceptance_flow(tmp_path: Path, store_settings: dict[str, str]) -> None:
    with serve(tmp_path, **store_settings) as server:
        # Register.
        r = server.request("POST", "/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert r.status_code == 201, r.text
        user_id = r.json()["id"]
        assert r.json() == {"id": user_id, "email": EMAIL}
        again = server.request(
            "POST", "/auth/register", json={"email": EMAIL, "password": PASSWORD}
        )
        assert again.status_code == 409

        # Log in: the cookie and every one of its attributes.
        token = login(server)

        me = server.request("GET", "/auth/me", token)
        assert me.status_code == 200
        assert me.json() == {"id": user_id, "email": EMAIL, "roles": [], "email_verified": False}

        sessions = server.request("GET", "/auth/sessions", token)
        assert sessions.status_code == 200
        listed = sessions.json()
        assert len(listed) == 1
        assert listed[0]["current"] is True
        assert listed[0]["ip"] == "127.0.0.1"
        assert listed[0]["user_agent"].startswith("python-httpx/")
        assert token not in sessions.text

        # The admin route: 401 anonymous, 403 plain user…
        anonymous = server.request("GET", "/admin/users")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"]
        forbidden = server.request("GET", "/admin/users", token)
        assert forbidden.status_code == 403
        assert forbidden.json()["error"] == "forbidden"

        # …and 200 once the CLI grants the role, on this very session.
        granted = server.cli("roles", "grant", EMAIL, "admin")
        assert granted.returncode == 0, granted.stderr
        admin = server.request("GET", "/admin/users", token)
        assert admin.status_code == 200, admin.text
        assert [u["email"] for u in admin.json()] == [EMAIL]
        assert server.request("GET", "/auth/me", token).json()["roles"] == ["admin"]
        # The CLI sees the session the server made.
        listed_by_cli = server.cli("sessions", "list", EMAIL)
        assert listed_by_cli.returncode == 0, listed_by_cli.stderr
        assert listed[0]["id"] in listed_by_cli.stdout

        # Log out: 204, the cookie cleared, the session dead server-side.
        out = server.request("POST", "/auth/logout", token)
        assert out.status_code == 204
        # (The CSRF cookie is reissued for the now anonymous browser too.)
        [cleared] = [c for c in out.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
        assert cleared.startswith(f"{COOKIE}=;")
        assert "clear-site-data" in out.headers
        assert "Max-Age=0" in cleared
        assert "Path=/" in cleared and "Secure" in cleared

        for path in ("/auth/me", "/auth/sessions", "/admin/users"):
            replay = server.request("GET", path, token)
            assert replay.status_code == 401, path
            assert replay.headers["www-authenticate"]
        assert server.cli("sessions", "list", EMAIL).stdout.strip() == "[]"

        html_sign_in(server)


def html_sign_in(server: Served) -> None:
    page = server.request("GET", "/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    forms = re.findall(r"<form\b[^>]*>.*?</form>", page.text, flags=re.S | re.I)
    assert len(forms) == 1
    form = forms[0]
    assert re.search(r"method=[\"']?post", form, re.I)
    assert re.search(r"action=[\"']?/login\b", form, re.I)
    names = set(re.findall(r"<input\b[^>]*\bname=[\"']?([\w-]+)", form, re.I))
    assert {"email", "password", "next"} <= names
    assert re.search(r"<input\b[^>]*type=[\"']?password[^>]*name=[\"']?password", form, re.I)
    hidden = dict(
        re.findall(r"<input\b[^>]*type=[\"']?hidden[\"']?[^>]*name=[\"']?([\w-]+)[\"']?"
                   r" value=\"([^\"]*)\"", form, re.I)
    )  # fmt: skip
    extra = {k: v for k, v in hidden.items() if k not in ("next",)}  # e.g. a CSRF token

    # The page set the CSRF cookie its form's token must match (double-submit).
    csrf_cookie = page.cookies[CSRF_COOKIE]
    assert extra["csrf_token"] == csrf_cookie

    def submit(**fields: str) -> httpx.Response:
        return server.request(
            "POST", "/login", data={**extra, **fields}, csrf_cookie=csrf_cookie
        )

    ok = submit(email=EMAIL, password=PASSWORD, next="/account")
    assert ok.status_code == 303, ok.text
    assert ok.headers["location"] == "/account"
    token = session_token(ok)
    account = server.request("GET", "/account", token)
    assert account.status_code == 200
    assert EMAIL in account.text

    evil = submit(email=EMAIL, password=PASSWORD, next="//evil.example")
    assert evil.status_code == 303
    assert evil.headers["location"] == "/account"
    session_token(evil)

    for email, password in ((EMAIL, "not the password"), ("nobody@example.com", PASSWORD)):
        bad = submit(email=email, password=password, next="/account")
        assert bad.status_code == 401
        assert bad.headers["content-type"].startswith("text/html")
        assert "Invalid email or password." in bad.text
        assert not [c for c in bad.headers.get_list("set-cookie") if "=;" not in c]
        assert password not in bad.text
    wrong = submit(email=EMAIL, password="not the password", next="/account")
    unknown = submit(email="nobody@example.com", password="not the password", next="/account")
    # No enumeration through the page: the same page but for the echoed email.
    assert wrong.text.replace(EMAIL, "@") == unknown.text.replace("nobody@example.com", "@")


def test_sliding_renewal_and_absolute_timeout(tmp_path: Path) -> None:
    """Two servers side by side, so the two real-time waits overlap.

    ``sliding`` (idle 2 s): an active session outlives many idle timeouts,
    then 3 s of silence end it.  ``capped`` (idle 2 s, absolute 4 s): the
    session ends at 4 s although it never idled.
    """
    with ExitStack() as stack:
        sliding = stack.enter_context(serve(tmp_path, "sliding", GATEPASS_SESSION_IDLE_TIMEOUT="2"))
        capped = stack.enter_context(
            serve(tmp_path, "capped", GATEPASS_SESSION_IDLE_TIMEOUT="2",
                  GATEPASS_SESSION_ABSOLUTE_TIMEOUT="4")
        )  # fmt: skip
        for server in (sliding, capped):
            r = server.request(
                "POST", "/auth/register", json={"email": EMAIL, "password": PASSWORD}
            )
            assert r.status_code == 201, r.text

        sliding_token = login(sliding)
        started = time.monotonic()
        capped_token = login(capped)
        capped_login = time.monotonic()
        capped_seen: list[tuple[float, int]] = []

        last_sliding = started
        while time.monotonic() - started < 5.2:
            last_sliding = time.monotonic()
            assert sliding.request("GET", "/auth/me", sliding_token).status_code == 200, (
                f"active session ended after {last_sliding - started:.1f} s"
            )
            since = time.monotonic() - capped_login
            capped_seen.append((since, capped.request("GET", "/auth/me", capped_token).status_code))
            time.sleep(0.45)

        # The capped session lived while young, died after 4 s and stayed dead.
        assert all(status == 200 for since, status in capped_seen if since < 3.5), capped_seen
        assert all(status == 401 for since, status in capped_seen if since > 4.3), capped_seen
        assert any(since > 4.3 for since, _ in capped_seen), capped_seen
        statuses = [status for _, status in capped_seen]
        first_dead = statuses.index(401)
        assert set(statuses[first_dead:]) == {401}
        # A fresh login on the capped server works again.
        assert capped.request("GET", "/auth/me", login(capped)).status_code == 200

        # Three quiet seconds (> the 2 s idle timeout) end the sliding session.
        time.sleep(max(0.0, last_sliding + 3.0 - time.monotonic()))
        idle = sliding.request("GET", "/auth/me", sliding_token)
        assert idle.status_code == 401
        assert idle.headers["www-authenticate"]
