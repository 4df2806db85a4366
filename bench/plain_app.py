"""The honest baseline: the same plain Starlette route with no gatepass at all.

``bench/app.py`` serves ``/plain`` too, but inside gatepass's middleware, so a
ratio against it hides what the middleware costs every request.  Ratios in
the results are against this app, run by the same server in the same run;
the in-stack ratio is kept as a second, labelled figure.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


async def plain(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/plain", plain, methods=["GET", "POST"])])
