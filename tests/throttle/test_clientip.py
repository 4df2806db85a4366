"""TrustedProxies: who the client is, table-driven, spoofing attempts first."""

from __future__ import annotations

import pytest

from gatepass.clientip import TrustedProxies, parse_ip
from gatepass.errors import ConfigurationError


# Built inside each test, never at import: the mutation run (tests/mutation)
# swaps in mutated code only while a test runs, so an object built at import
# would hide every mutant of the constructor.
def proxies() -> TrustedProxies:
    return TrustedProxies(["10.0.0.0/8", "192.0.2.1", "2001:db8:ffff::/48", "::1"])


def forwarded_proxies() -> TrustedProxies:
    return TrustedProxies(["10.0.0.0/8", "2001:db8:ffff::/48"], header="forwarded")


# (peer, X-Forwarded-For, expected client)
XFF_CASES = [
    # Untrusted peers are the client, whatever they claim.
    ("203.0.113.5", None, "203.0.113.5"),
    ("203.0.113.5", "1.2.3.4", "203.0.113.5"),
    ("203.0.113.5", "10.0.0.1", "203.0.113.5"),
    ("203.0.113.5", "1.2.3.4, 10.0.0.2", "203.0.113.5"),
    # A trusted proxy: the rightmost untrusted entry; the client's own
    # leftmost claim is never reached.
    ("10.0.0.2", "198.51.100.9", "198.51.100.9"),
    ("10.0.0.2", "6.6.6.6, 198.51.100.9", "198.51.100.9"),
    ("10.0.0.2", "6.6.6.6, 198.51.100.9, 10.1.1.1, 192.0.2.1", "198.51.100.9"),
    ("10.0.0.2", "6.6.6.6,198.51.100.9", "198.51.100.9"),
    # No header, empty header, all hops trusted: the last trusted hop.
    ("10.0.0.2", None, "10.0.0.2"),
    ("10.0.0.2", "", "10.0.0.2"),
    ("10.0.0.2", "10.9.9.9, 10.0.0.7", "10.9.9.9"),
    # Garbage stops the walk at the last trusted hop; never returned.
    ("10.0.0.2", "unknown", "10.0.0.2"),
    ("10.0.0.2", "198.51.100.9, garbage", "10.0.0.2"),
    ("10.0.0.2", "6.6.6.6, 10.0.0.9, <script>", "10.0.0.2"),
    ("10.0.0.2", "198.51.100.9, , 10.0.0.9", "10.0.0.9"),
    ("10.0.0.2", "1.2.3.4\x00, 198.51.100.9", "198.51.100.9"),
    ("10.0.0.2", "999.1.1.1", "10.0.0.2"),
    ("10.0.0.2", "1.2.3.4:99999", "10.0.0.2"),
    ("10.0.0.2", "1.2.3.4:80", "1.2.3.4"),
    ("10.0.0.2", "x" * 10_000, "10.0.0.2"),
    # Normalised spellings: one client, one string.
    ("10.0.0.2", "2001:DB8:0:0::1", "2001:db8::1"),
    ("10.0.0.2", "[2001:db8::1]:8080", "2001:db8::1"),
    ("10.0.0.2", "::ffff:198.51.100.9", "198.51.100.9"),
    ("10.0.0.2", "fe80::1%eth0", "fe80::1"),
    ("::ffff:10.0.0.2", "198.51.100.9", "198.51.100.9"),
    ("::1", "2001:db8::5", "2001:db8::5"),
    ("2001:db8:ffff:1::2", "2001:db8::5, 2001:db8:ffff::9", "2001:db8::5"),
    # No usable peer: unknown client, whatever the headers say.
    (None, "1.2.3.4", None),
    ("", "1.2.3.4", None),
    ("not-an-ip", "1.2.3.4", None),
    ("/run/app.sock", "1.2.3.4", None),
]


@pytest.mark.parametrize(("peer", "xff", "expected"), XFF_CASES)
def test_x_forwarded_for(peer: str | None, xff: str | None, expected: str | None) -> None:
    assert proxies().client_ip(peer, xff) == expected
    # The Forwarded header is not the configured one: never read.
    assert proxies().client_ip(peer, xff, "for=6.6.6.6") == expected


# (peer, Forwarded, expected client)
FORWARDED_CASES = [
    ("10.0.0.2", "for=198.51.100.9", "198.51.100.9"),
    ("10.0.0.2", "for=6.6.6.6, for=198.51.100.9;proto=https", "198.51.100.9"),
    ("10.0.0.2", 'for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
    ("10.0.0.2", 'For="[2001:db8:cafe::17]"', "2001:db8:cafe::17"),
    ("10.0.0.2", "proto=https;for=198.51.100.9;by=10.0.0.2", "198.51.100.9"),
    ("10.0.0.2", "for=198.51.100.9, for=10.0.0.5", "198.51.100.9"),
    ("10.0.0.2", "for=198.51.100.9, for=[2001:db8:ffff::1]", "198.51.100.9"),
    # Obfuscated and unknown identifiers, missing for=, broken quoting.
    ("10.0.0.2", "for=unknown", "10.0.0.2"),
    ("10.0.0.2", "for=_hidden", "10.0.0.2"),
    ("10.0.0.2", "proto=https", "10.0.0.2"),
    ("10.0.0.2", 'for="198.51.100.9', "10.0.0.2"),
    ("10.0.0.2", 'for="1.2.3.4\\"', "10.0.0.2"),
    ("10.0.0.2", "for=[2001:db8::1", "10.0.0.2"),
    ("10.0.0.2", "for=[1.2.3.4]", "10.0.0.2"),
    # A quoted value cannot smuggle an element past the splitter.
    ("10.0.0.2", 'for="6.6.6.6, for=7.7.7.7", for=198.51.100.9', "198.51.100.9"),
    ("10.0.0.2", 'by="x, for=6.6.6.6"', "10.0.0.2"),
    # Untrusted peer: the header is ignored.
    ("203.0.113.5", "for=198.51.100.9", "203.0.113.5"),
]


@pytest.mark.parametrize(("peer", "forwarded", "expected"), FORWARDED_CASES)
def test_forwarded(peer: str, forwarded: str, expected: str) -> None:
    assert forwarded_proxies().client_ip(peer, "6.6.6.6", forwarded) == expected


def test_rotating_x_forwarded_for_from_an_untrusted_peer_is_one_client() -> None:
    seen = {proxies().client_ip("203.0.113.5", f"198.51.100.{n}") for n in range(50)}
    assert seen == {"203.0.113.5"}


def test_results_are_always_valid_normalised_addresses() -> None:
    for peer, xff, expected in XFF_CASES:
        got = proxies().client_ip(peer, xff)
        if got is not None:
            assert str(parse_ip(got)) == got == expected


@pytest.mark.parametrize(
    "proxies",
    [
        ["10.0.0.0/33"],
        ["10.0.0.1/8"],  # host bits set: a typo, not a wish
        ["not-an-ip"],
        [""],
        ["0.0.0.0/0"],  # would trust every client
        ["::/0"],
        [None],
        "10.0.0.0/8",  # a string, not a list of them
    ],
)
def test_invalid_configuration_is_refused(proxies: object) -> None:
    with pytest.raises(ConfigurationError):
        TrustedProxies(proxies)  # type: ignore[arg-type]


def test_unknown_header_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        TrustedProxies([], header="x-real-ip")  # type: ignore[arg-type]


def test_no_trusted_proxies_means_the_peer_always() -> None:
    assert TrustedProxies().client_ip("10.0.0.2", "1.2.3.4") == "10.0.0.2"
