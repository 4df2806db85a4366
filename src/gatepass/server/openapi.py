"""``GET /openapi.json``: an OpenAPI 3.1 description of the server's JSON API.

Assembled by hand from the routes in :mod:`gatepass.server.api` and
:mod:`gatepass.server.token_api` and the middleware in :mod:`gatepass.asgi`,
so every status listed is one the server really produces:

* every route: 401 for an ``Authorization: Bearer`` that does not verify
  (RFC 6750: never "anonymous"), 431 for oversized headers, 413 for a
  declared body over the cap, 503 when a store the request needs is down;
* unsafe methods outside the CSRF-exempt token endpoints: 403 ``csrf_failed``;
* the endpoints that read a body: 400 for a malformed one (wrong
  ``Content-Type`` included: JSON endpoints refuse ``text/plain`` and forms
  with 400, not 415) and 413 past the 64 KiB read limit.

``tests/server/test_openapi.py`` holds the document and the route table equal
and validates it; ``tests/fuzz/test_schemathesis.py`` fuzzes a real server
against it.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import gatepass
from gatepass.server.components import components

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

Schema = dict[str, Any]


#: A password being set: the policy's bounds (400 `weak_password` otherwise).
_NEW_PASSWORD = {
    "type": "string",
    "minLength": 8,
    "maxLength": 1024,
    "description": "8 to 1024 characters (400 `weak_password` otherwise).",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {"content": {JSON: {"schema": schema}}}


def _error(description: str, *, headers: Schema | None = None) -> Schema:
    answer: Schema = {"description": description, **_json(_ref("Error"))}
    if headers:
        answer["headers"] = headers
    return answer


_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": 'RFC 6750 challenge: `Bearer realm="gatepass"`, with `error=` when '
        "a token was refused.",
        "required": True,
        "schema": {"type": "string"},
    }
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}

_SCHEMAS: Schema = {
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
    "Credentials": {
        "type": "object",
        "description": "Unknown members are ignored.",
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "password": {
                "type": "string",
                "minLength": 1,
                "description": "Never truncated; over 4 KiB is refused (413) before hashing.",
            },
        },
    },
    "Registration": {
        "type": "object",
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "password": {
                "type": "string",
                "minLength": 8,
                "maxLength": 1024,
                "description": "8 to 1024 characters (400 `weak_password` otherwise).",
            },
        },
    },
    "Login": {
        "type": "object",
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "password": {"type": "string", "minLength": 1},
            "remember": {
                "description": "A persistent cookie and a longer session.",
                "oneOf": [
                    {"type": "boolean"},
                    {"type": "string", "enum": ["", "on", "true", "1", "false", "0"]},
                ],
            },
            "csrf_token": {"type": "string", "description": "Form posts only."},
        },
    },
    "TokenRequest": {
        "type": "object",
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "password": {"type": "string", "minLength": 1},
            "scope": {
                "type": "string",
                "maxLength": 1024,
                "description": "Space-separated scopes.",
            },
        },
    },
    "RefreshRequest": {
        "type": "object",
        "properties": {
            "refresh_token": {
                "type": "string",
                "description": "Omitted: the `__Host-gatepass-rt` cookie is used (browser JWT "
                "mode), with the CSRF checks.",
            }
        },
    },
    "RevokeRequest": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string", "minLength": 1}},
    },
    "MFAStatus": {
        "type": "object",
        "required": ["totp", "recovery_codes_left", "methods"],
        "properties": {
            "totp": {"type": "boolean"},
            "recovery_codes_left": {"type": "integer", "minimum": 0},
            "methods": {"type": "array", "items": {"enum": ["totp", "recovery_code"]}},
        },
        "additionalProperties": False,
    },
    "TotpSetup": {
        "type": "object",
        "required": ["secret", "otpauth_uri"],
        "properties": {
            "secret": {"type": "string", "pattern": "^[A-Z2-7]{32}$"},
            "otpauth_uri": {"type": "string", "pattern": "^otpauth://totp/"},
        },
        "additionalProperties": False,
    },
    "TotpCode": {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string", "minLength": 1, "maxLength": 64}},
    },
    "RecoveryCodes": {
        "type": "object",
        "required": ["recovery_codes"],
        "properties": {
            "recovery_codes": {
                "type": "array",
                "minItems": 10,
                "maxItems": 10,
                "items": {"type": "string", "pattern": "^[a-z2-9]{4}(-[a-z2-9]{4}){3}$"},
                "description": "Shown once; each works once.  Only their hashes are kept.",
            }
        },
        "additionalProperties": False,
    },
    "Reauthentication": {
        "type": "object",
        "description": "The password, or a TOTP or recovery code; neither is needed when "
        "the caller signed in within the last 5 minutes.",
        "properties": {
            "password": {"type": "string", "minLength": 1},
            "code": {"type": "string", "minLength": 1, "maxLength": 64},
        },
    },
    "MFAVerify": {
        "type": "object",
        "required": ["mfa_token", "code"],
        "properties": {
            "mfa_token": {"type": "string", "minLength": 1},
            "code": {
                "type": "string",
                "minLength": 1,
                "maxLength": 64,
                "description": "A TOTP code or a recovery code.",
            },
        },
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
    "Empty": {"type": "object", "maxProperties": 0},
    "ForgotRequest": {
        "type": "object",
        "required": ["email"],
        "properties": {"email": {"type": "string", "minLength": 1, "maxLength": 1024}},
    },
    "ResetRequest": {
        "type": "object",
        "required": ["token", "password"],
        "properties": {
            "token": {"type": "string", "description": "From the mailed link."},
            "password": _NEW_PASSWORD,
        },
    },
    "ChangePasswordRequest": {
        "type": "object",
        "required": ["current_password", "new_password"],
        "properties": {
            "current_password": {"type": "string", "minLength": 1},
            "new_password": _NEW_PASSWORD,
        },
    },
    "VerifyEmailRequest": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string", "description": "From the mailed link."}},
    },
    "Registered": {
        "type": "object",
        "required": ["id", "email"],
        "properties": {"id": {"type": "string"}, "email": {"type": "string"}},
        "additionalProperties": False,
    },
    "LoggedIn": {
        "type": "object",
        "required": ["user"],
        "properties": {"user": _ref("User")},
        "additionalProperties": False,
    },
    "CSRFToken": {
        "type": "object",
        "required": ["csrf_token"],
        "properties": {"csrf_token": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}},
        "additionalProperties": False,
    },
    "Session": {
        "type": "object",
        "description": "A login: one sign-in and every credential it produced.",
        "required": ["id", "kind", "created_at", "last_seen_at", "ip", "user_agent", "current"],
        "properties": {
            "id": {"type": "string", "description": "Public id (not a credential)."},
            "kind": {
                "enum": ["session", "browser", "api"],
                "description": "A cookie session, a browser login in JWT mode, or an API "
                "token pair.",
            },
            "created_at": {"type": "string", "format": "date-time"},
            "last_seen_at": {"type": "string", "format": "date-time"},
            "ip": {"type": ["string", "null"]},
            "user_agent": {"type": ["string", "null"]},
            "current": {"type": "boolean"},
            "device_bound": {
                "type": "boolean",
                "description": "Bound to a key its browser keeps (device-bound sessions).",
            },
        },
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
    "CookieRefresh": {
        "type": "object",
        "description": "Browser JWT mode: the new pair went into HttpOnly cookies.",
        "required": ["expires_in"],
        "properties": {"expires_in": {"type": "integer", "minimum": 1}},
        "additionalProperties": False,
    },
    "JWKS": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "kid", "alg", "use"],
                    "properties": {
                        "kty": {"enum": ["RSA", "EC", "OKP"]},
                        "kid": {"type": "string"},
                        "alg": {"enum": ["RS256", "ES256", "EdDSA"]},
                        "use": {"const": "sig"},
                        "n": {"type": "string"},
                        "e": {"type": "string"},
                        "crv": {"type": "string"},
                        "x": {"type": "string"},
                        "y": {"type": "string"},
                    },
                    # Public members only: d, p, q, dp, dq, qi, oth, k never appear.
                    "additionalProperties": False,
                },
            }
        },
        "additionalProperties": False,
    },
    "AdminUser": {
        "type": "object",
        "required": ["id", "email", "roles", "email_verified", "disabled", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "email": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string"}},
            "email_verified": {"type": "boolean"},
            "disabled": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
        },
        "additionalProperties": False,
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
        "additionalProperties": False,
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["ready", "unavailable"]},
            "checks": {
                "type": "object",
                "additionalProperties": {"enum": ["ok", "unavailable", "error"]},
            },
            "providers": {
                "type": "object",
                "description": "Each configured sign-in provider's status (reported, not "
                "required: password sign-in works without them).",
                "additionalProperties": {"type": "string"},
            },
        },
        "additionalProperties": False,
    },
}

_SECURITY_SCHEMES: Schema = {
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

#: Who may call: any of these alternatives.
_PUBLIC: list[Schema] = [{}]
_USER: list[Schema] = [{"sessionCookie": []}, {"bearerAuth": []}]
_USER_UNSAFE: list[Schema] = [{"sessionCookie": [], "csrfHeader": []}, {"bearerAuth": []}]
_ANONYMOUS_UNSAFE: list[Schema] = [
    {"csrfHeader": [], "csrfCookie": []},
    {"sessionCookie": [], "csrfHeader": []},
    {"bearerAuth": []},
]


def _operation(
    summary: str,
    responses: Schema,
    *,
    security: list[Schema],
    body: Schema | None = None,
    unsafe: bool = False,
    csrf: bool = True,
    parameters: list[Schema] | None = None,
) -> Schema:
    """One operation, with the answers every route can give added."""
    answers = dict(responses)
    answers.setdefault(
        "401",
        _error(
            "Not authenticated, or an `Authorization: Bearer` token that does not verify.",
            headers=_WWW_AUTHENTICATE,
        ),
    )
    if unsafe and csrf:
        answers.setdefault("403", _error("The CSRF checks failed (`csrf_failed`)."))
    if body is not None:
        answers.setdefault(
            "400", _error("Malformed: not `application/json`, not a JSON object, bad fields.")
        )
    answers.setdefault("413", _error("The body is over the limit (`payload_too_large`)."))
    answers.setdefault("431", _error("The request headers are too large."))
    answers.setdefault(
        "503",
        _error("A store the request needs is unreachable (`store_unavailable`)."),
    )
    op: Schema = {"summary": summary, "security": security}
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    op["responses"] = dict(sorted(answers.items()))
    return op


def _body(schema: Schema, *, form: bool = False, required: bool = True) -> Schema:
    content: Schema = {JSON: {"schema": schema}}
    if form:
        # A form field is a string, and appears once (a repeated field is
        # refused with 400: nobody can say which value was meant).
        content[FORM] = {"schema": {"allOf": [schema], "additionalProperties": {"type": "string"}}}
    return {"required": required, "content": content}


_NO_STORE = {"Cache-Control": {"schema": {"const": "no-store"}, "required": True}}


def _paths() -> Schema:
    ok = "OK"
    empty = {"description": "Done (no body)."}
    return {
        "/auth/register": {
            "post": _operation(
                "Create an account (when registration is open).",
                {
                    "201": {"description": "Created.", **_json(_ref("Registered"))},
                    "400": _error("Malformed request, invalid email or weak password."),
                    "403": _error("The CSRF checks failed, or registration is closed."),
                    "409": _error("An account with this email already exists (`user_exists`)."),
                    "429": _error(
                        "Too many registrations from this address (`rate_limited`; "
                        "GATEPASS_REGISTRATION_LIMIT an hour).",
                        headers=_RETRY_AFTER,
                    ),
                },
                security=_ANONYMOUS_UNSAFE,
                body=_body(_ref("Registration")),
                unsafe=True,
            )
        },
        "/auth/login": {
            "post": _operation(
                "Browser login: a fresh session cookie and CSRF cookie.",
                {
                    "200": {"description": ok, **_json(_ref("LoggedIn"))},
                    "401": _error(
                        "`invalid_credentials`: the same for an unknown user, a wrong password "
                        "and a disabled account; or `mfa_required` (right password, the user "
                        "has a second factor) with an `mfa_token` for `POST /auth/mfa/verify`.",
                        headers=_WWW_AUTHENTICATE,
                    ),
                    "429": _error("Throttled (`rate_limited`).", headers=_RETRY_AFTER),
                    "403": _error(
                        "The CSRF checks failed, or `email_unverified`: the password is right "
                        "but the email is not verified (GATEPASS_EMAIL_VERIFICATION=required)."
                    ),
                },
                security=_ANONYMOUS_UNSAFE,
                body=_body(_ref("Login"), form=True),
                unsafe=True,
            )
        },
        "/auth/logout": {
            "post": _operation(
                "End the session (or the token and its family); clear the cookies.",
                {"204": empty},
                security=[*_ANONYMOUS_UNSAFE],
                unsafe=True,
            )
        },
        "/auth/me": {
            "get": _operation(
                "Who am I.",
                {
                    "200": {"description": ok, **_json(_ref("User"))},
                    "404": _error("The account no longer exists."),
                },
                security=_USER,
            )
        },
        "/auth/csrf": {
            "get": _operation(
                "The CSRF token for this session (also set in `__Host-gatepass-csrf`).",
                {"200": {"description": ok, **_json(_ref("CSRFToken"))}},
                security=_PUBLIC,
            )
        },
        "/auth/sessions": {
            "get": _operation(
                "My live logins, whatever their kind (sessions, browser-JWT logins, API tokens).",
                {
                    "200": {
                        "description": ok,
                        **_json({"type": "array", "items": _ref("Session")}),
                    }
                },
                security=_USER,
            )
        },
        "/auth/sessions/revoke-others": {
            "post": _operation(
                "End every other login (every kind of credential).",
                {"204": empty},
                security=_USER_UNSAFE,
                unsafe=True,
            )
        },
        "/auth/sessions/{session_id}": {
            "delete": _operation(
                "End one of my logins: its session, or its refresh family and access tokens.",
                {"204": empty, "404": _error("I have no such login.")},
                security=_USER_UNSAFE,
                unsafe=True,
                parameters=[
                    {
                        "name": "session_id",
                        "in": "path",
                        "required": True,
                        "description": "The public id from `GET /auth/sessions`.",
                        "schema": {"type": "string"},
                    }
                ],
            )
        },
        **_account_paths(),
        **_dbsc_paths(),
        "/auth/token": {
            "post": _operation(
                "Password grant for API clients: an access token and a refresh token.",
                {
                    "200": {
                        "description": ok,
                        "headers": _NO_STORE,
                        **_json(_ref("TokenPair")),
                    },
                    "401": _error(
                        "`invalid_credentials`, a Bearer token that does not verify, or "
                        "`mfa_required` with an `mfa_token` for `POST /auth/mfa/verify`.",
                        headers=_WWW_AUTHENTICATE,
                    ),
                    "400": _error("Malformed request, or an unknown scope (`invalid_scope`)."),
                    "403": _error(
                        "`email_unverified`: the password is right but the email is not "
                        "verified yet (GATEPASS_EMAIL_VERIFICATION=required)."
                    ),
                    "429": _error("Throttled (`rate_limited`).", headers=_RETRY_AFTER),
                },
                security=_PUBLIC,
                body=_body(_ref("TokenRequest")),
                unsafe=True,
                csrf=False,
            )
        },
        "/auth/refresh": {
            "post": _operation(
                "Rotate a refresh token: a new pair.  Reuse of a rotated token revokes its family.",
                {
                    "200": {
                        "description": ok,
                        "headers": _NO_STORE,
                        **_json({"anyOf": [_ref("TokenPair"), _ref("CookieRefresh")]}),
                    },
                    "401": _error(
                        "`invalid_grant`: expired, revoked, reused, unknown or missing.",
                        headers=_WWW_AUTHENTICATE,
                    ),
                    "403": _error("The refresh cookie was used without passing the CSRF checks."),
                },
                security=_PUBLIC,
                body=_body(_ref("RefreshRequest"), required=False),
                unsafe=True,
                csrf=False,
            )
        },
        "/auth/revoke": {
            "post": _operation(
                "RFC 7009: revoke an access or refresh token; 200 whether or not it was valid.",
                {
                    "200": {
                        "description": ok,
                        "headers": _NO_STORE,
                        **_json({"type": "object", "maxProperties": 0}),
                    }
                },
                security=_PUBLIC,
                body=_body(_ref("RevokeRequest")),
                unsafe=True,
                csrf=False,
            )
        },
        **_mfa_paths(),
        "/.well-known/jwks.json": {
            "get": _operation(
                "The public signing keys.",
                {"200": {"description": ok, **_json(_ref("JWKS"))}},
                security=_PUBLIC,
            )
        },
        "/auth/verify": {
            "get": _operation(
                "Forward auth for reverse proxies (nginx `auth_request`, Caddy "
                "`forward_auth`, Traefik `ForwardAuth`), with the access rules.  The "
                "original request comes in `X-Original-URL` (+ `X-Original-Method`) or "
                "`X-Forwarded-Proto/Host/Uri/Method`, believed only from a trusted proxy.",
                {
                    "200": {
                        "description": "Allowed (no body).  The identity headers are present "
                        "when the caller is signed in (a public rule also lets anonymous "
                        "callers through).  Values are ASCII; a non-ASCII one is sent "
                        "percent-encoded, with its RFC 8187 form in `X-Auth-Email*`.",
                        "headers": {
                            "X-Auth-User-Id": {"schema": {"type": "string"}},
                            "X-Auth-Email": {"schema": {"type": "string"}},
                            "X-Auth-Email*": {
                                "description": "RFC 8187: `UTF-8''<percent-encoded>`.",
                                "schema": {"type": "string"},
                            },
                            "X-Auth-Roles": {
                                "description": "Comma-separated.",
                                "schema": {"type": "string"},
                            },
                        },
                    },
                    "302": {
                        "description": "Sign-in needed (`?redirect=1`): to the login page "
                        "with the original URL as `next`.",
                        "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
                    },
                    "400": _error(
                        "Forwarded request headers that are malformed, or sent by a peer "
                        "that is not a trusted proxy."
                    ),
                    "401": _error(
                        "Sign-in needed.  `Location` names the login page with the original "
                        "URL as `next` (nginx: `error_page 401 =302 $upstream_http_location`).",
                        headers={
                            **_WWW_AUTHENTICATE,
                            "Location": {"required": True, "schema": {"type": "string"}},
                        },
                    ),
                    "403": _error("Signed in, but a rule (or `role`) refuses."),
                },
                security=[*_USER, {}],
                parameters=[
                    {
                        "name": "role",
                        "in": "query",
                        "required": False,
                        "description": "A role the caller must hold (on top of the rules).",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "redirect",
                        "in": "query",
                        "required": False,
                        "description": "`1`: answer a needed sign-in with a 302, not a 401.",
                        "schema": {"type": "string", "enum": ["0", "1"]},
                    },
                ],
            )
        },
        "/admin/users": {
            "get": _operation(
                "Every account (role `admin`).",
                {
                    "200": {
                        "description": ok,
                        **_json({"type": "array", "items": _ref("AdminUser")}),
                    },
                    "403": _error("Authenticated, without the permission."),
                },
                security=_USER,
            )
        },
        "/healthz": {
            "get": _operation(
                "Liveness.",
                {"200": {"description": ok, **_json(_ref("Health"))}},
                security=_PUBLIC,
            )
        },
        "/readyz": {
            "get": _operation(
                "Readiness: every store reachable.",
                {
                    "200": {"description": "Ready.", **_json(_ref("Readiness"))},
                    "503": {
                        "description": "A store is unreachable.",
                        **_json({"anyOf": [_ref("Readiness"), _ref("Error")]}),
                    },
                },
                security=_PUBLIC,
            )
        },
        "/openapi.json": {
            "get": _operation(
                "This document.",
                {"200": {"description": ok, **_json({"type": "object"})}},
                security=_PUBLIC,
            )
        },
    }


def _mfa_paths() -> Schema:
    throttled = _error("Too many wrong codes or passwords (`rate_limited`).",
                       headers=_RETRY_AFTER)  # fmt: skip
    codes = {"description": "OK", "headers": _NO_STORE, **_json(_ref("RecoveryCodes"))}
    reauth = _body(_ref("Reauthentication"), required=False)
    return {
        "/auth/mfa": {
            "get": _operation(
                "My second factors.",
                {"200": {"description": "OK", **_json(_ref("MFAStatus"))}},
                security=_USER,
            )
        },
        "/auth/mfa/totp/setup": {
            "post": _operation(
                "Start TOTP enrolment: a new secret (replacing an unconfirmed one).",
                {
                    "200": {"description": "OK", "headers": _NO_STORE, **_json(_ref("TotpSetup"))},
                    "404": _error("The account no longer exists."),
                    "409": _error("TOTP is already on (`conflict`)."),
                },
                security=_USER_UNSAFE,
                unsafe=True,
            )
        },
        "/auth/mfa/totp/qr.svg": {
            "get": _operation(
                "The QR code of the enrolment in progress, drawn by the server.",
                {
                    "200": {
                        "description": "An SVG image (no script, no external reference).",
                        "content": {"image/svg+xml": {"schema": {"type": "string"}}},
                    },
                    "404": _error("No enrolment in progress."),
                },
                security=_USER,
            )
        },
        "/auth/mfa/totp/confirm": {
            "post": _operation(
                "Finish TOTP enrolment with a code: TOTP is on; ten recovery codes, shown once.",
                {
                    "200": codes,
                    "409": _error("No enrolment in progress (`conflict`)."),
                    "401": _error("`invalid_code`, or not signed in.", headers=_WWW_AUTHENTICATE),
                    "429": throttled,
                },
                security=_USER_UNSAFE,
                body=_body(_ref("TotpCode")),
                unsafe=True,
            )
        },
        "/auth/mfa/totp": {
            "delete": _operation(
                "Turn TOTP off (and void the recovery codes).",
                {
                    "204": {"description": "Done (no body)."},
                    "401": _error(
                        "`invalid_credentials` or `invalid_code`, or not signed in.",
                        headers=_WWW_AUTHENTICATE,
                    ),
                    "403": _error(
                        "The CSRF checks failed, or no password or code was sent "
                        "and the sign-in is older than 5 minutes "
                        "(`insufficient_user_authentication`)."
                    ),
                    "404": _error("TOTP is not on."),
                    "429": throttled,
                },
                security=_USER_UNSAFE,
                body=reauth,
                unsafe=True,
            )
        },
        "/auth/mfa/recovery-codes": {
            "post": _operation(
                "Replace every recovery code by ten new ones, shown once.",
                {
                    "200": codes,
                    "409": _error("TOTP is off: no recovery codes without it (`conflict`)."),
                    "401": _error(
                        "`invalid_credentials` or `invalid_code`, or not signed in.",
                        headers=_WWW_AUTHENTICATE,
                    ),
                    "403": _error(
                        "The CSRF checks failed, or no password or code was sent "
                        "and the sign-in is older than 5 minutes "
                        "(`insufficient_user_authentication`)."
                    ),
                    "404": _error("The account no longer exists."),
                    "429": throttled,
                },
                security=_USER_UNSAFE,
                body=reauth,
                unsafe=True,
            )
        },
        "/auth/mfa/verify": {
            "post": _operation(
                "The second step: answers exactly like the first step would have (a session "
                "cookie and `{user}` after `/auth/login`, the token pair after `/auth/token`).",
                {
                    "200": {
                        "description": "OK",
                        "headers": _NO_STORE,
                        **_json({"anyOf": [_ref("LoggedIn"), _ref("TokenPair")]}),
                    },
                    "401": _error(
                        "`invalid_code` (the mfa_token stays usable until its 5 attempts are "
                        "spent) or `invalid_mfa_token` (unknown, used, expired, void, or from "
                        "another client: sign in again).",
                        headers=_WWW_AUTHENTICATE,
                    ),
                    "403": _error("The first step was `/auth/login` and the CSRF checks failed."),
                    "429": throttled,
                },
                security=[{}, {"csrfHeader": [], "csrfCookie": []}],
                body=_body(_ref("MFAVerify")),
                unsafe=True,
            )
        },
    }


@functools.cache
def _account_paths() -> Schema:
    """SPEC "Account lifecycle and mail"."""
    empty = {"description": "Done (no body).", "headers": _NO_STORE}
    accepted = {"description": "Accepted.", "headers": _NO_STORE, **_json(_ref("Empty"))}
    quota = _error(
        "Too many mails for this address or from this client (`rate_limited`; 5 an hour per "
        "email, GATEPASS_MAIL_LIMIT per client address).",
        headers=_RETRY_AFTER,
    )
    bad_token = _error(
        "`invalid_token`: unknown, used, voided or expired (one answer for all); or malformed."
    )
    return {
        "/auth/password/forgot": {
            "post": _operation(
                "Mail a reset link to the address if it has an account. The same answer, "
                "and similar timing, whether or not it has one.",
                {"202": accepted, "429": quota},
                security=_ANONYMOUS_UNSAFE,
                body=_body(_ref("ForgotRequest")),
                unsafe=True,
            )
        },
        "/auth/password/reset": {
            "post": _operation(
                "Set a new password with a mailed token; every login of the user ends.",
                {
                    "204": empty,
                    "400": _error(
                        "`invalid_token` (unknown, used, voided or expired), or a weak "
                        "password (`weak_password`; the token stays usable)."
                    ),
                },
                security=_ANONYMOUS_UNSAFE,
                body=_body(_ref("ResetRequest")),
                unsafe=True,
            )
        },
        "/auth/password/change": {
            "post": _operation(
                "Change my password: this login stays with a fresh id, the others end.",
                {
                    "204": empty,
                    "400": _error("Malformed request, or a weak new password."),
                    "401": _error(
                        "Not signed in, or `invalid_credentials`: the current password is wrong.",
                        headers=_WWW_AUTHENTICATE,
                    ),
                    "404": _error("The account no longer exists."),
                    "429": _error("Throttled like logins (`rate_limited`).", headers=_RETRY_AFTER),
                },
                security=_USER_UNSAFE,
                body=_body(_ref("ChangePasswordRequest")),
                unsafe=True,
            )
        },
        "/auth/email/verify": {
            "post": _operation(
                "Mark the email verified with the token mailed to it.",
                {"204": empty, "400": bad_token},
                security=_ANONYMOUS_UNSAFE,
                body=_body(_ref("VerifyEmailRequest")),
                unsafe=True,
            )
        },
        "/auth/email/resend": {
            "post": _operation(
                "Mail me a fresh verification link (nothing is sent when already verified "
                "or GATEPASS_EMAIL_VERIFICATION=off).",
                {"202": accepted, "404": _error("The account no longer exists."), "429": quota},
                security=_USER_UNSAFE,
                unsafe=True,
            )
        },
    }


# -- Device-bound sessions (W3C DBSC): one block, SPEC "Device-bound sessions" --

_DBSC_PROOF_HEADER: Schema = {
    "name": "Secure-Session-Response",
    "in": "header",
    "description": "The proof: a JWT (`typ` dbsc+jwt, `alg` ES256 or RS256) signed by the "
    "browser's key, whose `jti` is our challenge; as an sf-string or bare.",
    "schema": {"type": "string"},
}
_DBSC_SESSION_ID_HEADER: Schema = {
    "name": "Sec-Secure-Session-Id",
    "in": "header",
    "required": True,
    "description": "The DBSC session's `session_identifier`; as an sf-string or bare.",
    "schema": {"type": "string"},
}
_DBSC_INSTRUCTIONS: Schema = {
    "type": "object",
    "description": "JSON session instructions (W3C DBSC), or `continue: false` when the "
    "login has ended (logout, ended elsewhere): the browser drops the DBSC session.",
    "required": ["session_identifier"],
    "properties": {
        "session_identifier": {"type": "string"},
        "continue": {"const": False},
        "refresh_url": {"const": "/auth/dbsc/refresh"},
        "scope": {"type": "object"},
        "credentials": {"type": "array", "items": {"type": "object"}},
    },
}


@functools.cache
def _dbsc_paths() -> Schema:
    """SPEC "Device-bound sessions (DBSC)" (GATEPASS_DEVICE_BOUND_SESSIONS=on)."""
    bound_cookie = {
        "Set-Cookie": {
            "description": "`__Host-gatepass-bound`, lifetime GATEPASS_DBSC_COOKIE_TTL.",
            "schema": {"type": "string"},
        },
        **_NO_STORE,
    }
    bad_proof = _error(
        "`invalid_dbsc_proof`: a missing or garbled header, a proof that does not verify "
        "(typ, alg, key, signature), or a challenge that is unknown, used, expired or was "
        "issued for another login."
    )
    off = _error("Device-bound sessions are off.")
    return {
        "/auth/dbsc/register": {
            "post": _operation(
                "Bind the caller's browser login to the key in the proof (the browser "
                "posts here when it accepts the `Secure-Session-Registration` offer of a "
                "sign-in). No CSRF token: the proof answers a challenge issued for this login.",
                {
                    "200": {
                        "description": "Bound.",
                        "headers": bound_cookie,
                        **_json(_DBSC_INSTRUCTIONS),
                    },
                    "400": bad_proof,
                    "404": off,
                    "409": _error("This login is already bound (`conflict`)."),
                },
                security=[{"sessionCookie": []}],
                parameters=[{**_DBSC_PROOF_HEADER, "required": True}],
            )
        },
        "/auth/dbsc/refresh": {
            "post": _operation(
                "Renew the bound cookie: without a proof, a 403 with a challenge; with a "
                "proof signed by the registered key over that challenge, a fresh cookie.",
                {
                    "200": {
                        "description": "A fresh bound cookie, or `continue: false`.",
                        "headers": bound_cookie,
                        **_json(_DBSC_INSTRUCTIONS),
                    },
                    "400": bad_proof,
                    "403": _error(
                        "`dbsc_challenge`: sign the challenge and retry.",
                        headers={
                            "Secure-Session-Challenge": {
                                "description": '`"<challenge>";id="<session_identifier>"`',
                                "schema": {"type": "string"},
                                "required": True,
                            }
                        },
                    ),
                    "404": off,
                    "429": _error(
                        "Too many refreshes of this DBSC session (`rate_limited`; "
                        "GATEPASS_DBSC_REFRESH_LIMIT an hour).",
                        headers=_RETRY_AFTER,
                    ),
                },
                security=[{"sessionCookie": []}, {}],
                parameters=[_DBSC_SESSION_ID_HEADER, _DBSC_PROOF_HEADER],
            )
        },
    }


def _document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gatepass",
            "version": gatepass.__version__,
            "description": "Sessions, tokens and login: the JSON API of `gatepass serve`.  "
            'Errors are `{"error": "<code>", "detail": "<human text>"}`.',
        },
        "paths": _paths(),
        "components": {"schemas": _SCHEMAS, "securitySchemes": _SECURITY_SCHEMES},
    }


def document(public_url: str | None = None) -> Schema:
    """The OpenAPI document (a fresh copy), with ``servers`` when a URL is given."""
    doc = copy.deepcopy(_document())
    if public_url:
        doc["servers"] = [{"url": public_url}]
    return doc


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document(components(request).settings.public_url))


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
