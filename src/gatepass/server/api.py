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
from gatepass.server.account_api import send_verification
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
