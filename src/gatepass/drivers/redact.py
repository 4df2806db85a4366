"""The one rule for showing a store URL or setting in a message or a log.

At most ``scheme://host:port``.  Userinfo, path, query and fragment are all
dropped, because each can hold a secret (``?password=``, ``sslpassword``, a
password that a typo pushed into the path).  A value without a recognisable
``scheme://`` is never echoed at all: a password pasted into the setting
would otherwise be printed as is.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,19}")
#: Host names and IP literals only; anything else is not shown.
_HOST = re.compile(r"[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")

UNRECOGNISED = "(a value without a recognisable scheme://)"


def redact(value: str) -> str:
    """``scheme://host:port`` of ``value``, or a fixed phrase; never a secret."""
    scheme, sep, rest = value.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return UNRECOGNISED
    scheme = scheme.lower()
    # The authority ends at the first "/", "?" or "#"; credentials end at its last "@".
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    hosts: list[str] = []
    # A Redis Cluster URL lists several seed nodes, comma-separated.
    for node in authority.split(","):
        shown = _node(node)
        if shown:
            hosts.append(shown)
    return f"{scheme}://{','.join(hosts)}"


def _node(node: str) -> str:
    try:
        parts = urlsplit(f"x://{node}")
        host, port = parts.hostname, parts.port
    except ValueError:  # a bad port, an unclosed bracket
        return ""
    if not host:
        return ""
    shown = f"[{host}]" if ":" in host else host
    if not _HOST.fullmatch(shown):
        return ""
    return shown if port is None else f"{shown}:{port}"
