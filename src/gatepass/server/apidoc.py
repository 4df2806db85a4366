"""The OpenAPI declarations that live beside each route, and the document built from them.

A module with JSON routes exposes, next to its ``routes``, an ``api_docs``
(:class:`ApiDocs`): one :class:`Operation` per ``(path, METHOD)`` it serves,
and the component schemas only its operations use.  ``GET /openapi.json``
(:mod:`gatepass.server.openapi`) walks the app's real routes and asks each
route's module for its declaration, so the document cannot describe a route
the app lacks, nor miss one a documented module serves: either is a
:class:`DocumentationError` (``tests/server/test_openapi.py``).  Modules
without ``api_docs`` serve pages and redirects, which are not the JSON API.

What every operation shares is added here, so each declaration lists only
what is its own: 401 for an ``Authorization: Bearer`` that does not verify
(RFC 6750: never "anonymous"), 431 for oversized headers, 413 for a body over
the cap, 503 when a store the request needs is down; on unsafe methods the
403 of the CSRF checks (unless ``csrf=False``); with a body, the 400 for a
malformed one (JSON endpoints refuse ``text/plain`` and forms with 400, not
415).  The schemas used across modules (the error body, the user, the token
pair) are :data:`SHARED_SCHEMAS`, here and only here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Route

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

Schema = dict[str, Any]

#: The HTTP methods an OpenAPI path item holds, in the order they are listed.
METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "TRACE")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class Operation:
    """One documented operation: what is particular to it.

    ``responses`` maps a status (``"200"``) to an OpenAPI response object;
    the statuses every route can give are added when the document is built
    (see the module's text), so a declaration names only its own.
    """

    summary: str
    responses: Mapping[str, Schema]
    security: Sequence[Schema]
    body: Schema | None = None
    parameters: Sequence[Schema] = ()
    #: Unsafe methods: whether the CSRF middleware checks the request (403).
    csrf: bool = True


@dataclass(frozen=True)
class ApiDocs:
    """A module's declarations: ``(path, METHOD)`` → :class:`Operation`."""

    operations: Mapping[tuple[str, str], Operation]
    #: Component schemas only this module's operations use (by name).
    schemas: Mapping[str, Schema] = field(default_factory=dict)


class DocumentationError(Exception):
    """A route without a declaration, or a declaration without a route."""


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: Schema) -> Schema:
    return {"content": {JSON: {"schema": schema}}}


def error(description: str, *, headers: Schema | None = None) -> Schema:
    """An error answer: the shared ``Error`` body."""
    answer: Schema = {"description": description, **json_content(ref("Error"))}
    if headers:
        answer["headers"] = headers
    return answer


def body(schema: Schema, *, form: bool = False, required: bool = True) -> Schema:
    """A request body in JSON (and as a form, for the browser endpoints)."""
    content: Schema = {JSON: {"schema": schema}}
    if form:
        # A form field is a string, and appears once (a repeated field is
        # refused with 400: nobody can say which value was meant).
        content[FORM] = {"schema": {"allOf": [schema], "additionalProperties": {"type": "string"}}}
    return {"required": required, "content": content}


def path_parameter(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


WWW_AUTHENTICATE: Schema = {
    "WWW-Authenticate": {
        "description": 'RFC 6750 challenge: `Bearer realm="gatepass"`, with `error=` when '
        "a token was refused.",
        "required": True,
        "schema": {"type": "string"},
    }
}
RETRY_AFTER: Schema = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
NO_STORE: Schema = {"Cache-Control": {"schema": {"const": "no-store"}, "required": True}}

#: A password being set: the policy's bounds (400 `weak_password` otherwise).
NEW_PASSWORD: Schema = {
    "type": "string",
    "minLength": 8,
    "maxLength": 1024,
    "description": "8 to 1024 characters (400 `weak_password` otherwise).",
}

#: Who may call: any of these alternatives.
PUBLIC: list[Schema] = [{}]
USER: list[Schema] = [{"sessionCookie": []}, {"bearerAuth": []}]
USER_UNSAFE: list[Schema] = [{"sessionCookie": [], "csrfHeader": []}, {"bearerAuth": []}]
ANONYMOUS_UNSAFE: list[Schema] = [
    {"csrfHeader": [], "csrfCookie": []},
    {"sessionCookie": [], "csrfHeader": []},
    {"bearerAuth": []},
]

SECURITY_SCHEMES: Schema = {
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "__Host-gatepass",
        "description": "The browser session (opaque id; Secure, HttpOnly, SameSite=Lax).",
    },
    "csrfHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": "Needed on state-changing requests that a cookie authenticates: the "
        "value of the `__Host-gatepass-csrf` cookie or of `GET /auth/csrf`.",
    },
    "csrfCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "__Host-gatepass-csrf",
        "description": "Before login, the CSRF check is a signed double-submit: the header "
        "must equal this cookie.",
    },
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from `POST /auth/token` or `POST /auth/refresh`.",
    },
}

