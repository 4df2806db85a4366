"""The parsers under TrustedProxies: ports, address length, RFC 7239 quoting.

Each case pins one boundary of a check (found by the mutation run,
tests/mutation): a port of 0 to 65535 in 1 to 5 ASCII digits, at most 64
characters of address, quoted strings that cannot smuggle separators, and a
configuration refused with a message that never echoes more than it must.
"""

from __future__ import annotations

import pytest

from gatepass.clientip import TrustedProxies, _forwarded_for_values, _split_unquoted, parse_ip
from gatepass.errors import ConfigurationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4:0", "1.2.3.4"), ("1.2.3.4:8", "1.2.3.4"), ("1.2.3.4:65535", "1.2.3.4"),
        ("1.2.3.4:00080", "1.2.3.4"), ("[::1]:8", "::1"), ("[::1]:65535", "::1"),
        ("[::1]", "::1"), (" 1.2.3.4 ", "1.2.3.4"),
    ],
)  # fmt: skip
def test_ports_in_range_are_accepted(text: str, expected: str) -> None:
    address = parse_ip(text)
    assert address is not None and str(address) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:000080", "1.2.3.4:123456",
        "1.2.3.4:8a", "1.2.3.4:a", "1.2.3.4:+80", "1.2.3.4:-1", "1.2.3.4: 80", "1.2.3.4:٨٠",
        "1.2.3.4:８０", "[::1]:", "[::1]x80", "[::1]x", "[::1]:65536", "[::1]:000080",
        "[::1]:8a", "[::1]]", "[::1]:80]", "[1.2.3.4]", "[1.2.3.4]:80", "[::1", "", "   ",
    ],
)  # fmt: skip
def test_bad_ports_and_brackets_are_refused(text: str) -> None:
    assert parse_ip(text) is None


def test_address_length_limit_is_64_characters() -> None:
    at_limit = "fe80::1%" + "a" * 56  # a scoped address: valid at any length
    assert len(at_limit) == 64
    assert str(parse_ip(at_limit)) == "fe80::1"
    assert parse_ip(at_limit + "a") is None
    assert parse_ip("  " + at_limit + "  ") is not None  # surrounding blanks do not count


@pytest.mark.parametrize(
    ("header", "values"),
    [
        ("for=1.2.3.4", ["1.2.3.4"]),
        ('for="1.2.3.4"', ["1.2.3.4"]),
        ('for=""', [""]),
        ('for="', [None]),
        ('for="1.2.3.4', [None]),
        ('for=1.2.3.4"', [None]),
        ('for="1.2\\.3.4"', [None]),
        ('for="a"b"', [None]),
        ("for=a=b", ["a=b"]),
        (" For = 1.2.3.4 ", ["1.2.3.4"]),
        ("proto=https", [None]),
        ("proto=https;for=1.2.3.4;by=x", ["1.2.3.4"]),
        ("for=1.1.1.1;for=2.2.2.2", ["1.1.1.1"]),
        ("forx=1.2.3.4", [None]),
        ("for", [None]),
        ("for=a, by=b, for=c", ["a", None, "c"]),
        ('for="x, for=6.6.6.6", for=c', ["x, for=6.6.6.6", "c"]),
    ],
)
def test_forwarded_for_values(header: str, values: list[str | None]) -> None:
    assert _forwarded_for_values(header) == values


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a,b,,c", ["a", "b", "", "c"]),
        ('a,"b,c",d', ["a", '"b,c"', "d"]),
        ('"a\\",b",c', ['"a\\",b"', "c"]),  # an escaped quote does not close the string
        ('"a\\\\",b', ['"a\\\\"', "b"]),  # an escaped backslash does not escape the quote
        ('x\\,y', ["x\\", "y"]),  # escapes only exist inside quotes
        ('"a",b,"c,d",e', ['"a"', "b", '"c,d"', "e"]),
        ('"unterminated,x', ['"unterminated,x']),
    ],
)
def test_split_unquoted(text: str, parts: list[str]) -> None:
    assert _split_unquoted(text, ",") == parts


def test_configuration_errors_say_what_is_wrong() -> None:
    cases: list[tuple[object, str]] = [
        ("10.0.0.0/8", "Trusted proxies must be a list of addresses, not a string."),
        (b"10.0.0.0/8", "Trusted proxies must be a list of addresses, not a string."),
        ([None], "Each trusted proxy must be an address or a CIDR string."),
        (["0.0.0.0/0"], "Trusting '0.0.0.0/0' would trust every client."),
        (["10.0.0.1/8"],
         "Invalid trusted proxy '10.0.0.1/8': expected an IPv4/IPv6 address or CIDR."),
    ]  # fmt: skip
    for proxies, message in cases:
        with pytest.raises(ConfigurationError) as info:
            TrustedProxies(proxies)  # type: ignore[arg-type]
        assert str(info.value) == message
    with pytest.raises(ConfigurationError) as info:
        TrustedProxies([], header="X-Forwarded-For")  # type: ignore[arg-type]
    assert str(info.value) == "The forwarding header must be 'x-forwarded-for' or 'forwarded'."


def test_an_invalid_entry_is_quoted_64_characters_at_most() -> None:
    entry = "x" * 63 + "YZ"
    with pytest.raises(ConfigurationError) as info:
        TrustedProxies([entry])
    assert repr(entry[:64]) in str(info.value)
    assert "Z" not in str(info.value)


def test_entries_are_stripped_and_both_families_kept() -> None:
    proxies = TrustedProxies([" 10.0.0.0/8 ", "2001:db8::/32\n"], header="forwarded")
    assert proxies.header == "forwarded"
    assert proxies.client_ip("10.0.0.2", None, "for=1.2.3.4") == "1.2.3.4"
    assert proxies.client_ip("2001:db8::2", None, "for=1.2.3.4") == "1.2.3.4"
    assert proxies.client_ip("2001:db9::2", None, "for=1.2.3.4") == "2001:db9::2"
    assert proxies.client_ip("11.0.0.2", None, "for=1.2.3.4") == "11.0.0.2"


def test_header_length_limit_is_inclusive() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    header = " " * (8192 - len("1.2.3.4")) + "1.2.3.4"
    assert len(header) == 8192
    assert proxies.client_ip("10.0.0.2", header) == "1.2.3.4"
    assert proxies.client_ip("10.0.0.2", " " + header) == "10.0.0.2"
