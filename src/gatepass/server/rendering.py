"""Rendering the server's pages: one place for the page layout's values
and the error page, used by the pages and the OAuth routes alike."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from gatepass.asgi.csrf import csrf_token
from gatepass.identity import Identity
from gatepass.server.components import components

__all__ = ["NO_STORE", "SITE_NAME", "error_page", "render", "templates"]

NO_STORE = {"cache-control": "no-store"}
SITE_NAME = "gatepass"


def templates(request: Request) -> Jinja2Templates:
    found: Jinja2Templates = components(request).page_templates
    return found


def render(
    request: Request,
    name: str,
    title: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    """A page; every one is ``no-store`` (they show who is signed in, and CSRF tokens)."""
    user = request.scope.get("user")
    values = {
        "title": title,
        "site_name": SITE_NAME,
        "signed_in": isinstance(user, Identity),
        # Called by the templates that have a form: a page without one sets
        # no CSRF cookie.
        "csrf_token": lambda: csrf_token(request),
        "message": None,
        "message_ok": False,
        "narrow": False,
        **context,
    }
    return templates(request).TemplateResponse(
        request, name, values, status_code=status, headers={**NO_STORE, **(headers or {})}
    )


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    if status in (400, 401, 403, 409, 503):  # a failed or refused sign-in: try again
        links = [("/login", "Back to sign-in"), ("/", "Home")]
    else:
        links = [("/", "Home")]
    return render(request, "error.html", title, status, detail=detail, links=links, narrow=True)