#: The schemas that more than one module's operations use.
SHARED_SCHEMAS: Schema = {
    "Error": {
        "type": "object",
        "description": "Every error answer: a stable code and a human text (never request data).",
        "required": ["error", "detail"],
        "properties": {
            "error": {
                "type": "string",
                "examples": [
                    "invalid_request",
                    "invalid_credentials",
                    "invalid_token",
                    "invalid_grant",
                    "not_authenticated",
                    "csrf_failed",
                    "forbidden",
                    "not_found",
                    "user_exists",
                    "weak_password",
                    "payload_too_large",
                    "rate_limited",
                    "store_unavailable",
                    "request_header_fields_too_large",
                    "invalid_scope",
                ],
            },
            "detail": {"type": "string"},
            "mfa_token": {
                "type": "string",
                "description": "Only with `mfa_required`: send it to `POST /auth/mfa/verify` "
                "with a code, from the same client, within 5 minutes (single use; void after "
                "5 attempts).",
            },
            "methods": {
                "type": "array",
                "items": {"enum": ["totp", "recovery_code"]},
                "description": "Only with `mfa_required`: what the second step accepts.",
            },
        },
        "additionalProperties": False,
    },
    "User": {
        "type": "object",
        "required": ["id", "email", "roles", "email_verified"],
        "properties": {
            "id": {"type": "string"},
            "email": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string"}},
            "email_verified": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    "LoggedIn": {
        "type": "object",
        "required": ["user"],
        "properties": {"user": ref("User")},
        "additionalProperties": False,
    },
    "TokenPair": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "refresh_token", "scope"],
        "properties": {
            "access_token": {"type": "string", "description": "A JWT (`typ` at+jwt)."},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer", "minimum": 1},
            "scope": {
                "type": "string",
                "description": "The scopes granted (space-separated): those requested that "
                "the user's roles allow (GATEPASS_TOKEN_SCOPES).",
            },
            "refresh_token": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}$",
            },
        },
        "additionalProperties": False,
    },
    "Empty": {"type": "object", "maxProperties": 0},
}


def _complete(method: str, op: Operation) -> Schema:
    """The operation object, with the answers every route can give added."""
    answers = dict(op.responses)
    answers.setdefault(
        "401",
        error(
            "Not authenticated, or an `Authorization: Bearer` token that does not verify.",
            headers=WWW_AUTHENTICATE,
        ),
    )
    if method not in SAFE_METHODS and op.csrf:
        answers.setdefault("403", error("The CSRF checks failed (`csrf_failed`)."))
    if op.body is not None:
        answers.setdefault(
            "400", error("Malformed: not `application/json`, not a JSON object, bad fields.")
        )
    answers.setdefault("413", error("The body is over the limit (`payload_too_large`)."))
    answers.setdefault("431", error("The request headers are too large."))
    answers.setdefault(
        "503", error("A store the request needs is unreachable (`store_unavailable`).")
    )
    out: Schema = {"summary": op.summary, "security": list(op.security)}
    if op.parameters:
        out["parameters"] = list(op.parameters)
    if op.body is not None:
        out["requestBody"] = op.body
    out["responses"] = dict(sorted(answers.items()))
    return out


def docs_of(route: Route) -> ApiDocs | None:
    """The declarations of the module that defines the route's endpoint."""
    module = sys.modules.get(getattr(route.endpoint, "__module__", ""))
    docs = getattr(module, "api_docs", None)
    if docs is not None and not isinstance(docs, ApiDocs):
        raise DocumentationError(f"{module.__name__}.api_docs is not an ApiDocs")  # type: ignore[union-attr]
    return docs


def _openapi_path(path: str) -> str:
    # Starlette's "{id:int}" is OpenAPI's "{id}".
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)


def describe(routes: Iterable[BaseRoute]) -> tuple[Schema, Schema]:
    """``paths`` and ``components.schemas`` for the routes, in their order.

    Raises :class:`DocumentationError` for a route of a documented module
    without its :class:`Operation`, an :class:`Operation` whose route is not
    among ``routes``, or one schema name declared twice.
    """
    paths: Schema = {}
    schemas: Schema = dict(SHARED_SCHEMAS)
    used: set[tuple[str, str]] = set()
    seen: list[ApiDocs] = []
    for route in routes:
        if not isinstance(route, Route):
            continue
        docs = docs_of(route)
        if docs is None:
            continue
        if all(docs is not other for other in seen):
            seen.append(docs)
            for name, schema in docs.schemas.items():
                if name in schemas:
                    raise DocumentationError(f"schema {name!r} is declared twice")
                schemas[name] = schema
        for method in METHODS:
            if method not in (route.methods or ()):
                continue
            op = docs.operations.get((route.path, method))
            if op is None:
                raise DocumentationError(
                    f"{method} {route.path} has no Operation in "
                    f"{route.endpoint.__module__}.api_docs"
                )
            used.add((route.path, method))
            item = paths.setdefault(_openapi_path(route.path), {})
            item[method.lower()] = _complete(method, op)
    for docs in seen:
        for path, method in docs.operations:
            if (path, method) not in used:
                raise DocumentationError(f"{method} {path} is documented but no route serves it")
    return paths, schemas
