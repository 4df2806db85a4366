"""CORS with an exact allowlist, credentials only for listed origins.

Starlette's CORS middleware is close, but allows regexes and ``*``; here an
origin is allowed only when it equals one configured origin exactly (scheme,
host and port), so look-alikes (``https://example.com.evil``,
``https://evil-example.com``, ``http://`` for ``https://``, another port,
``null``) get no CORS headers at all and the browser blocks the read.
Every response says ``Vary: Origin``, since it depends on it.
"""

from __future__ import annotations

from collections.abc import Iterable

from gatepass.asgi.types import ASGIApp, Message, Receive, Scope, Send, header
from gatepass.csrf import normalize_origins

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = "authorization, content-type, x-csrf-token"


class CORSMiddleware:
    def __init__(self, app: ASGIApp, *, origins: Iterable[str], max_age: int = 600) -> None:
        self.app = app
        self.origins = normalize_origins(origins)
        self._preflight = [
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", str(max_age).encode()),
            (b"access-control-allow-credentials", b"true"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = header(scope, b"origin")
        allowed = origin is not None and origin in self.origins
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method"):
            await self._answer_preflight(send, origin if allowed else None)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", ())
                    if not k.lower().startswith(b"access-control-")
                ]  # fmt: skip
                if allowed:
                    assert origin is not None
                    headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
                    headers.append((b"access-control-allow-credentials", b"true"))
                _add_vary(headers)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _answer_preflight(self, send: Send, origin: str | None) -> None:
        headers: list[tuple[bytes, bytes]] = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if origin is not None:
            headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
            headers.extend(self._preflight)
        status = 204 if origin is not None else 403
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _add_vary(headers: list[tuple[bytes, bytes]]) -> None:
    for i, (k, v) in enumerate(headers):
        if k.lower() == b"vary":
            if b"origin" not in v.lower():
                headers[i] = (k, v + b", Origin")
            return
    headers.append((b"vary", b"Origin"))
