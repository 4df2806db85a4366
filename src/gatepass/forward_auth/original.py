"""The request a proxy is asking about, rebuilt from the headers it sent.

nginx ``auth_request`` sends ``X-Original-URL`` (and ``X-Original-Method``)
as its configuration says; Caddy ``forward_auth`` and Traefik ``ForwardAuth``
send ``X-Forwarded-Proto``, ``-Host``, ``-Uri`` and ``-Method``.  A client can
send every one of these too, so the caller only believes them when the TCP
peer is a trusted proxy; this module only parses.

The path the rules see is normalised the way servers resolve it before an
app sees it: the query goes, percent-escapes are decoded once, ``;params``
are dropped from segments (``/public/..;/admin`` is ``/admin`` to a Java
servlet), dot segments are resolved and repeated slashes merged.  So
``/public/%2e%2e/admin`` cannot pass for something under ``/public/``.
Anything that has no single honest reading (control characters, backslashes,
invalid UTF-8) is refused rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlsplit

from gatepass.errors import InvalidRequest
from gatepass.hostnames import normalize_host

MAX_URL = 4096
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_METHOD_RE = re.compile(r"[A-Z]{1,20}")


@dataclass(frozen=True, slots=True)
class OriginalRequest:
    scheme: str
    #: Normalised host name (no port).
    host: str
    #: Host and port exactly as the client addressed it (for rebuilding the URL).
    authority: str
    #: The raw request target: path and query, as the client sent them.
    target: str
    #: The normalised path the rules match on.
    path: str
    method: str | None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


Headers = Callable[[str], str | None]


def original_request(get: Headers) -> OriginalRequest | None:
    """The original request from the forwarding headers; None when none were sent.

    ``get`` returns a request header by lower-case name.  Headers that are
    present but malformed raise InvalidRequest (a proxy never sends those).
    """
    method = _method(get("x-original-method") or get("x-forwarded-method"))
    url = get("x-original-url")
    if url is not None:
        _check_printable(url, "X-Original-URL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
            raise InvalidRequest("X-Original-URL must be an absolute http(s) URL.")
        target = url[len(parts.scheme) + 3 + len(parts.netloc):] or "/"
        return _build(parts.scheme, parts.netloc, target, method)
    host = get("x-forwarded-host")
    uri = get("x-forwarded-uri")
    if host is None and uri is None:
        return None
    if host is None or uri is None:
        raise InvalidRequest("X-Forwarded-Host and X-Forwarded-Uri must be sent together.")
    proto = (get("x-forwarded-proto") or "http").strip().lower()
    if proto not in ("http", "https"):
        raise InvalidRequest("X-Forwarded-Proto must be http or https.")
    _check_printable(host, "X-Forwarded-Host")
    _check_printable(uri, "X-Forwarded-Uri")
    return _build(proto, host, uri, method)


def _check_printable(value: str, name: str) -> None:
    if len(value) > MAX_URL or not _PRINTABLE.fullmatch(value):
        raise InvalidRequest(f"{name} must be printable ASCII without spaces.")


def _method(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().upper()
    if not _METHOD_RE.fullmatch(value):
        raise InvalidRequest("The forwarded method is not an HTTP method.")
    return value


def _build(scheme: str, authority: str, target: str, method: str | None) -> OriginalRequest:
    host = normalize_host(authority)
    if host is None:
        raise InvalidRequest("The forwarded host is not a valid host name.")
    if not target.startswith("/") or target.startswith("//"):
        raise InvalidRequest("The forwarded URI must be an origin-form path.")
    return OriginalRequest(
        scheme=scheme,
        host=host,
        authority=authority.lower(),
        target=target.split("#", 1)[0],
        path=normalize_path(target),
        method=method,
    )


def normalize_path(target: str) -> str:
    """The path of ``target`` as a server resolves it (see the module docstring)."""
    raw = target.split("?", 1)[0].split("#", 1)[0]
    try:
        decoded = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The forwarded path is not valid UTF-8.") from None
    if "\\" in decoded or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
        raise InvalidRequest("The forwarded path contains characters no path should hold.")
    out: list[str] = []
    segments = decoded.split("/")[1:]
    for i, segment in enumerate(segments):
        segment = segment.split(";", 1)[0]
        last = i == len(segments) - 1
        if segment == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif segment == ".":
            if last:
                out.append("")
        elif segment or last:
            out.append(segment)
    return "/" + "/".join(out)
