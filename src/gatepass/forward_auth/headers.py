"""The headers a forward-auth answer carries: identity, and whether a proxy may cache it.

HTTP header values are bytes that servers read as Latin-1, and many proxies
and apps mangle or refuse anything outside ASCII, so identity values go out
as ASCII only:

* A value that is printable ASCII is sent as is.
* Otherwise ``X-Auth-Email`` carries the UTF-8 bytes percent-encoded (an
  ASCII string, readable by any app with one ``unquote``).  ``%`` itself is
  then encoded too, so percent-decoding always gives the exact address.
* ``X-Auth-Email*`` always carries the RFC 8187 ext-value
  ``UTF-8''<pct-encoded>``, which says how to read it unambiguously.

Every 200 carries all four headers, empty for an anonymous caller on a
public path: proxies copy them onto the forwarded request, and some (Caddy
2.6) would otherwise forward a client's own header, or a literal
placeholder, in place of one we did not send.

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


def ascii_value(value: str) -> str:
    """``value`` if it is printable ASCII without ``%``, else percent-encoded UTF-8."""
    if _PLAIN.fullmatch(value) and "%" not in value:
        return value
    return rfc8187(value)


def rfc8187(value: str) -> str:
    # RFC 8187 attr-char only ("@" is not one), so both email headers share one form.
    return quote(value, safe="!#$&+^`|")


def identity_headers(user_id: str, email: str, roles: Iterable[str]) -> dict[str, str]:
    return {
        "x-auth-user-id": ascii_value(user_id),
        "x-auth-email": ascii_value(email),
        "x-auth-email*": f"UTF-8''{rfc8187(email)}",
        "x-auth-roles": ascii_value(",".join(sorted(roles))),
    }


#: What an anonymous caller on a public path gets: the headers, empty.
ANONYMOUS_HEADERS = dict.fromkeys(IDENTITY_HEADERS, "")


def cache_headers(max_age: int, *, cacheable: bool) -> dict[str, str]:
    """``Cache-Control`` and ``Vary`` for an answer (see the module docstring)."""
    if cacheable and max_age > 0:
        return {"cache-control": f"private, max-age={max_age}", "vary": VARY}
    return {"cache-control": "no-store", "vary": VARY}
