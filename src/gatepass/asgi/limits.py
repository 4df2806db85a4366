"""Request size limits, enforced before anything parses or hashes.

Headers: the whole header block, any single value, and the ``Cookie`` and
``Authorization`` headers in particular are capped (431).  Bodies: a declared
``Content-Length`` over the cap is refused at once, and a streamed body is
counted as it arrives (413).
"""

from __future__ import annotations

import json

from gatepass.asgi.types import ASGIApp, Message, Receive, Scope, Send


class RequestLimitsMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_header_bytes: int = 16 * 1024,
        max_header_value: int = 8 * 1024,
        max_body_bytes: int = 1024 * 1024,
    ) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_header_value = max_header_value
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        total = 0
        declared: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            total += len(name) + len(value)
            if len(value) > self.max_header_value or total > self.max_header_bytes:
                await _refuse(send, 431, "request_header_fields_too_large",
                              "The request headers are too large.")  # fmt: skip
                return
            if name == b"content-length":
                if not value.isdigit() or declared is not None:
                    await _refuse(send, 400, "invalid_request", "Invalid Content-Length.")
                    return
                declared = int(value)
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and declared > self.max_body_bytes:
            await _refuse(send, 413, "payload_too_large", "The request body is too large.")
            return
        if not declared and not chunked and scope.get("http_version") in _FRAMED_BY_HEADERS:
            # HTTP/1.x: a request with neither a Content-Length nor a
            # Transfer-Encoding (or a zero length) has no body (RFC 9112
            # 6.3), so there is nothing to count: receive and send pass
            # through untouched, as on most GETs.
            await self.app(scope, receive, send)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await _refuse(send, 413, "payload_too_large", "The request body is too large.")


#: HTTP versions whose request bodies exist only when a header says so
#: (HTTP/2 and 3 may stream a body with neither).
_FRAMED_BY_HEADERS = frozenset({"1.0", "1.1"})


class _BodyTooLarge(Exception):
    pass


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
