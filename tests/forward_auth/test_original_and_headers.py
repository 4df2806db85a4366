"""The original request from proxy headers, path normalisation, identity headers."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from gatepass.errors import InvalidRequest
from gatepass.forward_auth import (
    cache_headers,
    identity_headers,
    normalize_path,
    original_request,
)


def headers(**values: str):  # type: ignore[no-untyped-def]
    table = {k.replace("_", "-").lower(): v for k, v in values.items()}
    return table.get


def test_nginx_style() -> None:
    found = original_request(headers(
        x_original_url="https://App.Example.test:8443/a/b?x=1", x_original_method="post"
    ))  # fmt: skip
    assert found is not None
    assert (found.scheme, found.host, found.path, found.method) == (
        "https", "app.example.test", "/a/b", "POST"
    )
    assert found.url == "https://app.example.test:8443/a/b?x=1"


def test_caddy_and_traefik_style() -> None:
    found = original_request(headers(
        x_forwarded_proto="https", x_forwarded_host="app.example.test",
        x_forwarded_uri="/public/../admin?q", x_forwarded_method="GET",
    ))  # fmt: skip
    assert found is not None
    assert (found.host, found.path) == ("app.example.test", "/admin")
    assert found.target == "/public/../admin?q"


def test_nothing_forwarded() -> None:
    assert original_request(headers()) is None


@pytest.mark.parametrize(
    "sent",
    [
        {"x_original_url": "/relative"},
        {"x_original_url": "ftp://a.example.test/"},
        {"x_original_url": "https://user@a.example.test/"},
        {"x_original_url": "https://a.example.test/ space"},
        {"x_original_url": "https://a.exa%6dple.test/"},
        {"x_original_url": "https://a.example.test//evil"},
        {"x_original_url": "https://a.example.test/caf\u00e9"},
        {"x_original_url": "https://a.example.test/" + "a" * 5000},
        {"x_forwarded_host": "a.example.test"},  # no URI
        {"x_forwarded_host": "a.example.test", "x_forwarded_uri": "x"},
        {"x_forwarded_host": "a.example.test:99999", "x_forwarded_uri": "/"},
        {"x_forwarded_host": "a_b.test", "x_forwarded_uri": "/"},
        {"x_forwarded_host": "a.example.test", "x_forwarded_uri": "/",
         "x_forwarded_proto": "gopher"},
        {"x_forwarded_host": "a.example.test", "x_forwarded_uri": "/",
         "x_forwarded_method": "G ET"},
        {"x_forwarded_host": "a.example.test", "x_forwarded_uri": "/%00"},
        {"x_forwarded_host": "a.example.test", "x_forwarded_uri": "/%5Cadmin"},
        {"x_forwarded_host": "a.example.test", "x_forwarded_uri": "/%ff"},
    ],
)  # fmt: skip
def test_malformed_forwarding_is_refused(sent: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest):
        original_request(headers(**sent))


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/", "/"), ("/a/b", "/a/b"), ("/a/b/", "/a/b/"), ("/a//b", "/a/b"),
        ("/public/../admin", "/admin"), ("/public/%2e%2e/admin", "/admin"),
        ("/public/%2E%2E%2Fadmin", "/admin"), ("/public/..;/admin", "/admin"),
        ("/public;jsessionid=x/", "/public/"), ("/./admin", "/admin"), ("/../../admin", "/admin"),
        ("/a/..", "/"), ("/a/.", "/a/"), ("/public/x?../../admin", "/public/x"),
        ("/public/x#/../admin", "/public/x"), ("/caf%C3%A9", "/café"),
        ("/%2561dmin", "/%61dmin"),  # decoded once, as servers do
    ],
)  # fmt: skip
def test_paths_are_normalised_as_servers_resolve_them(target: str, path: str) -> None:
    assert normalize_path(target) == path


def test_identity_headers_are_ascii_for_any_email() -> None:
    plain = identity_headers("u1", "ada@example.com", ["b", "a"])
    assert plain == {
        "x-auth-user-id": "u1", "x-auth-email": "ada@example.com",
        "x-auth-email*": "UTF-8''ada%40example.com", "x-auth-roles": "a,b",
    }
    for email in ("jürgen@bücher.example", "用户@例子.广告", "a%41@x.test", "zoë\u200b@x.test"):
        sent = identity_headers("u1", email, [])
        for value in sent.values():
            value.encode("ascii")  # no UnicodeEncodeError: safe in any HTTP stack
        assert unquote(sent["x-auth-email"]) == email
        assert sent["x-auth-email*"].startswith("UTF-8''")
        assert unquote(sent["x-auth-email*"].removeprefix("UTF-8''")) == email
        # RFC 8187 attr-char only after the prefix.
        assert all(c.isalnum() or c in "!#$&+-.^_`|~%" for c in sent["x-auth-email*"][7:])


def test_only_a_200_may_be_cached_and_always_per_credential() -> None:
    assert cache_headers(5, cacheable=True)["cache-control"] == "private, max-age=5"
    assert cache_headers(0, cacheable=True)["cache-control"] == "no-store"
    assert cache_headers(5, cacheable=False)["cache-control"] == "no-store"
    vary = cache_headers(5, cacheable=True)["vary"]
    for name in ("Cookie", "Authorization", "X-Original-URL", "X-Forwarded-Uri"):
        assert name in vary
