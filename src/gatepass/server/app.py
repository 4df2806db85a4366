"""The ``gatepass serve`` application: the server's routes behind the library's stack."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gatepass.asgi.stack import Layers
from gatepass.integration import Gatepass
from gatepass.server import api, forward_auth, oauth_routes, openapi, pages, token_api
from gatepass.server.settings import Settings


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
    return JSONResponse(
        {"error": code, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
    )


def create_app(settings: Settings | None = None) -> Starlette:
    """The server: its routes behind :func:`gatepass.install`'s stack, the very
    call library users make, so the two cannot drift."""
    settings = settings or Settings.load()
    app = Starlette(
        routes=[
            *api.routes, *token_api.routes, *forward_auth.routes, *oauth_routes.routes,
            *openapi.routes, *pages.routes,
        ],
        exception_handlers={HTTPException: http_error},
    )
    # The token endpoints take their credential in the body, never a cookie.
    layers = Layers(csrf_exempt=tuple(token_api.CSRF_EXEMPT))
    app.state.gatepass = Gatepass(settings, layers=layers).install(app)
    # Authorization codes and states travel in callback URLs: keep them out
    # of the access log (idempotent: the same filter object is added once).
    logging.getLogger("uvicorn.access").addFilter(oauth_routes.ACCESS_LOG_FILTER)
    return app
