"""Put the real client address in ``scope["client"]``, believing only our proxies.

Everything downstream (session records, login throttling, logs) reads
``scope["client"]``; this middleware makes it the client behind the
configured proxies, or leaves the TCP peer when the peer is not one of them.

When the peer is a trusted proxy it also marks the scope
(``scope["gatepass.proxied"]``: forward auth believes the original request's
headers only then) and takes the scheme from ``X-Forwarded-Proto``, so
"is this HTTPS?" (HSTS, Secure cookies) has the client's answer, not the
proxy hop's.
"""

from __future__ import annotations

from gatepass.asgi.types import ASGIApp, Receive, Scope, Send, header
from gatepass.clientip import TrustedProxies, parse_ip

PROXIED = "gatepass.proxied"


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
            address = parse_ip(peer[0]) if peer else None
            if address is not None and self.proxies.is_trusted(address):
                scope[PROXIED] = True
                # One value only: a list means hops we cannot tell apart.
                proto = (header(scope, b"x-forwarded-proto") or "").strip().lower()
                if proto in ("http", "https"):
                    ws = scope["type"] == "websocket"
                    scope["scheme"] = proto.replace("http", "ws") if ws else proto
        await self.app(scope, receive, send)
