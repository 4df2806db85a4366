"""``GET /openapi.json``: an OpenAPI 3.1 description of the server's JSON API.

Built from the app's own routes and the declarations beside them
(:mod:`gatepass.server.apidoc`), so every operation listed is one the app
serves.  ``tests/server/test_openapi.py`` validates the document and holds
it to the route table; ``tests/fuzz/test_schemathesis.py`` fuzzes a real
server against it, so every status listed is one the server really produces.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

import gatepass
from gatepass.server import apidoc
from gatepass.server.apidoc import PUBLIC, ApiDocs, Operation, Schema, json_content
from gatepass.server.components import components


def document(routes: Iterable[BaseRoute], public_url: str | None = None) -> Schema:
    """The document for these routes (a fresh one), with ``servers`` when a URL is given.

    Raises :class:`~gatepass.server.apidoc.DocumentationError` when a
    route and the declarations disagree.
    """
    paths, schemas = apidoc.describe(routes)
    doc: Schema = {
        "openapi": "3.1.0",
        "info": {
            "title": "gatepass",
            "version": gatepass.__version__,
            "description": "Sessions, tokens and login: the JSON API of `gatepass serve`.  "
            'Errors are `{"error": "<code>", "detail": "<human text>"}`.  '
            "With `GATEPASS_MFA_REQUIRED_ROLES`, a login of such a role without a second "
            "factor gets 403 `mfa_enrollment_required` from every operation but "
            "`/auth/me`, `/auth/logout`, `/auth/csrf`, `/auth/refresh`, the sign-in "
            "operations and TOTP enrolment (`/auth/mfa`, `/auth/mfa/totp/setup`, "
            "`/auth/mfa/totp/qr.svg`, `/auth/mfa/totp/confirm`).",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": apidoc.SECURITY_SCHEMES},
    }
    if public_url:
        doc["servers"] = [{"url": public_url}]
    # The declarations' own objects never leave: a caller may change its copy.
    return copy.deepcopy(doc)


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document(request.app.routes, components(request).settings.public_url))


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]

api_docs = ApiDocs(
    {
        ("/openapi.json", "GET"): Operation(
            "This document.",
            {"200": {"description": "OK", **json_content({"type": "object"})}},
            security=PUBLIC,
        ),
    }
)
