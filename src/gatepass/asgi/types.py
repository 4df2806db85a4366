"""The ASGI types and the two scope readers every layer shares.

Kept apart from the middleware so that the layers (bearer tokens, CSRF,
CORS, limits, proxies, headers) depend on this small module, not on each
other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Generic, TypeVar

from gatepass.cookies import read_cookie

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")


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


def cookie_header(scope: Scope) -> str | None:
    """The ``Cookie`` header as :func:`header` reads it, in one plain pass."""
    cookie: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookie = value if cookie is None else cookie + b"; " + value
    return None if cookie is None else cookie.decode("latin-1")


class CookieReader(Generic[T]):
    """:func:`~gatepass.cookies.read_cookie` for one cookie name, memoised per
    ``Cookie`` header, with ``derive`` applied to the value found.

    A browser sends the same header on every request, and the strict parse
    (and whatever ``derive`` computes from the value, e.g. a hash) is a pure
    function of it, so each layer that reads a cookie keeps its answers in a
    small bounded memo instead of parsing again.  Headers longer than
    ``max_header`` are parsed each time and never kept.
    """

    __slots__ = ("_memo", "derive", "max_entries", "max_header", "name")

    def __init__(
        self,
        name: str,
        derive: Callable[[str], T],
        *,
        max_entries: int = 4096,
        max_header: int = 1024,
    ) -> None:
        self.name = name
        self.derive = derive
        self.max_entries = max_entries
        self.max_header = max_header
        self._memo: dict[str, T | None] = {}

    def __call__(self, header: str | None) -> T | None:
        if header is None:
            return None
        memo = self._memo
        if header in memo:
            return memo[header]
        value = read_cookie(header, self.name)
        answer = None if value is None else self.derive(value)
        if len(header) <= self.max_header:
            if len(memo) >= self.max_entries:
                memo.clear()
            memo[header] = answer
        return answer


def client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None
