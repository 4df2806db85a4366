"""Put the real client address in ``scope["client"]``, believing only our proxies.

Everything downstream (session records, login throttling, logs) reads
``scope["client"]``; this middleware makes it the client behind the
configured proxies, or leaves the TCP peer when the peer is not one of them.
"""

from __future__ import annotations

from gatepass.asgi.middleware import ASGIApp, Receive, Scope, Send, header
from gatepass.clientip import TrustedProxies


class TrustedProxyMiddleware:
    def __init__(self, app: ASGIApp, *, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            ip = self.proxies.client_ip(
                peer[0] if peer else None,
                header(scope, b"x-forwarded-for"),
                header(scope, b"forwarded"),
            )
            if ip is not None and (peer is None or ip != peer[0]):
                scope["client"] = (ip, 0)
        await self.app(scope, receive, send)
