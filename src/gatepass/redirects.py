"""Safe redirect targets from user input (the login ``next`` parameter).

Only a local path is accepted: it starts with exactly one ``/``, contains no
backslash, whitespace or control character, and stays a local path however
many times it is percent-decoded (so ``/%2F%2Fevil.example`` and
``/%5Cevil.example`` are refused).  Anything else falls back to the default.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

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
