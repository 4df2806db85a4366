"""Which address a request really came from, given the proxies we trust.

A client can write anything into ``X-Forwarded-For`` or ``Forwarded``; only
the entries appended by proxies *we* run are worth anything.  So:

* If the TCP peer is not a trusted proxy, the peer is the client and the
  headers are ignored entirely (a client talking to us directly can claim any
  address in them, and would get a fresh throttle bucket per claim).
* If the peer is a trusted proxy, walk the chosen header from the right (the
  nearest hop first), skipping trusted proxies; the first untrusted address is
  the client.  Everything to its left was written by the client or by proxies
  we do not control, and is never read.
* An entry that is not an IP address (``unknown``, an obfuscated ``_node``,
  garbage, a quoting trick) ends the walk: the answer is the last trusted hop
  we reached, i.e. that proxy's own view.  Conservative: such clients share
  the proxy's bucket rather than choosing their own.

Only one header is read, chosen at configuration: a proxy that appends to
``X-Forwarded-For`` usually passes a client's ``Forwarded`` header through
untouched (and the other way round), so reading "whichever is present" would
let the client pick the header we believe.

Results are normalised strings from :mod:`ipaddress` (``2001:db8::1``, never
``2001:DB8:0::1``; IPv4-mapped IPv6 becomes plain IPv4; zone ids dropped),
so one client cannot appear under several spellings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal, TypeAlias

from gatepass.errors import ConfigurationError

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Header = Literal["x-forwarded-for", "forwarded"]

#: Headers longer than this are not parsed at all (the peer is used as if the
#: walk stopped at once); no proxy chain legitimately comes near it.
MAX_HEADER_LENGTH = 8192


def parse_ip(text: str) -> IPAddress | None:
    """A normalised address, or None; never raises.

    Accepts what proxies actually write: a bare address, ``1.2.3.4:port``,
    ``[v6]`` and ``[v6]:port``.
    """
    text = text.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not _is_port(rest)):
            return None
        text = host
        if ":" not in text:  # [1.2.3.4] is not a thing
            return None
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not _is_port(":" + port):
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            # "fe80::1%eth0" and "fe80::1%x" must not be two clients.
            return ipaddress.IPv6Address(int(address))
    return address


def _is_port(text: str) -> bool:
    digits = text[1:]
    if text[:1] != ":" or not (0 < len(digits) <= 5 and digits.isascii() and digits.isdigit()):
        return False
    return int(digits) <= 65535


class TrustedProxies:
    """The proxies in front of us, validated once; see the module docstring."""

    def __init__(self, proxies: Iterable[str] = (), *, header: Header = "x-forwarded-for") -> None:
        if isinstance(proxies, str | bytes):
            raise ConfigurationError("Trusted proxies must be a list of addresses, not a string.")
        if header not in ("x-forwarded-for", "forwarded"):
            raise ConfigurationError(
                "The forwarding header must be 'x-forwarded-for' or 'forwarded'."
            )
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in proxies:
            if not isinstance(entry, str):
                raise ConfigurationError("Each trusted proxy must be an address or a CIDR string.")
            try:
                # strict: "10.0.0.1/8" is more likely a typo than a wish.
                network = ipaddress.ip_network(entry.strip(), strict=True)
            except ValueError:
                raise ConfigurationError(
                    f"Invalid trusted proxy {entry[:64]!r}: expected an IPv4/IPv6 address or CIDR."
                ) from None
            if network.prefixlen == 0:
                # Trusting every peer lets every client choose its address.
                raise ConfigurationError(f"Trusting {entry!r} would trust every client.")
            networks.append(network)
        self.header: Header = header
        self._v4 = tuple(n for n in networks if isinstance(n, ipaddress.IPv4Network))
        self._v6 = tuple(n for n in networks if isinstance(n, ipaddress.IPv6Network))

    def is_trusted(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv4Address):
            return any(address in network for network in self._v4)
        return any(address in network for network in self._v6)

    def client_ip(
        self, peer: str | None, forwarded_for: str | None, forwarded: str | None = None
    ) -> str | None:
        """The client's address, or None when the peer itself is unknown.

        ``forwarded_for`` and ``forwarded`` are the header values, several
        header lines joined with ``,``; only the configured one is read.
        """
        here = parse_ip(peer) if peer is not None else None
        if here is None:
            return None
        if not self.is_trusted(here):
            return str(here)
        raw = forwarded_for if self.header == "x-forwarded-for" else forwarded
        if not raw or len(raw) > MAX_HEADER_LENGTH:
            return str(here)
        entries = raw.split(",") if self.header == "x-forwarded-for" else _forwarded_for_values(raw)
        for entry in reversed(entries):
            hop = parse_ip(entry) if entry is not None else None
            if hop is None:
                break  # the last trusted hop's view stands
            here = hop
            if not self.is_trusted(hop):
                break
        return str(here)


def _forwarded_for_values(raw: str) -> list[str | None]:
    """The ``for=`` value of each RFC 7239 element (None where there is none).

    Splits on ``,`` and ``;`` outside quoted strings, so a quoted value
    cannot smuggle in a separator; the walk never reaches the
    client-written part anyway, but the trusted part must parse right.
    """
    values: list[str | None] = []
    for element in _split_unquoted(raw, ","):
        found: str | None = None
        for pair in _split_unquoted(element, ";"):
            name, equals, value = pair.partition("=")
            if equals and name.strip().lower() == "for":
                found = _unquote(value.strip())
                break
        values.append(found)
    return values


def _split_unquoted(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str | None:
    if not value.startswith('"'):
        return value if '"' not in value else None
    if len(value) < 2 or not value.endswith('"'):
        return None
    inner = value[1:-1]
    # An IP address never needs escapes; anything escaped is not one of ours.
    return None if "\\" in inner or '"' in inner else inner
