"""Error pages for people: a browser that asks for HTML gets an HTML 404 or
503 instead of the JSON error body.

The status and the error code still come from the one mapping in
:mod:`gatepass.asgi.errors` (or Starlette's router for an unknown path):
this middleware only re-dresses a JSON error answer, after the fact, when
the request's ``Accept`` names ``text/html`` — which browsers send for page
loads and ``fetch()`` and API clients do not.  Anything else passes through
untouched, streaming as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from gatepass.asgi.middleware import ASGIApp, Message, Receive, Scope, Send, header

#: Renders (status, error code, detail) into a whole HTML document.
Renderer = Callable[[int, str, str], bytes]

PAGE_STATUSES = frozenset({404, 405, 503})


class HTMLErrorPages:
    def __init__(self, app: ASGIApp, *, render: Renderer) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "text/html" not in (header(scope, b"accept") or ""):
            await self.app(scope, receive, send)
            return

        start: Message | None = None
        body = bytearray()

        async def send_wrapper(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", ()))
                ctype = headers.get(b"content-type", b"")
                if message["status"] in PAGE_STATUSES and ctype.startswith(b"application/json"):
                    start = message  # hold it: the body decides
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            await send_page(start, bytes(body))

        async def send_page(original: Message, raw: bytes) -> None:
            try:
                parsed = json.loads(raw)
                code, detail = str(parsed["error"]), str(parsed["detail"])
            except (ValueError, KeyError, TypeError):
                await send(original)
                await send({"type": "http.response.body", "body": raw})
                return
            page = self.render(original["status"], code, detail)
            headers = [
                (k, v) for k, v in original.get("headers", ())
                if k.lower() not in (b"content-type", b"content-length")
            ]  # fmt: skip
            headers += [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(page)).encode()),
                (b"vary", b"Accept"),
            ]
            await send({**original, "headers": headers})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, send_wrapper)
