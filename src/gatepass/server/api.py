"""The JSON API: ``/auth/*``, ``/admin/users``, ``/healthz``, ``/readyz``.

Handlers raise gatepass errors and let the middleware answer them; they
never build error responses themselves.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatepass.asgi.csrf import csrf_token
from gatepass.asgi.dependencies import RequirePermissions, current_user, require_user
from gatepass.asgi.middleware import client_ip
from gatepass.errors import GatepassError, NotFound, PermissionDenied, StoreUnavailable
from gatepass.logins import current_login_id, iso
from gatepass.mfa.service import AMR_PASSWORD
from gatepass.server import apidoc
from gatepass.server.account_api import send_verification
from gatepass.server.apidoc import Operation, error, json_content, ref
from gatepass.server.bodies import bool_field, read_fields, string_field
from gatepass.server.components import components
from gatepass.server.second_step import second_step_needed
from gatepass.server.signin import sign_in, sign_out
from gatepass.users.model import User


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "roles": list(user.roles),
        "email_verified": user.email_verified,
    }


#: Personal or credential-bearing answers are never stored by a browser or
#: a shared cache (SECURITY 22).
NO_STORE = {"cache-control": "no-store"}


async def register(request: Request) -> Response:
    parts = components(request)
    if parts.settings.registration != "open":
        raise PermissionDenied("Registration is closed.")
    # Every attempt counts, a 409 included: it is what would let a client
    # test emails for existing accounts at full speed.
    await parts.registrations.spend_address(client_ip(request.scope))
    fields = await read_fields(request, parts.settings.max_body_bytes)
    user = await parts.accounts.register(
        string_field(fields, "email"), string_field(fields, "password")
    )
    await send_verification(parts, user)
    return JSONResponse({"id": user.id, "email": user.email}, status_code=201)


async def login(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    user = await parts.accounts.authenticate(
        string_field(fields, "email"),
        string_field(fields, "password"),
        client_ip=client_ip(request.scope),
    )
    remember = bool_field(fields, "remember")
    await second_step_needed(request, user, kind="login", data={"remember": remember})
    await sign_in(request, user, amr=(AMR_PASSWORD,), remember=remember)
    return JSONResponse({"user": user_json(user)}, headers=NO_STORE)


async def csrf(request: Request) -> Response:
    return JSONResponse({"csrf_token": csrf_token(request)}, headers={"cache-control": "no-store"})


async def logout(request: Request) -> Response:
    """End whatever authenticated this request: the session, or the token and its family."""
    await sign_out(request, await current_user(request))
    return Response(status_code=204)


async def me(request: Request) -> Response:
    identity = await require_user(request)
    user = await components(request).accounts.users.get(identity.user_id)
    if user is None:
        raise NotFound("The account no longer exists.")
    return JSONResponse(user_json(user), headers=NO_STORE)


async def list_sessions(request: Request) -> Response:
    """Every live login of the caller, whatever its kind (SPEC "Logins")."""
    identity = await require_user(request)
    current = current_login_id(identity)
    logins = await components(request).accounts.logins.list(identity.user_id)
    return JSONResponse(
        [login.as_json(current=login.id == current) for login in logins], headers=NO_STORE
    )


async def revoke_session(request: Request) -> Response:
    identity = await require_user(request)
    login_id = request.path_params["session_id"]
    await components(request).accounts.logins.end(identity.user_id, login_id)
    if login_id == current_login_id(identity):
        # Ending the login this request came with is a logout: clear its cookies.
        await sign_out(request, identity)
    return Response(status_code=204)


async def revoke_others(request: Request) -> Response:
    identity = await require_user(request)
    await components(request).accounts.logins.end_others(
        identity.user_id, keep=current_login_id(identity)
    )
    return Response(status_code=204)


_admin = RequirePermissions("users:read")


async def admin_users(request: Request) -> Response:
    await _admin(request)
    users = await components(request).accounts.users.list(limit=1000)
    return JSONResponse(
        [{**user_json(u), "disabled": u.disabled, "created_at": iso(u.created_at)} for u in users],
        headers=NO_STORE,
    )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    parts = components(request)
    checks: dict[str, str] = {}
    for name, store in (("users", parts.accounts.users), ("sessions", parts.sessions.store)):
        try:
            await store.ping()
            checks[name] = "ok"
        except StoreUnavailable:
            checks[name] = "unavailable"
        except GatepassError:
            checks[name] = "error"
    ready = all(v == "ok" for v in checks.values())
    # Providers are reported, not required: password sign-in works without them.
    providers = parts.oauth.status() if parts.oauth is not None else {}
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks, "providers": providers},
        status_code=200 if ready else 503,
    )


routes = [
    Route("/auth/register", register, methods=["POST"]),
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
    Route("/auth/csrf", csrf, methods=["GET"]),
    Route("/auth/me", me, methods=["GET"]),
    Route("/auth/sessions", list_sessions, methods=["GET"]),
    Route("/auth/sessions/revoke-others", revoke_others, methods=["POST"]),
    Route("/auth/sessions/{session_id}", revoke_session, methods=["DELETE"]),
    Route("/admin/users", admin_users, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]


api_docs = apidoc.ApiDocs(
    {
        ("/auth/register", "POST"): Operation(
            "Create an account (when registration is open).",
            {
                "201": {"description": "Created.", **json_content(ref("Registered"))},
                "400": error("Malformed request, invalid email or weak password."),
                "403": error("The CSRF checks failed, or registration is closed."),
                "409": error("An account with this email already exists (`user_exists`)."),
                "429": error(
                    "Too many registrations from this address (`rate_limited`; "
                    "GATEPASS_REGISTRATION_LIMIT an hour).",
                    headers=apidoc.RETRY_AFTER,
                ),
            },
            security=apidoc.ANONYMOUS_UNSAFE,
            body=apidoc.body(ref("Registration")),
        ),
        ("/auth/login", "POST"): Operation(
            "Browser login: a fresh session cookie and CSRF cookie.",
            {
                "200": {"description": "OK", **json_content(ref("LoggedIn"))},
                "401": error(
                    "`invalid_credentials`: the same for an unknown user, a wrong password "
                    "and a disabled account; or `mfa_required` (right password, the user "
                    "has a second factor) with an `mfa_token` for `POST /auth/mfa/verify`.",
                    headers=apidoc.WWW_AUTHENTICATE,
                ),
                "429": error("Throttled (`rate_limited`).", headers=apidoc.RETRY_AFTER),
                "403": error(
                    "The CSRF checks failed, or `email_unverified`: the password is right "
                    "but the email is not verified (GATEPASS_EMAIL_VERIFICATION=required)."
                ),
            },
            security=apidoc.ANONYMOUS_UNSAFE,
            body=apidoc.body(ref("Login"), form=True),
        ),
        ("/auth/logout", "POST"): Operation(
            "End the session (or the token and its family); clear the cookies.",
            {"204": {"description": "Done (no body)."}},
            security=apidoc.ANONYMOUS_UNSAFE,
        ),
        ("/auth/csrf", "GET"): Operation(
            "The CSRF token for this session (also set in `__Host-gatepass-csrf`).",
            {"200": {"description": "OK", **json_content(ref("CSRFToken"))}},
            security=apidoc.PUBLIC,
        ),
        ("/auth/me", "GET"): Operation(
            "Who am I.",
            {
                "200": {"description": "OK", **json_content(ref("User"))},
                "404": error("The account no longer exists."),
            },
            security=apidoc.USER,
        ),
        ("/auth/sessions", "GET"): Operation(
            "My live logins, whatever their kind (sessions, browser-JWT logins, API tokens).",
            {
                "200": {
                    "description": "OK",
                    **json_content({"type": "array", "items": ref("Session")}),
                }
            },
            security=apidoc.USER,
        ),
        ("/auth/sessions/revoke-others", "POST"): Operation(
            "End every other login (every kind of credential).",
            {"204": {"description": "Done (no body)."}},
            security=apidoc.USER_UNSAFE,
        ),
        ("/auth/sessions/{session_id}", "DELETE"): Operation(
            "End one of my logins: its session, or its refresh family and access tokens.",
            {"204": {"description": "Done (no body)."}, "404": error("I have no such login.")},
            security=apidoc.USER_UNSAFE,
            parameters=[
                apidoc.path_parameter("session_id", "The public id from `GET /auth/sessions`.")
            ],
        ),
        ("/admin/users", "GET"): Operation(
            "Every account (role `admin`).",
            {
                "200": {
                    "description": "OK",
                    **json_content({"type": "array", "items": ref("AdminUser")}),
                },
                "403": error("Authenticated, without the permission."),
            },
            security=apidoc.USER,
        ),
        ("/healthz", "GET"): Operation(
            "Liveness.",
            {"200": {"description": "OK", **json_content(ref("Health"))}},
            security=apidoc.PUBLIC,
        ),
        ("/readyz", "GET"): Operation(
            "Readiness: every store reachable.",
            {
                "200": {"description": "Ready.", **json_content(ref("Readiness"))},
                "503": {
                    "description": "A store is unreachable.",
                    **json_content({"anyOf": [ref("Readiness"), ref("Error")]}),
                },
            },
            security=apidoc.PUBLIC,
        ),
    },
    schemas={
        "Registration": {
            "type": "object",
            "required": ["email", "password"],
            "properties": {
                "email": {"type": "string", "format": "email", "maxLength": 254},
                "password": apidoc.NEW_PASSWORD,
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
        "Registered": {
            "type": "object",
            "required": ["id", "email"],
            "properties": {"id": {"type": "string"}, "email": {"type": "string"}},
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
    },
)
