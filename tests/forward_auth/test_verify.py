"""``GET /auth/verify`` in-process: rules, trusted proxies, redirects, headers, HSTS,
cookie domain mode, settings.  The real nginx/Caddy/Chromium runs are in
``test_proxies.py``; these pin the contract answer by answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from starlette.testclient import TestClient

from gatepass.errors import ConfigurationError
from gatepass.server.app import create_app
from gatepass.server.settings import Settings
from tests.server.conftest import PASSWORD, BrowserClient

PUBLIC_URL = "https://auth.example.test"
PROXY = ("127.0.0.1", 40000)
RULES = """\
[[rules]]
host = "app.example.test"
path = "/public/"
policy = "public"

[[rules]]
host = "app.example.test"
path = "/admin"
policy = "signed_in"
roles = ["admin"]

[[rules]]
host = "app.example.test"
path = "/vault"
policy = "mfa"

[[rules]]
host = "*.example.test"
path = "/closed"
policy = "deny"
"""


def make(tmp_path: Path, *, peer: tuple[str, int] = PROXY, **overrides: Any) -> TestClient:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data", "public_url": PUBLIC_URL, "access_rules": str(rules),
        "trusted_proxies": ("127.0.0.1",), **overrides,
    }  # fmt: skip
    return BrowserClient(create_app(Settings(**values)), base_url=PUBLIC_URL, client=peer)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make(tmp_path) as c:
        yield c


def sign_in(client: TestClient, email: str = "ada@example.com") -> None:
    r = client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text


def nginx(url: str, method: str = "GET") -> dict[str, str]:
    return {"x-original-url": url, "x-original-method": method}


def caddy(host: str, uri: str, method: str = "GET") -> dict[str, str]:
    return {"x-forwarded-proto": "https", "x-forwarded-host": host, "x-forwarded-uri": uri,
            "x-forwarded-method": method}  # fmt: skip


def test_anonymous_gets_401_with_the_way_to_sign_in(client: TestClient) -> None:
    url = "https://app.example.test:8443/reports?year=2026&q=a b".replace(" ", "%20")
    r = client.get("/auth/verify", headers=nginx(url))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["location"] == f"{PUBLIC_URL}/login?next={quote(url, safe='')}"
    assert r.headers["cache-control"] == "no-store"
    assert "x-auth-user-id" not in r.headers


def test_redirect_mode_answers_302(client: TestClient) -> None:
    r = client.get(
        "/auth/verify?redirect=1", headers=caddy("app.example.test", "/x?y=1"),
        follow_redirects=False,
    )
    assert r.status_code == 302
    assert r.headers["location"] == (
        f"{PUBLIC_URL}/login?next=" + quote("https://app.example.test/x?y=1", safe="")
    )
    assert r.headers["cache-control"] == "no-store"


def test_public_paths_let_anonymous_callers_through_without_identity(client: TestClient) -> None:
    for headers in (nginx("https://app.example.test/public/a.css"),
                    caddy("app.example.test", "/public/a.css")):  # fmt: skip
        r = client.get("/auth/verify", headers=headers)
        assert r.status_code == 200
        # All present and empty: a proxy copying them must not keep a client's own.
        sent = {k: v for k, v in r.headers.items() if k.startswith("x-auth-")}
        assert sent == dict.fromkeys(("x-auth-user-id", "x-auth-email", "x-auth-email*",
                                      "x-auth-roles"), "")  # fmt: skip
    # A traversal out of the public prefix is not public.
    r = client.get("/auth/verify", headers=caddy("app.example.test", "/public/%2e%2e/admin"))
    assert r.status_code == 401


def test_signed_in_callers_get_identity_headers(client: TestClient) -> None:
    sign_in(client)
    r = client.get("/auth/verify", headers=nginx("https://app.example.test/"))
    assert r.status_code == 200
    assert r.headers["x-auth-email"] == "ada@example.com"
    assert r.headers["x-auth-user-id"]
    assert r.headers["x-auth-roles"] == ""
    assert r.headers["cache-control"] == "no-store"
    assert "Cookie" in r.headers["vary"] and "Authorization" in r.headers["vary"]


def test_rules_deny_roles_and_mfa(client: TestClient) -> None:
    sign_in(client)
    for url in ("https://app.example.test/admin", "https://app.example.test/admin/x",
                "https://app.example.test/vault", "https://b.example.test/closed/x"):  # fmt: skip
        r = client.get("/auth/verify", headers=nginx(url))
        assert r.status_code == 403, url
        assert r.json()["error"] == "forbidden"
    # The mfa refusal says why: a password-only login has no second factor.
    r = client.get("/auth/verify", headers=nginx("https://app.example.test/vault"))
    assert "second factor" in r.json()["detail"]
    # "deny" is for everyone, signed in or not.
    client.cookies.clear()
    assert client.get("/auth/verify", headers=nginx("https://x.example.test/closed")).status_code \
        == 403  # fmt: skip


def test_legacy_role_parameter_still_applies(tmp_path: Path) -> None:
    """A direct caller (not a proxy) asking about itself, as before rules existed."""
    with make(tmp_path, peer=("203.0.113.9", 5000)) as c:
        sign_in(c)
        assert c.get("/auth/verify?role=admin").status_code == 403
        assert c.get("/auth/verify").status_code == 200


def test_forwarded_headers_from_an_untrusted_peer_are_refused(tmp_path: Path) -> None:
    with make(tmp_path, peer=("203.0.113.9", 5000)) as c:
        # A client asking directly, claiming a public URL, gets no pass.
        r = c.get("/auth/verify", headers=caddy("app.example.test", "/public/x"))
        assert r.status_code == 400
        r = c.get("/auth/verify", headers=nginx("https://app.example.test/public/x"))
        assert r.status_code == 400
        assert c.get("/auth/verify").status_code == 401  # plain use is unchanged


@pytest.mark.parametrize(
    "headers",
    [
        {"x-original-url": "https://user@app.example.test/"},
        {"x-original-url": "https://app.example.test/\u00e9"},
        {"x-forwarded-host": "app.example.test", "x-forwarded-uri": "/%ff"},
        {"x-forwarded-host": "app.example.test"},
    ],
)
def test_malformed_forwarding_is_a_400_not_a_500(
    client: TestClient, headers: dict[str, str]
) -> None:
    raw = [(k.encode(), v.encode("utf-8")) for k, v in headers.items()]
    r = client.get("/auth/verify", headers=raw)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


def test_redirect_parameter_is_validated(client: TestClient) -> None:
    assert client.get("/auth/verify?redirect=yes").status_code == 400


def test_an_email_outside_latin_1_is_answered(client: TestClient) -> None:
    email = "用户@例子.example"  # not Latin-1: a raw header would be a 500
    sign_in(client, email)
    r = client.get("/auth/verify", headers=nginx("https://app.example.test/"))
    assert r.status_code == 200
    raw = dict(r.headers.raw)
    raw[b"x-auth-email"].decode("ascii")
    assert unquote(r.headers["x-auth-email"]) == email
    assert r.headers["x-auth-email*"] == "UTF-8''" + r.headers["x-auth-email"]


def test_a_cached_answer_is_private_and_only_ever_a_200(tmp_path: Path) -> None:
    with make(tmp_path, forward_auth_cache=5) as c:
        r = c.get("/auth/verify", headers=nginx("https://app.example.test/"))
        assert (r.status_code, r.headers["cache-control"]) == (401, "no-store")
        sign_in(c)
        r = c.get("/auth/verify", headers=nginx("https://app.example.test/"))
        assert (r.status_code, r.headers["cache-control"]) == (200, "private, max-age=5")
        assert "Cookie" in r.headers["vary"] and "X-Original-URL" in r.headers["vary"]
        r = c.get("/auth/verify", headers=nginx("https://app.example.test/admin"))
        assert (r.status_code, r.headers["cache-control"]) == (403, "no-store")


def test_login_returns_to_an_app_host_and_nowhere_else(client: TestClient) -> None:
    client.post("/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
    for target, expected in (
        ("https://app.example.test/reports?y=1", "https://app.example.test/reports?y=1"),
        ("https://evil.example/", "/account"),
        ("https://app.example.test@evil.example/", "/account"),
        ("//evil.example", "/account"),
    ):
        page = client.get("/login", params={"next": target})
        assert f'name="next" value="{expected}"'.replace("&", "&amp;") in page.text
        client.cookies.clear()
        r = client.post(
            "/login", data={"email": "ada@example.com", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )  # fmt: skip
        assert r.status_code == 303
        assert r.headers["location"] == expected


def test_hsts_only_over_https(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", trusted_proxies=("127.0.0.1",))
    with TestClient(create_app(settings), base_url="http://testserver", client=PROXY) as c:
        assert "strict-transport-security" not in c.get("/healthz").headers
        # Behind a trusted proxy that terminated TLS, the client's scheme counts.
        r = c.get("/healthz", headers={"x-forwarded-proto": "https"})
        assert r.headers["strict-transport-security"].startswith("max-age=")
    with TestClient(create_app(settings), base_url="https://testserver", client=PROXY) as c:
        assert "strict-transport-security" in c.get("/healthz").headers
    with TestClient(
        create_app(settings), base_url="http://testserver", client=("198.51.100.1", 1)
    ) as c:
        # An untrusted client cannot talk us into it (or out of plain http).
        r = c.get("/healthz", headers={"x-forwarded-proto": "https"})
        assert "strict-transport-security" not in r.headers


def test_cookie_domain_mode_shares_the_session_across_subdomains(tmp_path: Path) -> None:
    with make(tmp_path, cookie_domain="example.test") as c:
        c.post("/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
        r = c.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert r.status_code == 200
        cookies = r.headers.get_list("set-cookie")
        [session] = [h for h in cookies if h.startswith("__Secure-gatepass=")]
        [csrf] = [h for h in cookies if h.startswith("__Secure-gatepass-csrf=")]
        for header in (session, csrf):
            assert "Domain=example.test" in header and "Secure" in header
            assert "SameSite=Lax" in header
        assert "HttpOnly" in session and "HttpOnly" not in csrf
        assert not any(h.startswith("__Host-gatepass") for h in cookies)
        # The cookie an app subdomain's browser sends is what the proxy forwards.
        value = session.split(";", 1)[0]
        c.cookies.clear()
        r = c.get("/auth/verify", headers={**nginx("https://app.example.test/"), "cookie": value})
        assert r.status_code == 200 and r.headers["x-auth-email"] == "ada@example.com"
        r = c.post("/auth/logout", headers={"cookie": value})
        assert r.status_code == 204
        r = c.get("/auth/verify", headers={**nginx("https://app.example.test/"), "cookie": value})
        assert r.status_code == 401


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cookie_domain": "example.org"}, "GATEPASS_COOKIE_DOMAIN"),
        ({"cookie_domain": "test"}, "GATEPASS_COOKIE_DOMAIN"),
        ({"tls_cert": "/nonexistent.pem"}, "go together"),
        ({"tls_cert": "/nonexistent.pem", "tls_key": "/nonexistent.key"}, "no such file"),
        ({"access_rules": "/nonexistent.toml"}, "no such file"),
        ({"forward_auth_cache": 3600}, "GATEPASS_FORWARD_AUTH_CACHE"),
    ],
)
def test_bad_settings_are_refused_at_start_up(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings(data_dir=tmp_path, public_url=PUBLIC_URL, **overrides)


def test_tls_makes_the_default_public_url_https(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    settings = Settings(data_dir=tmp_path, tls_cert=str(cert), tls_key=str(key), port=8443)
    assert settings.public_url == "https://127.0.0.1:8443"


def test_login_page_lets_its_form_redirect_only_to_the_vetted_app(client: TestClient) -> None:
    """CSP form-action also governs the redirect after the post: the page
    names the app's origin when (and only when) next is an allowed app URL."""
    csp = client.get("/login", params={"next": "https://app.example.test:8443/x"}).headers[
        "content-security-policy"
    ]
    assert "form-action 'self' https://app.example.test:8443;" in csp
    for target in ("/account", "https://evil.example/", "https://app.example.test;x@evil/"):
        csp = client.get("/login", params={"next": target}).headers["content-security-policy"]
        assert "form-action 'self';" in csp, target


def test_a_trusted_proxy_that_does_not_say_what_it_asks_about_is_refused(
    client: TestClient,
) -> None:
    """Otherwise every deny rule would be skipped for a misconfigured proxy."""
    sign_in(client)
    assert client.get("/auth/verify").status_code == 400


def test_without_rules_a_bare_question_from_a_proxy_still_works(tmp_path: Path) -> None:
    with make(tmp_path, access_rules="") as c:
        sign_in(c)
        assert c.get("/auth/verify").status_code == 200
