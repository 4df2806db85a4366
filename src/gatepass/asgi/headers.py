"""Security headers, as helmet sets them, precomputed once.

Each header is added only when the response does not already carry it, so a
route overrides any of them by setting its own (e.g. a page that must be
framed by a partner sets its own ``Content-Security-Policy``).

Responses that set a cookie are also made ``Cache-Control: no-store`` with
``Vary: Cookie``: a shared cache must never replay one user's cookie or
personalised page to another.  So are answers to requests that carried a
credential (a ``Cookie`` or ``Authorization`` header) unless the route chose
its own ``Cache-Control``: whatever such a request gets back may be personal.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from gatepass.asgi.types import ASGIApp, Message, Receive, Scope, Send

#: The server's own pages load only their stylesheet from 'self' and run no
#: script, so this holds without nonces; apps with scripts pass their own.
DEFAULT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)

DEFAULT_HEADERS: Mapping[str, str] = {
    "content-security-policy": DEFAULT_CSP,
    # Sent only on https responses (RFC 6797 8.1: never over plain http);
    # behind a trusted proxy the scheme is the client's (X-Forwarded-Proto).
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def csp_with_form_target(target: str) -> dict[str, str]:
    """The headers for a page whose form may be redirected to ``target``.

    CSP ``form-action`` also governs the redirect that answers a form post,
    so a sign-in page that sends the user back to an app on another host
    (forward auth) must name that origin.  ``target`` must already be
    vetted (:func:`gatepass.redirects.safe_next_url`); a local path needs
    nothing beyond the default.
    """
    if target.startswith("/"):
        return {}
    parts = urlsplit(target)
    origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
    policy = DEFAULT_CSP.replace("form-action 'self'", f"form-action 'self' {origin}")
    return {"content-security-policy": policy}


_CACHE_HEADERS = (b"cache-control", b"vary")
#: ASGI header names are lower-case bytes.
_CREDENTIALS = frozenset({b"cookie", b"authorization"})
_BANNERS = frozenset({b"server", b"x-powered-by"})


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, headers: Mapping[str, str | None] | None = None) -> None:
        """``headers`` overrides the defaults by name; a value of None drops a header."""
        self.app = app
        merged: dict[str, str | None] = {
            **DEFAULT_HEADERS,
            **{k.lower(): v for k, v in (headers or {}).items()},
        }
        self._headers = [
            (k.encode(), v.encode())
            for k, v in merged.items()
            if v is not None and k.encode() not in _BANNERS
        ]
        self._plain_headers = [h for h in self._headers if h[0] != b"strict-transport-security"]
        self._names = frozenset(k for k, _ in self._headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credentialed = any(k in _CREDENTIALS for k, _ in scope["headers"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # One pass: drop the banners, note which names are present.
                headers: list[tuple[bytes, bytes]] = []
                present: set[bytes] = set()
                for h in message.get("headers", ()):
                    name = h[0].lower()
                    if name not in _BANNERS:  # the server software is nobody's business
                        present.add(name)
                        headers.append(h)
                # The scheme as TrustedProxyMiddleware (installed outside
                # this one) settled it.
                own = self._headers if scope.get("scheme") == "https" else self._plain_headers
                if present.isdisjoint(self._names):  # the usual case: none overridden
                    headers += own
                else:
                    headers.extend(h for h in own if h[0] not in present)
                if credentialed and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                if b"set-cookie" in present:
                    headers = [h for h in headers if h[0].lower() not in _CACHE_HEADERS]
                    headers += [(b"cache-control", b"no-store"), (b"vary", b"Cookie, Origin")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
