"""Safe redirect targets from user input (the login ``next`` parameter).

Only a local path is accepted: it starts with exactly one ``/``, contains no
backslash, whitespace or control character, and stays a local path however
many times it is percent-decoded (so ``/%2F%2Fevil.example`` and
``/%5Cevil.example`` are refused).  Anything else falls back to the default.

:func:`safe_next_url` also accepts an absolute URL on an allowed host: forward
auth sends users back to the app they came from, on another subdomain.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from gatepass.hostnames import host_matches, normalize_host

MAX_LENGTH = 2048
_ALLOWED = re.compile(r"/[\x21-\x7e]*")


def _is_local(path: str, *, raw: bool) -> bool:
    if raw:
        # What we put in Location: printable ASCII only, so no header injection.
        if not _ALLOWED.fullmatch(path):
            return False
    elif not path.startswith("/") or any(unicodedata.category(ch)[0] == "C" for ch in path):
        # A decoded form may hold any visible text, but not control or
        # format characters (browsers drop tabs and newlines: "/\t/evil").
        return False
    if "\\" in path:
        return False
    if path.startswith("//"):
        return False
    parts = urlsplit(path)
    return not parts.scheme and not parts.netloc


def safe_next(value: str | None, default: str = "/account") -> str:
    """``value`` if it is a safe local path, else ``default``."""
    if not value or len(value) > MAX_LENGTH:
        return default
    if not _is_local(value, raw=True):
        return default
    candidate = value
    for _ in range(4):
        decoded = unquote(candidate)
        if decoded == candidate:
            return value
        if not _is_local(decoded, raw=False):
            return default
        candidate = decoded
    # Still changing after several decodings: nobody needs that legitimately.
    return default


def safe_next_url(
    value: str | None,
    allowed_hosts: Iterable[str],
    default: str = "/account",
    *,
    schemes: Iterable[str] = ("https",),
) -> str:
    """``value`` if it is a safe local path (:func:`safe_next`) or an absolute
    URL on a host that ``allowed_hosts`` names (exact or ``*.domain``), else
    ``default``.

    The absolute form is what forward auth sends users back to after login.
    It is held to a narrow shape so that the host we check is the host every
    browser goes to: printable ASCII only, no backslash, no userinfo (``@``),
    no percent-encoding in the authority, a scheme from ``schemes``, a valid
    port.  Everything :func:`safe_next` refuses stays refused.
    """
    if not value or len(value) > MAX_LENGTH:
        return default
    if value.startswith("/"):
        return safe_next(value, default)
    if not _ALLOWED.fullmatch("/" + value) or "\\" in value:
        return default
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in {s.lower() for s in schemes}:
        return default
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if not authority or "@" in authority or "%" in authority:
        return default
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return default
    host = normalize_host(authority)
    if host is None or parts.hostname != host or parts.netloc.lower() != authority.lower():
        return default
    if not any(host_matches(pattern, host) for pattern in allowed_hosts):
        return default
    return value
