"""Host names and host patterns: normalising, validating, matching, table-driven."""

from __future__ import annotations

import pytest

from gatepass.hostnames import host_matches, normalize_host, validate_pattern


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("app.example.test", "app.example.test"),
        ("APP.Example.TEST", "app.example.test"),
        ("app.example.test:8443", "app.example.test"),
        ("app.example.test:0", "app.example.test"),
        ("app.example.test:65535", "app.example.test"),
        ("app.example.test.", "app.example.test"),
        ("app.example.test.:80", "app.example.test"),
        ("localhost", "localhost"),
        ("a", "a"),
        ("a-b.c", "a-b.c"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:80", "192.0.2.1"),
        ("[::1]", "::1"),
        ("[::1]:8080", "::1"),
        ("[2001:DB8::0:1]", "2001:db8::1"),
        ("[2001:db8::1]:65536", "2001:db8::1"),  # the bracket form checks digits only
        ("a" * 63 + ".test", "a" * 63 + ".test"),
        (".".join(["a" * 63] * 3) + "." + "a" * 61, ".".join(["a" * 63] * 3) + "." + "a" * 61),
    ],
)
def test_valid_hosts_are_normalised(text: str, host: str) -> None:
    assert normalize_host(text) == host


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a" * 261,
        "bücher.example",
        "\u212aelvin.example.test",  # KELVIN SIGN: lower() makes it an ASCII "k"
        "[::\u212a]",
        "app.example.test:",
        "app.example.test:http",
        "app.example.test:65536",
        "app.example.test:123456",
        "app.example.test:-1",
        "app.example.test:80:80",
        "user@app.example.test",
        "app example.test",
        "app.example.test/",
        "app%2eexample.test",
        "-app.example.test",
        "app-.example.test",
        "app..example.test",
        ".app.example.test",
        "a" * 64 + ".test",
        ".".join(["a" * 63] * 3) + "." + "a" * 62,  # 254 characters
        ".".join(["a" * 63] * 3) + "." + "a" * 62 + ".:80",
        "app_example.test",
        "*.example.test",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[::1]:80x",
        "[::1]:123456",
        "[not-an-address]",
        "[192.0.2.1]",
        "::1",
    ],
)
def test_invalid_hosts_are_none(text: str) -> None:
    assert normalize_host(text) is None


def test_a_long_host_with_a_port_is_judged_by_the_host() -> None:
    host = ".".join(["a" * 63] * 3) + "." + "a" * 61  # 253 characters
    assert normalize_host(host + ":1") == host
    assert normalize_host(host + ":65535") == host  # 259 characters
    assert normalize_host(host + ".:65535") == host  # 260 characters
    assert normalize_host(host + ".:655350") is None  # 261 characters


@pytest.mark.parametrize(
    "pattern",
    ["app.example.test", "APP.example.test", "*.example.test", "*.a.b", "localhost", "192.0.2.1"],
)
def test_valid_patterns(pattern: str) -> None:
    assert validate_pattern(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "a host must be a non-empty string"),
        (7, "non-empty"),
        ("app.example.test:443", "not a host name"),
        ("https://app.example.test", "not a host name"),
        ("*.", "not a host name"),
        ("*", "not a host name"),
        ("**.example.test", "not a host name"),
        ("*example.test", "not a host name"),
        ("app.*.test", "not a host name"),
        ("app.example.test.", "not a host name"),
        ("[::1]", "not a host name"),
        ("*.test", "top-level domain"),
        ("*.TEST", "top-level domain"),
    ],
)
def test_invalid_patterns_say_why(pattern: object, message: str) -> None:
    problem = validate_pattern(pattern)  # type: ignore[arg-type]
    assert problem is not None and message in problem


def test_a_missing_pattern_is_named_so() -> None:
    assert validate_pattern("") == "a host must be a non-empty string"
    assert validate_pattern(None) == "a host must be a non-empty string"  # type: ignore[arg-type]


def test_messages_quote_at_most_80_characters_of_the_pattern() -> None:
    long = "a:" + "b" * 100
    assert validate_pattern(long) == (
        f"{long[:80]!r} is not a host name or '*.domain' pattern (no port, no scheme)"
    )
    assert validate_pattern("*." + "c" * 63) == (
        f"{'*.' + 'c' * 63!r} would match every subdomain of a top-level domain"
    )


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("app.example.test", "app.example.test", True),
        ("APP.example.test", "app.example.test", True),
        ("app.example.test", "evil.app.example.test", False),
        ("app.example.test", "app.example.tes", False),
        ("*.example.test", "a.example.test", True),
        ("*.Example.test", "a.example.test", True),
        ("*.example.test", "a.b.example.test", True),
        ("*.example.test", "example.test", False),
        ("*.example.test", ".example.test", False),
        ("*.example.test", "evilexample.test", False),
        ("*.example.test", "example.test.evil", False),
        ("*.example.test", "a.example.test.evil", False),
    ],
)
def test_host_matches(pattern: str, host: str, matches: bool) -> None:
    assert host_matches(pattern, host) is matches
