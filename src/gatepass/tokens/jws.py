"""Compact JWS (RFC 7515) for the four pinned algorithms, over ``cryptography``.

Only what gatepass needs, in the order RFC 8725 asks for: cheap structural
checks, the key chosen by ``kid`` from the ring alone, the header ``alg``
compared to that key's pinned algorithm, the signature verified, and only
then the payload parsed.  :func:`decode` raises :class:`InvalidToken` for
every defect and nothing else, so one ``except InvalidToken`` is the whole
error handling of a caller.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from gatepass.errors import InvalidToken
from gatepass.tokens.keys import KeyRing, SigningKey, b64url

#: Checked before anything else; a larger token is refused unread.
MAX_TOKEN_LENGTH = 8192
MAX_KID_LENGTH = 256
MAX_DEPTH = 32
_HEADER_CACHE_SIZE = 256

# One C-speed pass that settles the segment count and the alphabet: three
# non-empty segments of [A-Za-z0-9_-], so no '=', '+', '/', whitespace or
# non-ASCII survives to the decoder.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# The last character of an unpadded segment may not carry set filler bits,
# otherwise several strings decode to the same bytes (a malleable token).
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


class _DuplicateKey(ValueError):
    pass


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate names are where two parsers disagree about a claim's value.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)  # "1e400" would otherwise silently become inf
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_pairs, parse_constant=_no_constant, parse_float=_finite_float
)

# Parsed, validated headers by their exact segment.  A service signs with one
# or two keys, so a handful of distinct headers covers all its traffic; the
# bound keeps a flood of forged headers from growing it.  Values are never
# handed out (callers get a copy), so a caller cannot poison it.
_header_cache: dict[str, tuple[dict[str, Any], str, str]] = {}


def encode(claims: Mapping[str, Any], key: SigningKey, *, typ: str) -> str:
    """Sign ``claims`` as a compact JWS with header ``{alg, kid, typ}``."""
    header = {"alg": key.alg, "kid": key.kid, "typ": typ}
    head = b64url(json.dumps(header, separators=(",", ":")).encode("ascii"))
    body = b64url(json.dumps(dict(claims), separators=(",", ":"), allow_nan=False).encode("ascii"))
    signing_input = f"{head}.{body}"
    token = f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError("claims too large: the token would exceed MAX_TOKEN_LENGTH")
    return token


def decode(token: str, ring: KeyRing, *, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify ``token`` against ``ring`` and return ``(header, claims)``.

    Checks the signature only; claims (exp, aud, ...) are the caller's.
    Raises :class:`InvalidToken` with a ``reason`` for anything wrong.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken(reason="size")
    if _COMPACT.fullmatch(token) is None:
        raise InvalidToken(reason="format")
    head_seg, body_seg, sig_seg = token.split(".")

    cached = _header_cache.get(head_seg)
    if cached is None:
        cached = _parse_header(head_seg)
        if len(_header_cache) >= _HEADER_CACHE_SIZE:
            _header_cache.clear()
        _header_cache[head_seg] = cached
    header, alg, kid = cached

    key = ring.get(kid, now=now)
    if key is None:
        raise InvalidToken(reason="unknown_kid")
    # The key decides the algorithm, never the token: "none", an HS256 header
    # on an RSA kid (the RSA public key as HMAC secret), anything not equal
    # to the pinned algorithm ends here.
    if alg != key.alg:
        raise InvalidToken(reason="alg_mismatch")
    signature = _b64decode(sig_seg, "signature")
    if not key.verify(token[: len(head_seg) + 1 + len(body_seg)].encode("ascii"), signature):
        raise InvalidToken(reason="signature")

    claims = _parse_json(_b64decode(body_seg, "payload"), "payload")
    return dict(header), claims


def clear_header_cache() -> None:
    """Forget parsed headers (benchmarks measure the cold path with it)."""
    _header_cache.clear()


def _parse_header(segment: str) -> tuple[dict[str, Any], str, str]:
    header = _parse_json(_b64decode(segment, "header"), "header")
    alg = header.get("alg")
    kid = header.get("kid")
    if not isinstance(alg, str):
        raise InvalidToken(reason="alg_missing")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        raise InvalidToken(reason="kid_invalid")
    # We understand no extension, so any "crit" must fail (RFC 7515 §4.1.11).
    # jku/x5u/x5c/jwk are not even read: keys come from the ring alone.
    if "crit" in header:
        raise InvalidToken(reason="crit")
    return header, alg, kid


def _b64decode(segment: str, what: str) -> bytes:
    rem = len(segment) % 4
    if rem == 1 or (rem and segment[-1] not in _CANONICAL_LAST[rem]):
        raise InvalidToken(reason=f"{what}_base64")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):  # unreachable after the checks above
        raise InvalidToken(reason=f"{what}_base64") from None


def _parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        value = _DECODER.decode(text)
    except _DuplicateKey:
        raise InvalidToken(reason=f"{what}_duplicate_key") from None
    # UnicodeDecodeError and JSONDecodeError are ValueErrors; RecursionError
    # is how the C scanner answers thousands of nested arrays.
    except (ValueError, RecursionError):
        raise InvalidToken(reason=f"{what}_json") from None
    if not isinstance(value, dict):
        raise InvalidToken(reason=f"{what}_not_object")
    # Fewer brackets than the limit cannot nest past it: skip the walk.
    if text.count("{") + text.count("[") > MAX_DEPTH and _too_deep(value):
        raise InvalidToken(reason=f"{what}_depth")
    return value


def _too_deep(root: dict[str, Any]) -> bool:
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
