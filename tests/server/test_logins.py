"""Logins: one model for every credential (SPEC "Logins", SECURITY 38-39).

For every way a user can end access, every kind of credential of the ended
logins is refused at the next request, and nothing else is: cookie sessions,
browser-JWT access and refresh cookies, API access and refresh tokens.  Run
on each real store and in both browser modes.  (The admin's ways, through
the CLI, are in test_cli.py and below; across instances in
tests/scale/test_multi_instance.py.)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gatepass.tokens import refresh as refresh_tokens
from tests.server.conftest import PASSWORD, make_client, register

ACCESS_COOKIE = "__Host-gatepass-at"
REFRESH_COOKIE = "__Host-gatepass-rt"
SESSION_COOKIE = "__Host-gatepass"


@dataclass
class Browser:
    """A browser login's cookies (session mode: the session; JWT mode: both tokens)."""

    cookies: dict[str, str]


@dataclass
class Api:
    access: str
    refresh: str


class Harness:
    def __init__(self, client: TestClient, mode: str) -> None:
        self.client = client
        self.mode = mode

    def browser_login(self, email: str = "ada@example.com") -> Browser:
        saved = self.client.cookies
        self.client.cookies = httpx.Cookies()
        try:
            r = self.client.post("/auth/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            names = (ACCESS_COOKIE, REFRESH_COOKIE) if self.mode == "jwt" else (SESSION_COOKIE,)
            return Browser({n: self.client.cookies[n] for n in names})
        finally:
            self.client.cookies = saved

    def api_login(self, email: str = "ada@example.com") -> Api:
        r = self.client.post("/auth/token", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return Api(r.json()["access_token"], r.json()["refresh_token"])

    def as_browser(self, browser: Browser, method: str, path: str) -> httpx.Response:
        saved = self.client.cookies
        self.client.cookies = httpx.Cookies(browser.cookies)
        try:
            return self.client.request(method, path)
        finally:
            self.client.cookies = saved

    def as_api(self, api: Api, method: str, path: str) -> httpx.Response:
        saved = self.client.cookies
        self.client.cookies = httpx.Cookies()
        try:
            return self.client.request(
                method, path, headers={"authorization": f"Bearer {api.access}"}
            )
        finally:
            self.client.cookies = saved

    def browser_alive(self, browser: Browser) -> bool:
        return self.as_browser(browser, "GET", "/auth/me").status_code == 200

    def browser_refreshes(self, browser: Browser) -> bool:
        """JWT mode: whether the refresh cookie still yields a new pair."""
        saved = self.client.cookies
        self.client.cookies = httpx.Cookies(browser.cookies)
        try:
            r = self.client.post("/auth/refresh")
            if r.status_code == 200:
                for value in r.headers.get_list("set-cookie"):
                    name, _, rest = value.partition("=")
                    if name in (ACCESS_COOKIE, REFRESH_COOKIE):
                        browser.cookies[name] = rest.split(";", 1)[0]
            else:
                assert r.status_code == 401 and r.json()["error"] == "invalid_grant", r.text
            return r.status_code == 200
        finally:
            self.client.cookies = saved

    def api_alive(self, api: Api) -> bool:
        return self.as_api(api, "GET", "/auth/me").status_code == 200

    def api_refreshes(self, api: Api) -> bool:
        saved = self.client.cookies
        self.client.cookies = httpx.Cookies()
        try:
            r = self.client.post("/auth/refresh", json={"refresh_token": api.refresh})
        finally:
            self.client.cookies = saved
        if r.status_code == 200:
            api.access, api.refresh = r.json()["access_token"], r.json()["refresh_token"]
            return True
        assert r.status_code == 401 and r.json()["error"] == "invalid_grant", r.text
        return False

    def listed(self, browser: Browser) -> list[dict[str, object]]:
        r = self.as_browser(browser, "GET", "/auth/sessions")
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        rows: list[dict[str, object]] = r.json()
        return rows


@pytest.fixture(
    params=[
        pytest.param(("memory", "session"), id="memory-session"),
        pytest.param(("memory", "jwt"), id="memory-jwt"),
        pytest.param(("sqlite", "session"), id="sqlite-session"),
        pytest.param(("sqlite", "jwt"), id="sqlite-jwt"),
        pytest.param(("redis", "session"), id="redis-session", marks=pytest.mark.redis),
        pytest.param(("redis", "jwt"), id="redis-jwt", marks=pytest.mark.redis),
        pytest.param(("postgres", "session"), id="postgres-session", marks=pytest.mark.postgres),
        pytest.param(("postgres", "jwt"), id="postgres-jwt", marks=pytest.mark.postgres),
        # The nx-27017 emulator (see docs/storage.md).
        pytest.param(("mongodb", "session"), id="mongodb-session", marks=pytest.mark.mongodb),
        pytest.param(("mongodb", "jwt"), id="mongodb-jwt", marks=pytest.mark.mongodb),
    ]
)
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    store, mode = request.param
    overrides: dict[str, object] = {"browser_mode": mode}
    if store == "memory":
        overrides["session_store_url"] = "memory://"
    elif store == "redis":
        overrides["session_store_url"] = request.getfixturevalue("isolated_redis_url")
    elif store == "postgres":
        dsn = request.getfixturevalue("postgres_url")
        overrides["database_url"] = overrides["session_store_url"] = dsn
    elif store == "mongodb":
        # Everything on MongoDB, users and second factors included.
        url = request.getfixturevalue("mongodb_url")
        overrides["database_url"] = overrides["session_store_url"] = url
    with make_client(tmp_path, **overrides) as client:
        register(client)
        register(client, "bob@example.com")
        yield Harness(client, mode)


def _kind(h: Harness) -> str:
    return "browser" if h.mode == "jwt" else "session"


def test_every_kind_of_login_is_listed_with_the_current_one_marked(h: Harness) -> None:
    first, second = h.browser_login(), h.browser_login()
    api = h.api_login()
    h.browser_login("bob@example.com")
    h.api_login("bob@example.com")

    rows = h.listed(first)
    assert sorted(str(r["kind"]) for r in rows) == sorted(["api", _kind(h), _kind(h)])
    assert [r["current"] for r in rows].count(True) == 1
    for row in rows:
        assert set(row) == {"id", "kind", "created_at", "last_seen_at", "ip", "user_agent",
                            "current", "device_bound"}  # fmt: skip
        assert row["ip"] == "testclient"
    # Public ids only: no credential is ever listed.
    listing = str(rows)
    for secret in (*first.cookies.values(), *second.cookies.values(), api.access, api.refresh):
        assert secret not in listing
    # The API login sees the same list, itself as current.
    api_rows = h.as_api(api, "GET", "/auth/sessions").json()
    assert {r["id"] for r in api_rows} == {r["id"] for r in rows}
    [api_row] = [r for r in api_rows if r["current"]]
    assert api_row["kind"] == "api"


def test_ending_one_login_ends_every_credential_it_produced(h: Harness) -> None:
    me, other_browser = h.browser_login(), h.browser_login()
    api, other_api = h.api_login(), h.api_login()
    by_id = {r["id"]: r for r in h.listed(me)}
    other_browser_id = next(
        i for i, r in by_id.items() if r["kind"] == _kind(h) and not r["current"]
    )
    # Which API login is `api`?  Ask it.
    [api_id] = [r["id"] for r in h.as_api(api, "GET", "/auth/sessions").json() if r["current"]]
    for login_id in (other_browser_id, api_id):
        r = h.as_browser(me, "DELETE", f"/auth/sessions/{login_id}")
        assert r.status_code == 204, r.text

    assert not h.browser_alive(other_browser)
    assert not h.api_alive(api)
    assert not h.api_refreshes(api)
    if h.mode == "jwt":
        assert not h.browser_refreshes(other_browser)
    # Nothing else ended.
    assert h.browser_alive(me)
    assert h.api_alive(other_api)
    assert h.api_refreshes(other_api)
    assert {r["id"] for r in h.listed(me)} == set(by_id) - {other_browser_id, api_id}
    # Ending it again, or another user's login, is 404 and changes nothing.
    assert h.as_browser(me, "DELETE", f"/auth/sessions/{api_id}").status_code == 404
    bob = h.browser_login("bob@example.com")
    [bob_id] = [r["id"] for r in h.listed(bob)]
    assert h.as_browser(me, "DELETE", f"/auth/sessions/{bob_id}").status_code == 404
    assert h.browser_alive(bob)


def test_revoke_others_ends_every_other_login_of_every_kind(h: Harness) -> None:
    me, other = h.browser_login(), h.browser_login()
    api = h.api_login()
    bob = h.browser_login("bob@example.com")
    bob_api = h.api_login("bob@example.com")

    assert h.as_browser(me, "POST", "/auth/sessions/revoke-others").status_code == 204

    assert h.browser_alive(me)
    assert not h.browser_alive(other)
    assert not h.api_alive(api)
    assert not h.api_refreshes(api)
    if h.mode == "jwt":
        assert not h.browser_refreshes(other)
        assert h.browser_refreshes(me)
        assert h.browser_alive(me)
    [row] = h.listed(me)
    assert row["current"] is True
    # Bob is untouched.
    assert h.browser_alive(bob) and h.api_alive(bob_api) and h.api_refreshes(bob_api)


def test_revoke_others_from_an_api_login_keeps_only_it(h: Harness) -> None:
    browser = h.browser_login()
    api, other_api = h.api_login(), h.api_login()
    r = h.as_api(api, "POST", "/auth/sessions/revoke-others")
    assert r.status_code == 204, r.text
    assert h.api_alive(api) and h.api_refreshes(api)
    assert not h.browser_alive(browser)
    assert not h.api_alive(other_api) and not h.api_refreshes(other_api)


def test_logout_ends_only_its_own_login(h: Harness) -> None:
    me, other = h.browser_login(), h.browser_login()
    api = h.api_login()
    assert h.as_browser(me, "POST", "/auth/logout").status_code == 204
    assert not h.browser_alive(me)
    if h.mode == "jwt":
        assert not h.browser_refreshes(me)
    assert h.browser_alive(other) and h.api_alive(api)
    assert h.as_api(api, "POST", "/auth/logout").status_code == 204
    assert not h.api_alive(api) and not h.api_refreshes(api)
    assert len(h.listed(other)) == 1


def test_a_made_up_refresh_token_for_a_live_family_changes_nothing(h: Harness) -> None:
    """SECURITY 39: the family id is in every access token (``fid``); a secret
    made up for it is invalid_grant and must not count as reuse."""
    api = h.api_login()
    payload = api.access.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    family_id = claims["fid"]
    made_up = [
        f"{family_id}.{refresh_tokens.new_token(b'x' * 32).split('.')[1]}",
        f"{family_id}.{'A' * 43}",
        # Another real token's secret, moved onto this family.
        f"{family_id}.{h.api_login().refresh.split('.')[1]}",
    ]
    for forged in made_up:
        r = h.client.post("/auth/refresh", json={"refresh_token": forged})
        assert r.status_code == 401 and r.json()["error"] == "invalid_grant", r.text
        r = h.client.post("/auth/revoke", json={"token": forged})
        assert r.status_code == 200
    # The family is alive: its access token works and its refresh token rotates.
    assert h.api_alive(api)
    assert h.api_refreshes(api)
    assert h.api_alive(api)


def test_a_really_reused_refresh_token_still_revokes_its_family(h: Harness) -> None:
    api = h.api_login()
    first = api.refresh
    assert h.api_refreshes(api)
    assert h.api_refreshes(api)  # `first` is now two rotations old: no grace
    r = h.client.post("/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 401 and r.json()["error"] == "invalid_grant"
    assert not h.api_alive(api) and not h.api_refreshes(api)
