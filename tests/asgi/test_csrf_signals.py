"""Origin, Referer and Sec-Fetch-Site signals at their edges (SECURITY.md 23–26).

Ports, IPv6 hosts and userinfo in the signals, and exactly which header wins
when several are present; beside test_csrf.py, for the mutation run
(tests/mutation) to hold each branch of CSRFMiddleware.check in place.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gatepass.csrf import CSRFSigner
from tests.asgi.conftest import ORIGIN, build
from tests.asgi.test_csrf import logged_in


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(build(CSRFSigner([b"k" * 32])), base_url=ORIGIN) as c:
        yield c


@pytest.mark.parametrize(
    "headers",
    [
        {"referer": "https://app.example:8443/page"},
        {"referer": "http://app.example/page"},
        {"referer": "https://app.example@evil.example/"},
        {"referer": "https://[::1]/page"},
        {"referer": "not a url"},
        {"origin": "https://app.example:8443"},
        {"origin": "https://app.example/"},  # an Origin header is exactly an origin
        {"origin": "HTTPS://APP.EXAMPLE"},
        {"origin": "https://app.example:443"},
        {"origin": "https://[::1]"},
        {"origin": "https://user@app.example"},
        # Origin is checked when present, even if a good Referer is also sent.
        {"origin": "https://evil.example", "referer": ORIGIN + "/"},
        # Sec-Fetch-Site other than same-origin/none does not skip the checks.
        {"sec-fetch-site": "same-site", "referer": "https://evil.example/"},
        {"sec-fetch-site": "bogus", "origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site", "origin": ORIGIN},
    ],
)
def test_foreign_or_malformed_signals_fail(client: TestClient, headers: dict[str, str]) -> None:
    token = logged_in(client)
    r = client.post("/change", headers={"x-csrf-token": token, **headers})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == "csrf_failed"


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "none", "origin": "https://evil.example"},  # typed in the address bar
        {"sec-fetch-site": "same-origin", "referer": "https://evil.example/"},
        {"referer": ORIGIN + ":443/account"},
        {"referer": "https://spa.example/"},
        {"origin": "https://spa.example", "referer": "https://evil.example/"},
    ],
)
def test_trusted_signals_pass(client: TestClient, headers: dict[str, str]) -> None:
    token = logged_in(client)
    r = client.post("/change", headers={"x-csrf-token": token, **headers})
    assert r.status_code == 200, r.text


def test_a_signed_in_request_needs_the_sessions_token_even_same_origin(
    client: TestClient,
) -> None:
    logged_in(client)
    other = TestClient(client.app, base_url=ORIGIN)
    anonymous = other.get("/csrf").json()["csrf_token"]
    for token in (anonymous, "!" * 43, ""):
        r = client.post("/change", headers={"x-csrf-token": token, "sec-fetch-site": "same-origin"})
        assert r.status_code == 403


def test_form_token_is_only_read_from_a_form(client: TestClient) -> None:
    token = logged_in(client)
    r = client.post("/change", content=f"csrf_token={token}",
                    headers={"content-type": "text/plain"})  # fmt: skip
    assert r.status_code == 403
    r = client.post("/change", content=f"csrf_token={token}".encode("utf-16"),
                    headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 403
    form = "application/x-www-form-urlencoded; charset=utf-8"
    r = client.post("/change", content=f"x=1&csrf_token={token}&y=2",
                    headers={"content-type": form})  # fmt: skip
    assert r.status_code == 200
