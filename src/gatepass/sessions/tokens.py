"""Session tokens: generation, format check and hashing.

The token is 32 bytes from :mod:`secrets` (256 bits), base64url without
padding: 43 characters.  Only its SHA-256 is stored, so a leaked store does
not yield usable cookies.  A value that is not exactly the shape we mint is
refused before it is hashed or looked up.
"""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_BYTES = 32
TOKEN_LENGTH = 43
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_well_formed(token: str) -> bool:
    return len(token) == TOKEN_LENGTH and _TOKEN_RE.fullmatch(token) is not None


def token_key(token: str) -> str:
    """The store key for a token: SHA-256, hex."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()
