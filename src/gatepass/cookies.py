"""Cookies: a builder that refuses unsafe attributes, and a strict parser.

Pure functions over strings; no ASGI, no I/O.

The builder (:class:`CookieSpec`) always writes an explicit ``SameSite``: a
cookie without one is still sent on cross-site top-level POSTs for its first
two minutes in Chromium ("Lax+POST").  Unsafe combinations are refused when
the spec is built, i.e. at start-up, never per request.

The parser (:func:`parse_cookie_header`) is deliberately stricter than the
one in :mod:`http.cookies` or Starlette: when a name appears twice, or a
look-alike of a name (other case, Unicode compatibility forms, stray
whitespace) appears beside it, nobody can say which one the browser meant,
so the name is reported as *ambiguous* and its value is not used.  An
attacker who can plant a cookie (a sibling subdomain, a network attacker on
plain HTTP) must never get theirs read in place of the real one.
"""

from __future__ import annotations

import functools
import re
import time
import unicodedata
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Literal

from gatepass.errors import ConfigurationError

SameSite = Literal["lax", "strict", "none"]

#: RFC 6265 cookie-name = token (RFC 7230 tchar).
_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 6265 cookie-octet: printable ASCII minus space, '"', ',', ';' and '\'.
_VALUE_RE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_PATH_RE = re.compile(r"/[\x21-\x3a\x3c-\x7e]*")
_DOMAIN_RE = re.compile(r"\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*")

#: A browser sends at most ~4 KiB per cookie; a header far past that is an
#: attack or a mistake, and is not parsed at all.
MAX_COOKIE_HEADER = 8192


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """How one cookie is written.  Validated once, at construction."""

    name: str = "__Host-gatepass"
    secure: bool = True
    http_only: bool = True
    same_site: SameSite = "lax"
    path: str = "/"
    domain: str | None = None
    #: Lifetime of a persistent cookie; None writes a session cookie (gone
    #: when the browser closes) unless a max_age is passed to :meth:`header`.
    max_age: int | None = None
    _prefix: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = validate_spec(self)
        if problems:
            raise ConfigurationError(f"Unsafe cookie settings for {self.name!r}: {problems[0]}")
        attrs = [f"Path={self.path}"]
        if self.domain:
            attrs.append(f"Domain={self.domain}")
        if self.secure:
            attrs.append("Secure")
        if self.http_only:
            attrs.append("HttpOnly")
        attrs.append(f"SameSite={self.same_site.capitalize()}")
        # Precomputed: every Set-Cookie of this cookie shares these attributes,
        # so the deletion always matches the cookie it deletes.
        object.__setattr__(self, "_prefix", "; ".join(attrs))

    def header(self, value: str, *, max_age: int | None = None) -> str:
        """The ``Set-Cookie`` header value that sets this cookie to ``value``.

        ``value`` must be cookie-octets only; anything else (CR, LF, ``;``,
        spaces, quotes) raises ValueError, so no attribute or header can be
        injected through it.
        """
        if not _VALUE_RE.fullmatch(value):
            raise ValueError("Cookie value contains characters that are not allowed.")
        lifetime = self.max_age if max_age is None else max_age
        if lifetime is None:
            return f"{self.name}={value}; {self._prefix}"
        expires = formatdate(time.time() + lifetime, usegmt=True)
        return f"{self.name}={value}; Max-Age={lifetime}; Expires={expires}; {self._prefix}"

    def deletion_header(self) -> str:
        """The ``Set-Cookie`` header value that removes this cookie."""
        return (
            f"{self.name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; {self._prefix}"
        )


def validate_spec(spec: CookieSpec) -> list[str]:
    """Every reason the spec is unsafe or invalid (empty when it is fine)."""
    problems: list[str] = []
    if not _NAME_RE.fullmatch(spec.name):
        problems.append("the name must be an RFC 6265 token")
    if spec.same_site not in ("lax", "strict", "none"):
        problems.append("SameSite must be 'lax', 'strict' or 'none'")
    if spec.same_site == "none" and not spec.secure:
        problems.append("SameSite=None requires Secure (browsers drop it otherwise)")
    lowered = spec.name.lower()
    if lowered.startswith("__host-"):
        if not spec.secure:
            problems.append("a __Host- cookie requires Secure")
        if spec.domain is not None:
            problems.append("a __Host- cookie cannot have a Domain")
        if spec.path != "/":
            problems.append("a __Host- cookie requires Path=/")
    elif lowered.startswith("__secure-") and not spec.secure:
        problems.append("a __Secure- cookie requires Secure")
    if not _PATH_RE.fullmatch(spec.path):
        problems.append("Path must start with '/' and contain no ';' or control characters")
    if spec.domain is not None and not _DOMAIN_RE.fullmatch(spec.domain):
        problems.append("Domain is not a valid host name")
    if spec.max_age is not None and spec.max_age < 0:
        problems.append("Max-Age cannot be negative")
    return problems


