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


#: Peers remembered by :class:`TrustedProxyMiddleware` before it starts over.
PEER_MEMO_SIZE = 4096


class TrustedProxyMiddleware:
    def __init__(self, app: ASGIApp, *, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies
        # TCP peer as the server wrote it -> (normalised address or None,
        # whether it is one of our proxies).  Parsing an address costs more
        # than the rest of the layer; a peer's answer never changes.
        self._peers: dict[str, tuple[str | None, bool]] = {}

    def _peer(self, peer: str) -> tuple[str | None, bool]:
        known = self._peers.get(peer)
        if known is None:
            address = parse_ip(peer)
            trusted = address is not None and self.proxies.is_trusted(address)
            known = (str(address) if address is not None else None, trusted)
            if len(self._peers) >= PEER_MEMO_SIZE:
                self._peers.clear()
            self._peers[peer] = known
        return known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if client:
                peer = client[0]
                ip, trusted = self._peer(peer)
                if trusted:
                    # Only a trusted peer's forwarding headers are read at all.
                    ip = self.proxies.client_ip(
                        peer, header(scope, b"x-forwarded-for"), header(scope, b"forwarded")
                    )
                    scope[PROXIED] = True
                    # One value only: a list means hops we cannot tell apart.
                    proto = (header(scope, b"x-forwarded-proto") or "").strip().lower()
                    if proto in ("http", "https"):
                        ws = scope["type"] == "websocket"
                        scope["scheme"] = proto.replace("http", "ws") if ws else proto
                if ip is not None and ip != peer:
                    scope["client"] = (ip, 0)
        await self.app(scope, receive, send)
