"""The headers a forward-auth answer carries: identity, and whether a proxy may cache it.

HTTP header values are bytes that servers read as Latin-1, and many proxies
and apps mangle or refuse anything outside ASCII, so identity values go out
as ASCII only:

* A value that is printable ASCII is sent as is.
* Otherwise ``X-Auth-Email`` carries the UTF-8 bytes percent-encoded (an
  ASCII string, readable by any app with one ``unquote``), and
  ``X-Auth-Email*`` carries the RFC 8187 ext-value ``UTF-8''<pct-encoded>``,
  which says so unambiguously.  ``%`` itself is then encoded too, so the
  percent-encoded form always decodes back to the exact address.

The cache headers let a proxy keep a 200 for a few seconds without ever
serving it to anyone else: ``private`` keeps shared caches away unless an
operator opts in with a per-credential cache key, and ``Vary`` names every
request header the answer depends on.  Anything but a 200 is ``no-store``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

_PLAIN = re.compile(r"[\x20-\x7e]*")

#: Every request header a verify answer depends on.
VARY = (
    "Cookie, Authorization, X-Original-URL, X-Original-Method, "
    "X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Uri, X-Forwarded-Method"
)

IDENTITY_HEADERS = ("x-auth-user-id", "x-auth-email", "x-auth-email*", "x-auth-roles")


def encode_value(name: str, value: str) -> dict[str, str]:
    """``{name: ascii}`` and, for non-ASCII values, ``{name*: RFC 8187}`` too."""
    if _PLAIN.fullmatch(value) and "%" not in value:
        return {name: value}
    # RFC 8187 attr-char only ("@" is not one), so both headers share one form.
    encoded = quote(value, safe="!#$&+^`|")
    return {name: encoded, f"{name}*": f"UTF-8''{encoded}"}


def identity_headers(user_id: str, email: str, roles: Iterable[str]) -> dict[str, str]:
    headers = {
        **encode_value("x-auth-user-id", user_id),
        **encode_value("x-auth-email", email),
        **encode_value("x-auth-roles", ",".join(sorted(roles))),
    }
    return headers


def cache_headers(max_age: int, *, cacheable: bool) -> dict[str, str]:
    """``Cache-Control`` and ``Vary`` for an answer (see the module docstring)."""
    if cacheable and max_age > 0:
        return {"cache-control": f"private, max-age={max_age}", "vary": VARY}
    return {"cache-control": "no-store", "vary": VARY}