@dataclass(frozen=True, slots=True)
class ParsedCookies:
    """The cookies of one request.

    ``values`` holds names that appeared exactly once with no look-alike;
    ``ambiguous`` holds the canonical names that must not be trusted.
    """

    values: dict[str, str]
    ambiguous: frozenset[str]
    oversized: bool = False

    def get(self, name: str) -> str | None:
        """The value of ``name`` if it is unambiguous, else None."""
        if self.oversized or name in self.ambiguous:
            return None
        return self.values.get(name)


_EMPTY = ParsedCookies({}, frozenset())


def _fold(name: str) -> str:
    """The form under which two names count as look-alikes."""
    if name.isascii():
        if name.isprintable() and " " not in name:
            return name.lower()  # the common case: a plain token
        return "".join(ch for ch in name if "\x20" < ch < "\x7f").lower()
    folded = unicodedata.normalize("NFKC", name)
    # Every "other" (control, format, private use, unassigned) and every
    # separator (space, line, paragraph): none is visible in a name, so a name
    # that differs only by them is a look-alike.  U+2028 is a separator too.
    folded = "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "CZ")
    return folded.strip().casefold()


_fold_cached = functools.lru_cache(maxsize=32)(_fold)


def parse_cookie_header(header: str, *, max_size: int = MAX_COOKIE_HEADER) -> ParsedCookies:
    """Parse a ``Cookie`` request header strictly.

    * Pairs are split on ``;`` and only ASCII space and tab are trimmed.
    * A pair whose name is not a token, or whose value is not cookie-octets
      (optionally double-quoted), is skipped but still counts as a look-alike
      of any real name it folds to.
    * A name seen twice, or whose folded form collides with another name, is
      ambiguous.
    * A header longer than ``max_size`` is not parsed: ``oversized`` is set
      and no cookie is returned.
    """
    if not header:
        return _EMPTY
    if len(header) > max_size:
        return ParsedCookies({}, frozenset(), oversized=True)
    values: dict[str, str] = {}
    seen_exact: set[str] = set()
    ambiguous: set[str] = set()
    by_fold: dict[str, set[str]] = {}
    for chunk in header.split(";"):
        chunk = chunk.strip(" \t")
        if not chunk:
            continue
        name, sep, value = chunk.partition("=")
        name = name.strip(" \t")
        value = value.strip(" \t")
        by_fold.setdefault(_fold(name), set()).add(name)
        if not sep or not _NAME_RE.fullmatch(name):
            continue
        if name in seen_exact:
            ambiguous.add(name)
            continue
        seen_exact.add(name)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not _VALUE_RE.fullmatch(value):
            ambiguous.add(name)
            continue
        values[name] = value
    for names in by_fold.values():
        if len(names) > 1:
            ambiguous.update(n for n in names if n in seen_exact)
    for name in ambiguous:
        values.pop(name, None)
    return ParsedCookies(values, frozenset(ambiguous))


def read_cookie(header: str | None, name: str, *, max_size: int = MAX_COOKIE_HEADER) -> str | None:
    """``parse_cookie_header(header).get(name)``, without building the whole map.

    The per-request path: the middleware needs one cookie, and this reads it
    with exactly the same strictness (a property test holds the two equal)
    at a fraction of the cost.
    """
    if not header or len(header) > max_size:
        return None
    folded = _fold_cached(name)  # the name is the app's constant: fold it once
    found: str | None = None
    for chunk in header.split(";"):
        raw_name, sep, value = chunk.partition("=")
        raw_name = raw_name.strip(" \t")
        if raw_name == name:
            if not sep:
                continue
            if found is not None:
                return None  # duplicate
            found = value.strip(" \t")
        elif raw_name and _fold(raw_name) == folded:
            return None  # a look-alike beside it, or alone: never the real cookie
    if found is None:
        return None
    if len(found) >= 2 and found[0] == found[-1] == '"':
        found = found[1:-1]
    return found if _VALUE_RE.fullmatch(found) else None
