"""The ``gatepass serve`` application: the server's routes behind the library's stack."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gatepass.asgi.stack import Layers
from gatepass.integration import Gatepass
from gatepass.server import (
    account_api,
    account_pages,
    api,
    dbsc_routes,
    forward_auth,
    mfa_pages,
    mfa_routes,
    oauth_routes,
    openapi,
    pages,
    passkey_pages,
    passkey_routes,
    token_api,
)
from gatepass.server.components import Components
from gatepass.server.html_errors import Renderer
from gatepass.server.mfa_policy import MFAPolicyMiddleware
from gatepass.server.rendering import SITE_NAME
from gatepass.server.settings import Settings


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


def _error_renderer(parts: Components) -> Renderer:
    template = parts.templates.get_template("error.html")

    def render(status: int, code: str, detail: str) -> bytes:
        title, words = _ERROR_PAGES.get(status, ("Something went wrong", detail))
        links = [("/", "Home")] if status == 404 else [("/", "Try again")]
        return template.render(
            title=title, site_name=SITE_NAME, detail=words, links=links,
            signed_in=False, csrf_token=lambda: "", message=None, message_ok=False, narrow=True,
        ).encode()  # fmt: skip

    return render


def create_app(settings: Settings | None = None) -> Starlette:
    """The server: its routes behind :func:`gatepass.install`'s stack, the very
    call library users make, so the two cannot drift."""
    settings = settings or Settings.load()
    app = Starlette(
        routes=[
            # First: a proxy asks /auth/verify on every request it passes on,
            # and Starlette tries routes in order.
            *forward_auth.routes,
            *api.routes,
            *token_api.routes,
            *mfa_routes.routes,
            *passkey_routes.routes,
            *oauth_routes.routes,
            *account_api.routes,
            *dbsc_routes.routes,
            *openapi.routes,
            *pages.routes,
            *account_pages.routes,
            *passkey_pages.routes,
            *mfa_pages.routes,
        ],
        exception_handlers={HTTPException: http_error},
        # Inside gatepass's stack (added below, outermost): sees scope["user"].
        middleware=[Middleware(MFAPolicyMiddleware, roles=settings.mfa_required_roles)],
    )
    # The token endpoints take their credential in the body, never a cookie;
    # browsers that ask for HTML get error pages, not JSON.
    layers = Layers(
        csrf_exempt=tuple(
            token_api.CSRF_EXEMPT
            | mfa_routes.CSRF_EXEMPT
            | passkey_routes.CSRF_EXEMPT
            | dbsc_routes.CSRF_EXEMPT
        ),
        error_pages=_error_renderer,
    )
    app.state.gatepass = Gatepass(settings, layers=layers).install(app)
    app.state.static = pages.static_files(settings.templates_dir)
    #: Background rediscoveries of providers that were down (oauth_routes).
    app.state.rediscovering = {}
    # Authorization codes and states travel in callback URLs: keep them out
    # of the access log (idempotent: the same filter object is added once).
    logging.getLogger("uvicorn.access").addFilter(oauth_routes.ACCESS_LOG_FILTER)
    return app
