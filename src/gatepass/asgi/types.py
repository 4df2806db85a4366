"""The ASGI types and the two scope readers every layer shares.

Kept apart from the middleware so that the layers (bearer tokens, CSRF,
CORS, limits, proxies, headers) depend on this small module, not on each
other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def header(scope: Scope, name: bytes) -> str | None:
    """One request header, decoded as latin-1; repeated headers are joined."""
    found = [v for k, v in scope.get("headers", ()) if k == name]
    if not found:
        return None
    sep = b"; " if name == b"cookie" else b", "
    return sep.join(found).decode("latin-1")


def credentials(scope: Scope) -> tuple[str | None, str | None]:
    """``Authorization`` and ``Cookie`` in one pass over the headers, each
    joined as :func:`header` joins repeated ones."""
    authorization: bytes | None = None
    cookie: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookie = value if cookie is None else cookie + b"; " + value
        elif name == b"authorization":
            authorization = value if authorization is None else authorization + b", " + value
    return (
        None if authorization is None else authorization.decode("latin-1"),
        None if cookie is None else cookie.decode("latin-1"),
    )


def client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None
