"""The one place where gatepass errors become HTTP responses.

Bodies follow the contract: ``{"error": "<code>", "detail": "<human text>"}``.
401 answers always carry ``WWW-Authenticate``.  Nothing here ever echoes
request data back.
"""

from __future__ import annotations

import json

from gatepass.errors import (
    Conflict,
    EmailUnverified,
    GatepassError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ProviderUnavailable,
    RateLimited,
    StoreUnavailable,
)

#: Most specific class first; the first isinstance match wins.
_STATUS: tuple[tuple[type[GatepassError], int], ...] = (
    (PayloadTooLarge, 413),
    (EmailUnverified, 403),
    (InvalidRequest, 400),
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (RateLimited, 429),
    (StoreUnavailable, 503),
    (ProviderUnavailable, 503),
)

#: RFC 6750: a bare challenge when no credentials were sent, with an error
#: code when a token was sent and refused.
WWW_AUTHENTICATE = 'Bearer realm="gatepass"'

Header = tuple[bytes, bytes]


def status_for(exc: GatepassError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_parts(exc: GatepassError) -> tuple[int, list[Header], bytes]:
    """Status, headers and body for an error, ready for ASGI or any framework."""
    status = status_for(exc)
    body = json.dumps({"error": exc.code, "detail": exc.detail, **exc.extra}).encode()
    headers: list[Header] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if isinstance(exc, InvalidToken):
        challenge = f'{WWW_AUTHENTICATE}, error="invalid_token"'
        headers.append((b"www-authenticate", challenge.encode()))
    elif status == 401:
        headers.append((b"www-authenticate", WWW_AUTHENTICATE.encode()))
    elif isinstance(exc, InsufficientScope):
        scope = " ".join(exc.required_permissions)
        challenge = f'{WWW_AUTHENTICATE}, error="insufficient_scope", scope="{scope}"'
        headers.append((b"www-authenticate", challenge.encode()))
    if isinstance(exc, RateLimited):
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    elif status == 503:
        headers.append((b"retry-after", b"5"))
    return status, headers, body
