"""CSRF tokens bound to a session by HMAC, and the origin checks.

Pure functions; the ASGI side is :mod:`gatepass.asgi.csrf`.

A token is ``base64url(nonce ‖ mac)`` where ``mac = HMAC-SHA256(secret,
"gatepass-csrf" ‖ binding ‖ nonce)`` truncated to 128 bits.  The *binding* is
the hash of the session id for a signed-in browser, so a token taken from
another session, or minted by an attacker with their own session, fails; a
fresh nonce per token means tokens differ on every issue (no fixed secret in
pages, which also blunts compression side channels).  Before a session
exists (the login form) the binding is a constant and the check becomes a
signed double-submit: the token sent must equal the one in the ``__Host-``
cookie, which no other site or subdomain can plant.

Secrets are a list, newest first: the first signs, all verify, so a secret
can be rotated without breaking the forms already open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from gatepass.errors import ConfigurationError

ANONYMOUS_BINDING = "anonymous"
_NONCE = 16
_MAC = 16
TOKEN_LENGTH = 43  # base64url of 32 bytes, unpadded
# Exactly our alphabet and length, and a last character with zero filler bits:
# base64 decoders skip stray characters and ignore filler bits, so without
# this "tok!en", "tok+en" or a flipped last bit would decode to the same bytes
# and one token would have many accepted spellings.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


class CSRFSigner:
    def __init__(self, secrets: Sequence[bytes]) -> None:
        if not secrets or any(not isinstance(s, bytes) or len(s) < 32 for s in secrets):
            raise ConfigurationError("CSRF secrets must be at least 32 bytes each.")
        self._keys = [bytes(s) for s in secrets]

    def _mac(self, key: bytes, binding: str, nonce: bytes) -> bytes:
        msg = b"gatepass-csrf\x00" + binding.encode() + b"\x00" + nonce
        return hmac.new(key, msg, hashlib.sha256).digest()[:_MAC]

    def token_for(self, binding: str) -> str:
        nonce = os.urandom(_NONCE)
        raw = nonce + self._mac(self._keys[0], binding, nonce)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def verify(self, token: str | None, binding: str) -> bool:
        """True when ``token`` was issued by us for ``binding``."""
        if not isinstance(token, str) or _TOKEN.fullmatch(token) is None:
            return False
        raw = base64.urlsafe_b64decode(token + "=")  # 32 bytes: the pattern guarantees it
        nonce, mac = raw[:_NONCE], raw[_NONCE:]
        return any(hmac.compare_digest(mac, self._mac(k, binding, nonce)) for k in self._keys)


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower-cased, or None if it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme}://{host}{suffix}"


def normalize_origins(origins: Iterable[str]) -> frozenset[str]:
    """Validated exact origins; anything with a path, a wildcard or no host is refused."""
    result = set()
    for origin in origins:
        normalized = origin_of(origin)
        if normalized is None or not _is_bare(origin):
            # Never echo userinfo: it may hold a password.
            shown = repr(origin) if "@" not in origin and len(origin) <= 200 else "A value"
            raise ConfigurationError(
                f"{shown} is not an origin (scheme://host[:port], no path, no wildcard)."
            )
        result.add(normalized)
    return frozenset(result)


def _is_bare(origin: str) -> bool:
    # Only called once origin_of has parsed the same string: urlsplit cannot raise.
    parts = urlsplit(origin)
    return (
        parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
        and "@" not in parts.netloc
        and "*" not in origin
    )
