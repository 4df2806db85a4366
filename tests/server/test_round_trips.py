"""Store round-trip budgets: deterministic, so a regression fails a test
instead of bending a chart (issue 14).

Counted by the storage layer (``store.stats.round_trips``: Redis commands
and pipelines, SQL statements, SQLite calls), on the one shared connection
that sessions, refresh families, revocation and throttling use for a URL.
Users live elsewhere (SQLite here) and are not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gatepass.sessions.tokens import new_token
from tests.server.conftest import PASSWORD, make_client, register

pytestmark = pytest.mark.redis


def _trips(client: TestClient) -> int:
    parts = client.app.state.gatepass.components  # type: ignore[attr-defined]
    count: int = parts.sessions.store.stats.round_trips
    return count


def _caches_ready(client: TestClient) -> None:
    """Wait until both local caches have their invalidation stream (they
    bypass themselves until then, never serving what they cannot keep exact)."""
    import time

    parts = client.app.state.gatepass.components  # type: ignore[attr-defined]
    # A first read starts each stream: a real token's revocation check.
    saved = client.cookies
    client.cookies = httpx.Cookies()
    pair = client.post("/auth/token", json={"email": "ada@example.com", "password": PASSWORD})
    client.cookies = saved
    client.get("/auth/verify", headers={"authorization": f"Bearer {pair.json()['access_token']}"})
    # And a session lookup (of an id nobody holds).
    client.get("/auth/verify", headers={"cookie": f"__Host-gatepass={new_token()}"})
    deadline = time.monotonic() + 10
    while not (parts.sessions.store.cache_active and parts.tokens.revocation.cache_active):
        assert time.monotonic() < deadline, "the invalidation streams did not start"
        client.get("/healthz")
        time.sleep(0.02)


class Counter:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def __call__(self, method: str, path: str, **kwargs: object) -> tuple[httpx.Response, int]:
        before = _trips(self.client)
        response = self.client.request(method, path, **kwargs)  # type: ignore[arg-type]
        return response, _trips(self.client) - before


@pytest.fixture
def redis_store(isolated_redis_url: str) -> str:
    return isolated_redis_url


@pytest.fixture
def app(tmp_path: Path, redis_store: str) -> Iterator[TestClient]:
    with make_client(tmp_path, session_store_url=redis_store) as client:
        register(client)
        yield client


def test_cached_session_and_bearer_requests_make_no_round_trip(app: TestClient) -> None:
    count = Counter(app)
    r, _ = count("POST", "/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert r.status_code == 200
    cookies = {"__Host-gatepass": app.cookies["__Host-gatepass"]}
    app.cookies.clear()
    r, _ = count("GET", "/auth/verify", cookies=cookies)
    _caches_ready(app)
    # The first request may read the session into the local cache; after
    # that, every request is answered without Redis.
    r, _ = count("GET", "/auth/verify", cookies=cookies)
    assert r.status_code == 200
    for _ in range(5):
        r, trips = count("GET", "/auth/verify", cookies=cookies)
        assert r.status_code == 200
        assert trips == 0

    pair = app.post("/auth/token", json={"email": "ada@example.com", "password": PASSWORD})
    bearer = {"authorization": f"Bearer {pair.json()['access_token']}"}
    r, first = count("GET", "/auth/verify", headers=bearer)
    assert r.status_code == 200 and first <= 1
    for _ in range(5):
        r, trips = count("GET", "/auth/verify", headers=bearer)
        assert r.status_code == 200
        assert trips == 0


def test_uncached_requests_make_at_most_one_round_trip(
    app: TestClient, tmp_path: Path, redis_store: str
) -> None:
    r = app.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    cookies = {"__Host-gatepass": app.cookies["__Host-gatepass"]}
    pair = app.post("/auth/token", json={"email": "ada@example.com", "password": PASSWORD})
    bearer = {"authorization": f"Bearer {pair.json()['access_token']}"}
    other = app.post("/auth/token", json={"email": "ada@example.com", "password": PASSWORD})
    # A second instance on the same stores and data dir (keys, secret):
    # its caches know nothing yet.
    with make_client(tmp_path, session_store_url=redis_store) as second:
        count = Counter(second)
        # Warm the connection and its invalidation streams with another token.
        warm = {"authorization": f"Bearer {other.json()['access_token']}"}
        assert count("GET", "/auth/verify", headers=warm)[0].status_code == 200
        _caches_ready(second)
        r, trips = count("GET", "/auth/verify", cookies=cookies)
        assert r.status_code == 200 and trips <= 1
        r, trips = count("GET", "/auth/verify", headers=bearer)
        assert r.status_code == 200 and trips <= 1


def test_login_refresh_and_logout_budgets(app: TestClient) -> None:
    count = Counter(app)
    body = {"email": "ada@example.com", "password": PASSWORD}
    # Each count includes the CSRF-token fetch a browser client makes first
    # (BrowserClient).  Measured 2026-11-30; lower them when work lowers them.
    r, trips = count("POST", "/auth/login", json=body)
    assert r.status_code == 200 and trips <= 3, trips
    r, trips = count("POST", "/auth/logout")
    assert r.status_code == 204 and trips <= 4, trips
    r, trips = count("POST", "/auth/token", json=body)
    assert r.status_code == 200 and trips <= 4, trips
    refresh = r.json()["refresh_token"]
    app.cookies.clear()
    # The rotation script (1) and the user's generation (1, until the
    # revocation cache holds it).
    r, trips = count("POST", "/auth/refresh", json={"refresh_token": refresh})
    assert r.status_code == 200 and trips <= 2, trips


def test_a_refresh_is_one_round_trip_the_rotation(app: TestClient) -> None:
    count = Counter(app)
    _caches_ready(app)
    body = {"email": "ada@example.com", "password": PASSWORD}
    refresh = app.post("/auth/token", json=body).json()["refresh_token"]
    app.cookies.clear()
    # The user's generation comes from the revocation cache (exact: Redis
    # pushes every bump); only the rotation script goes to Redis.
    for _ in range(3):
        r, trips = count("POST", "/auth/refresh", json={"refresh_token": refresh})
        assert r.status_code == 200 and trips == 1, trips
        refresh = r.json()["refresh_token"]
