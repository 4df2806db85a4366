"""Safe ``next`` redirects (SECURITY.md 28), table-driven as Django does."""

from __future__ import annotations

import pytest

from gatepass.redirects import safe_next, safe_next_url

BAD = [
    None, "", "//evil.example", "///evil.example", "////evil.example", "/\\evil.example",
    "\\\\evil.example", "\\/evil.example", "http://evil.example", "https://evil.example/x",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "evil.example",
    "/%2F%2Fevil.example", "/%2f%2fevil.example", "%2F%2Fevil.example", "/%5Cevil.example",
    "/%252F%252Fevil.example", "/%25252F%25252Fevil.example", "/\tevil", "/\nSet-Cookie:x=1",
    "/%0d%0aSet-Cookie:x=1", "/ /evil.example", "//user:pass@evil.example",
    "http://127.0.0.1@evil.example", "/\x00", "//evil.example/%2e%2e", "\x01/account",
    " /account", "/" + "a" * 3000, "https:evil.example", "/\u3002evil", "ftp://x",
]  # fmt: skip

GOOD = [
    "/", "/account", "/account?tab=sessions", "/a/b/c#frag", "/path%20with%20space",
    "/search?q=%2F%2Fliteral", "/caf%C3%A9",
]  # fmt: skip


@pytest.mark.parametrize("value", BAD)
def test_bad_targets_fall_back_to_default(value: str | None) -> None:
    assert safe_next(value) == "/account"


@pytest.mark.parametrize("value", GOOD)
def test_good_local_paths_are_kept(value: str) -> None:
    assert safe_next(value) == value


# Absolute ``next`` URLs (forward auth's way back), allowed only on hosts the
# access rules name: every trick above still falls back, and so does every
# way of dressing another host up as an allowed one.
ALLOWED_HOSTS = ("app.example.test", "*.apps.example.test")

BAD_ABSOLUTE = [
    "https://app.example.test.evil.example/", "https://evil.example#@app.example.test/",
    "https://evil.example?@app.example.test", "https://app.example.test@evil.example/",
    "https://app.example.test:443@evil.example/", "https://evil.example\\@app.example.test/",
    "https://evil.example\\app.example.test", "https://app.example.test%2F@evil.example",
    "https://app%2eexample.test/", "http://app.example.test/", "https://app.example.test:0x50/",
    "https://app.example.test:99999/", "https:///app.example.test", "https:app.example.test/",
    "https:/app.example.test/", "https://example.test/", "https://apps.example.test/",
    "https://x.apps.example.test.evil.example/", "https://app.example.test\t/",
    "https://app.example.test /", "javascript://app.example.test/%0aalert(1)",
    "https://\u0430pp.example.test/", "https://app.example.test\u3002evil.example/",
    "HTTPS://evil.example/", "https://[::1]/", "https://127.0.0.1/", " https://app.example.test/",
    "https://app.example.test/\r\nSet-Cookie:x=1", "ws://app.example.test/",
    "https://app.example.test/" + "a" * 3000,
]  # fmt: skip

GOOD_ABSOLUTE = [
    "https://app.example.test", "https://app.example.test/", "https://APP.example.test/x",
    "https://app.example.test:8443/x?y=1#f", "https://a.apps.example.test/x",
    "https://a.b.apps.example.test/%2F%2Fevil.example",
]  # fmt: skip


@pytest.mark.parametrize("value", BAD + BAD_ABSOLUTE)
def test_absolute_targets_need_an_allowed_host(value: str | None) -> None:
    assert safe_next_url(value, ALLOWED_HOSTS) == "/account"


@pytest.mark.parametrize("value", GOOD + GOOD_ABSOLUTE)
def test_allowed_absolute_targets_and_local_paths_are_kept(value: str) -> None:
    assert safe_next_url(value, ALLOWED_HOSTS) == value


def test_no_allowed_hosts_means_local_paths_only() -> None:
    assert safe_next_url("https://app.example.test/", ()) == "/account"
    assert safe_next_url("/account?x", ()) == "/account?x"


def test_http_only_when_asked() -> None:
    assert safe_next_url("http://app.example.test/", ALLOWED_HOSTS, schemes=("https", "http")) \
        == "http://app.example.test/"  # fmt: skip


def test_length_limit_is_inclusive() -> None:
    at_limit = "/" + "a" * 2047
    assert safe_next(at_limit) == at_limit
    assert safe_next(at_limit + "a") == "/account"


def test_decoding_stops_after_three_layers() -> None:
    # "%25" decodes to "%": each extra "25" adds one layer of encoding.
    three = "/a%252541"  # -> /a%2541 -> /a%41 -> /aA
    four = "/a%25252541"
    assert safe_next(three) == three
    assert safe_next(four) == "/account"


def test_the_default_is_the_callers() -> None:
    assert safe_next("//evil.example", default="/home") == "/home"
    assert safe_next(None, default="/home") == "/home"
    assert safe_next("/next", default="/home") == "/next"


def test_absolute_next_edges() -> None:
    hosts = ("app.example.test",)
    # The default is the caller's, for local and absolute refusals alike.
    assert safe_next_url("//evil.example", hosts, default="/home") == "/home"
    assert safe_next_url("https://evil.example/", hosts, default="/home") == "/home"
    # "://" later in the URL is not the scheme separator.
    kept = "https://app.example.test/x?u=https://evil.example"
    assert safe_next_url(kept, hosts) == kept
    # The length limit is inclusive, for absolute URLs too.
    prefix = "https://app.example.test/"
    at_limit = prefix + "a" * (2048 - len(prefix))
    assert safe_next_url(at_limit, hosts) == at_limit
    assert safe_next_url(at_limit + "a", hosts) == "/account"
    # A host spelled another way than the one checked (trailing dot), and a
    # backslash anywhere (browsers read it as a slash): refused.
    for value in ("https://app.example.test./", "https://app.example.test/\\evil.example",
                  "https://app.example.test/a\\b"):  # fmt: skip
        assert safe_next_url(value, hosts) == "/account", value
