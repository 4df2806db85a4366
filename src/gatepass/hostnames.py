"""Host names and host patterns: normalising and matching, nothing else.

Pure functions shared by the forward-auth rules and the ``next`` redirect
check, so both agree on what "a host the rules name" means.  A pattern is an
exact host (``app.example.test``) or a wildcard for its subdomains
(``*.example.test``: ``a.example.test`` and ``a.b.example.test``, never
``example.test`` itself nor ``evilexample.test``).
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT_RE = re.compile(r"[0-9]{1,5}")


def normalize_host(text: str) -> str | None:
    """The lower-case host name of ``host`` or ``host:port``, or None if invalid.

    IPv6 literals come back without brackets.  No percent-encoding, userinfo,
    spaces or Unicode (IDNs arrive in their ASCII ``xn--`` form from proxies).
    """
    if not text or len(text) > 260 or not text.isascii():
        return None
    text = text.lower()
    if text.startswith("["):
        inner, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and _PORT_RE.fullmatch(rest[1:]))):
            return None
        try:
            return str(ipaddress.IPv6Address(inner))
        except ValueError:
            return None
    host, colon, port = text.partition(":")
    if colon and not (_PORT_RE.fullmatch(port) and int(port) <= 65535):
        return None
    host = host.removesuffix(".")
    if len(host) > 253 or not _HOST_RE.fullmatch(host):
        return None
    return host


def validate_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid host pattern (None when it is)."""
    if not isinstance(pattern, str) or not pattern:
        return "a host must be a non-empty string"
    base = pattern[2:] if pattern.startswith("*.") else pattern
    if normalize_host(base) != base.lower() or ":" in base:
        return f"{pattern[:80]!r} is not a host name or '*.domain' pattern (no port, no scheme)"
    if pattern.startswith("*.") and "." not in base:
        return f"{pattern[:80]!r} would match every subdomain of a top-level domain"
    return None


def host_matches(pattern: str, host: str) -> bool:
    """Whether the normalised ``host`` is named by ``pattern`` (see the module docstring)."""
    pattern = pattern.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern
