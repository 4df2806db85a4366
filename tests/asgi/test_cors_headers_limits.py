"""CORS (SECURITY.md 27), security headers (22) and request limits (9, 31)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from gatepass.asgi.cors import CORSMiddleware
from gatepass.errors import ConfigurationError
from tests.asgi.conftest import ALLOWED, csrf

LOOKALIKES = [
    "https://spa.example.evil",
    "https://evil-spa.example",
    "https://spa.examplе",  # Cyrillic е
    "http://spa.example",
    "https://spa.example:444",
    "https://SPA.example.",
    "null",
    "https://spa.example/",
    "*",
    "",
]


def test_allowed_origin_gets_credentials_and_vary(client: TestClient) -> None:
    r = client.get("/page", headers={"origin": ALLOWED})
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in r.headers["vary"]


@pytest.mark.parametrize("origin", LOOKALIKES)
def test_lookalike_origins_get_no_cors_headers(client: TestClient, origin: str) -> None:
    r = client.get("/page", headers={"origin": origin.encode()})
    assert not [h for h in r.headers if h.startswith("access-control-")]
    assert "Origin" in r.headers["vary"]


def test_preflight_for_allowed_origin(client: TestClient) -> None:
    r = client.options(
        "/change",
        headers={
            "origin": ALLOWED,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-csrf-token",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "x-csrf-token" in r.headers["access-control-allow-headers"]
    assert "POST" in r.headers["access-control-allow-methods"]


@pytest.mark.parametrize("origin", LOOKALIKES)
def test_preflight_for_other_origins_is_refused(client: TestClient, origin: str) -> None:
    r = client.options(
        "/change", headers={"origin": origin.encode(), "access-control-request-method": "POST"}
    )
    assert r.status_code == 403
    assert not [h for h in r.headers if h.startswith("access-control-")]


def test_never_star_with_credentials(client: TestClient) -> None:
    for origin in (ALLOWED, "https://evil.example"):
        r = client.get("/page", headers={"origin": origin})
        assert r.headers.get("access-control-allow-origin") != "*"


@pytest.mark.parametrize(
    "bad", ["*", "https://*.example", "https://a.example/path", "null", "a.example"]
)
def test_wildcards_and_non_origins_are_refused_at_startup(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        CORSMiddleware(lambda s, r, se: None, origins=[bad])  # type: ignore[arg-type,return-value]


def test_security_headers_present(client: TestClient) -> None:
    r = client.get("/page")
    csp = r.headers["content-security-policy"]
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cross-origin-opener-policy"] == "same-origin"
    assert r.headers["cross-origin-resource-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "DENY"
    assert "server" not in r.headers
    assert "x-powered-by" not in r.headers


def test_route_can_override_a_header(client: TestClient) -> None:
    r = client.get("/framed")
    assert r.headers["content-security-policy"] == "frame-ancestors *"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_responses_setting_cookies_are_not_cacheable(client: TestClient) -> None:
    r = client.post("/login", headers={"x-csrf-token": csrf(client)})
    assert r.headers["cache-control"] == "no-store"
    assert "Cookie" in r.headers["vary"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"cookie": "a=" + "x" * 9000}, 431),
        ({"authorization": "Bearer " + "x" * 9000}, 431),
        ({f"x-h{i}": "y" * 1000 for i in range(20)}, 431),
        ({"content-length": "999999999"}, 413),
        ({"content-length": "12a"}, 400),
    ],
)
def test_oversized_requests_are_refused_before_parsing(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    r = client.post("/change", headers=headers)
    assert r.status_code == status
    assert set(r.json()) == {"error", "detail"}


def test_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    token = csrf(client)
    client.post("/login", headers={"x-csrf-token": token})
    token = csrf(client)

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 200

    r = client.post("/change", content=chunks(), headers={"x-csrf-token": token})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("http_version", "headers"),
    [
        ("2", []),  # HTTP/2 may stream a body with no length header at all
        ("1.1", [(b"transfer-encoding", b"chunked")]),
        ("1.1", [(b"content-length", b"5")]),  # a server that delivers more than declared
    ],
)
def test_a_body_without_a_declared_length_is_still_counted(
    http_version: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """The limit layer passes bodyless HTTP/1.x requests through untouched; every
    other request's body is counted as it arrives."""
    import asyncio

    from gatepass.asgi.limits import RequestLimitsMiddleware

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})

    limited = RequestLimitsMiddleware(app, max_body_bytes=1024)
    chunks = [{"type": "http.request", "body": b"x" * 600, "more_body": True}] * 3
    chunks.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[dict[str, object]] = []

    async def receive():  # type: ignore[no-untyped-def]
        return chunks.pop(0)

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    scope = {"type": "http", "http_version": http_version, "method": "POST", "path": "/",
             "headers": headers}  # fmt: skip
    asyncio.run(limited(scope, receive, send))
    assert sent[0]["status"] == 413
