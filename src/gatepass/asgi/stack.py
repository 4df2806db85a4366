"""The safe middleware stack, in its one order, built in one place.

``gatepass serve`` and every app that calls :func:`gatepass.install` get the
layers from :func:`build_stack`, so the library and the server cannot drift.
Outermost first:

1. **trusted proxies**: the client address and scheme are settled before
   anything reads them (HSTS is sent only over https; sessions record the
   address);
2. **security headers**: on every answer, the refusals of every layer below
   included (the limits' 413 and 431 too);
3. **request limits**: sizes are checked before anything parses or hashes;
4. **CORS**: exact allowlist; a preflight is answered before any credential is read;
5. **auth**: the session cookie or the Bearer token resolves the caller (not optional);
6. **CSRF**: after auth, since its token is bound to the session or token family.

Turning a layer off is explicit and named (``Layers(csrf=False)``), never the
default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gatepass.asgi.bearer import ACCESS_COOKIE, BearerResolver
from gatepass.asgi.cors import CORSMiddleware
from gatepass.asgi.csrf import CSRFMiddleware
from gatepass.asgi.headers import SecurityHeadersMiddleware
from gatepass.asgi.limits import RequestLimitsMiddleware
from gatepass.asgi.middleware import AuthMiddleware
from gatepass.asgi.proxies import TrustedProxyMiddleware
from gatepass.asgi.types import ASGIApp
from gatepass.errors import ConfigurationError
from gatepass.server.components import Components, users_roles
from gatepass.server.html_errors import HTMLErrorPages, Renderer


@dataclass(frozen=True, slots=True)
class Layers:
    """Which layers run, and their app-specific knobs.  Every layer is on by default."""

    request_limits: bool = True
    security_headers: bool = True
    cors: bool = True
    trusted_proxies: bool = True
    csrf: bool = True
    #: Largest request body the whole app accepts (the auth endpoints read
    #: at most ``Settings.max_body_bytes`` of it).
    max_body_bytes: int = 1 << 20
    #: Overrides of the security headers by name; None drops one.  An app
    #: whose pages run scripts from elsewhere sets its own
    #: ``content-security-policy`` here (or per response).
    headers: Mapping[str, str | None] = field(default_factory=dict)
    #: Renders error pages for browsers that ask for HTML (the server's
    #: pages; built from the opened parts).  None: JSON errors only.
    error_pages: Callable[[Components], Renderer] | None = None
    #: Exact paths whose credential travels in the body, never in a cookie
    #: (e.g. a token endpoint that takes a password): no CSRF check there.
    csrf_exempt: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigurationError("Layers.max_body_bytes must be at least 1024.")
        if isinstance(self.csrf_exempt, str):
            raise ConfigurationError("Layers.csrf_exempt is a tuple of paths, not one string.")
        for path in self.csrf_exempt:
            if not path.startswith("/"):
                raise ConfigurationError("Layers.csrf_exempt paths must start with '/'.")


def build_stack(app: ASGIApp, parts: Components, layers: Layers = Layers()) -> ASGIApp:
    """``app`` wrapped in the enabled layers, in the order above."""
    settings = parts.settings
    if layers.csrf:
        app = CSRFMiddleware(
            app,
            signer=parts.csrf,
            cookie=parts.csrf_cookie,
            trusted_origins=parts.trusted_origins,
            max_form_bytes=settings.max_body_bytes,
            exempt_paths=layers.csrf_exempt,
        )
    app = AuthMiddleware(
        app,
        sessions=parts.sessions,
        cookie=parts.cookie,
        permissions=parts.permissions,
        bearer=BearerResolver(
            parts.tokens.verify,
            parts.permissions,
            cookie=ACCESS_COOKIE if settings.browser_mode == "jwt" else None,
            roles_loader=users_roles(parts.accounts.users) if settings.jwt_stateful else None,
            bound=parts.dbsc.cookies if parts.dbsc is not None else None,
            verify_cached=parts.tokens.verify_cached,
        ),
        bound=parts.dbsc.cookies if parts.dbsc is not None else None,
    )
    if layers.cors:
        app = CORSMiddleware(app, origins=settings.cors_origins)
    if layers.request_limits:
        app = RequestLimitsMiddleware(
            app, max_body_bytes=max(layers.max_body_bytes, settings.max_body_bytes)
        )
    if layers.error_pages is not None:
        # Inside the security headers, so its pages get the same CSP.
        app = HTMLErrorPages(app, render=layers.error_pages(parts))
    if layers.security_headers:
        app = SecurityHeadersMiddleware(app, headers=layers.headers)
    if layers.trusted_proxies:
        app = TrustedProxyMiddleware(app, proxies=parts.proxies)
    return app
