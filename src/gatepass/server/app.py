"""The ``gatepass serve`` application.

:class:`Server` is the ASGI entry point.  It opens the stores during the
lifespan start-up, on the server's own event loop (connection pools belong to
the loop that made them), then builds the Starlette app around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates

from gatepass.asgi.bearer import ACCESS_COOKIE, BearerResolver
from gatepass.asgi.cors import CORSMiddleware
from gatepass.asgi.csrf import CSRFMiddleware
from gatepass.asgi.headers import SecurityHeadersMiddleware
from gatepass.asgi.limits import RequestLimitsMiddleware
from gatepass.asgi.middleware import AuthMiddleware, Receive, Scope, Send
from gatepass.asgi.proxies import TrustedProxyMiddleware
from gatepass.errors import GatepassError
from gatepass.server import account_api, account_pages, api, oauth_routes, openapi, pages, token_api
from gatepass.server.components import Components, users_roles
from gatepass.server.html_errors import HTMLErrorPages
from gatepass.server.settings import Settings

logger = logging.getLogger("gatepass.server")

PURGE_INTERVAL = 60.0


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
    return JSONResponse(
        {"error": code, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
    )


#: Titles and words for the HTML error pages; the detail comes from the error.
_ERROR_PAGES = {
    404: ("Page not found", "There is nothing at this address."),
    405: ("Not allowed", "This address does not answer that kind of request."),
    503: ("Temporarily unavailable", "The service cannot reach its storage right now. "
          "Please try again in a few moments."),
}  # fmt: skip


def _error_renderer(parts: Components) -> Callable[[int, str, str], bytes]:
    template = parts.templates.get_template("error.html")

    def render(status: int, code: str, detail: str) -> bytes:
        title, words = _ERROR_PAGES.get(status, ("Something went wrong", detail))
        links = [("/", "Home")] if status == 404 else [("/", "Try again")]
        return template.render(
            title=title, site_name=pages.SITE_NAME, detail=words, links=links,
            signed_in=False, csrf_token=lambda: "", message=None, message_ok=False, narrow=True,
        ).encode()  # fmt: skip

    return render


def build_app(parts: Components) -> Starlette:
    settings = parts.settings
    # Outermost first.  Security headers wrap everything, the limits' own
    # 413/431 answers included; limits run before anything parses; the client
    # address is settled before sessions record it; CSRF runs after the
    # session is known, since its token is bound to it.
    middleware = [
        Middleware(SecurityHeadersMiddleware),
        Middleware(RequestLimitsMiddleware, max_body_bytes=max(settings.max_body_bytes, 1 << 20)),
        # Inside the security headers, so its pages get the same CSP.
        Middleware(HTMLErrorPages, render=_error_renderer(parts)),
        Middleware(CORSMiddleware, origins=settings.cors_origins),
        Middleware(TrustedProxyMiddleware, proxies=parts.proxies),
        Middleware(
            AuthMiddleware,
            sessions=parts.sessions,
            cookie=parts.cookie,
            permissions=parts.permissions,
            bearer=BearerResolver(
                parts.tokens.verify,
                parts.permissions,
                cookie=ACCESS_COOKIE if settings.browser_mode == "jwt" else None,
                roles_loader=users_roles(parts.accounts.users) if settings.jwt_stateful else None,
            ),
        ),
        Middleware(
            CSRFMiddleware,
            signer=parts.csrf,
            trusted_origins=parts.trusted_origins,
            max_form_bytes=settings.max_body_bytes,
            exempt_paths=token_api.CSRF_EXEMPT,
        ),
    ]
    app = Starlette(
        routes=[
            *api.routes, *token_api.routes, *account_api.routes, *oauth_routes.routes,
            *openapi.routes, *pages.routes, *account_pages.routes,
        ],
        middleware=middleware,
        exception_handlers={HTTPException: http_error},
    )
    app.state.components = parts
    app.state.page_templates = Jinja2Templates(env=parts.templates)
    app.state.static = pages.static_files(settings.templates_dir)
    #: Background rediscoveries of providers that were down (oauth_routes).
    app.state.rediscovering = {}
    # Authorization codes and states travel in callback URLs: keep them out
    # of the access log (idempotent: the same filter object is added once).
    logging.getLogger("uvicorn.access").addFilter(oauth_routes.ACCESS_LOG_FILTER)
    return app


class Server:
    """ASGI app that owns its components for the length of the lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.components: Components | None = None
        self.app: Starlette | None = None
        self._purger: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.components = await Components.open(self.settings)
        await self.components.mailer.start()
        self.app = build_app(self.components)
        self._purger = asyncio.create_task(self._purge_forever())

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        if self.components is not None:
            # Before the stores close: queued mail is sent or kept in the outbox.
            await self.components.mailer.stop()
            await self.components.close()

    async def _purge_forever(self) -> None:
        """Housekeeping once a minute: expired rows out, signing key rotated when due."""
        parts = self.components
        assert parts is not None
        settings = parts.settings
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            now = parts.sessions.clock()
            for name, store in (
                ("sessions", parts.sessions.store),
                ("refresh families", parts.tokens.refresh_store),
                ("revocations", parts.tokens.revocation),
            ):
                try:
                    removed = await store.purge_expired(now)
                    if removed:
                        logger.info("purged %d expired %s", removed, name)
                except GatepassError:
                    logger.warning("purge of %s skipped: store unavailable", name)
            rotated = await asyncio.to_thread(
                parts.keys.rotate_if_due,
                settings.key_rotation_days * 86400,
                settings.access_token_ttl + parts.tokens.codec.leeway,
            )
            if rotated:
                logger.info("signing key rotated (scheduled)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self.app is None:
            raise RuntimeError("The server has not been started (no lifespan).")
        await self.app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:  # reported to the ASGI server, which exits
                    # Our own errors carry vetted text; a driver's may quote a
                    # URL with its password, so only its type is told.
                    reason = exc.detail if isinstance(exc, GatepassError) else type(exc).__name__
                    logger.error("start-up failed: %s", reason)
                    await send({"type": "lifespan.startup.failed", "message": reason})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: Settings | None = None) -> Server:
    return Server(settings or Settings.load())
