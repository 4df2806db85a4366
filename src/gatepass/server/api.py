"""The JSON API: ``/auth/*``, ``/admin/users``, ``/healthz``, ``/readyz``.

Handlers raise gatepass errors and let the middleware answer them; they
never build error responses themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatepass.asgi.csrf import csrf_token
from gatepass.asgi.dependencies import RequirePermissions, auth_of, current_user, require_user
from gatepass.asgi.middleware import client_ip
from gatepass.errors import GatepassError, NotFound, PermissionDenied, StoreUnavailable
from gatepass.server.bodies import bool_field, read_fields, string_field
from gatepass.server.components import components
from gatepass.server.token_api import jwt_login, jwt_logout
from gatepass.sessions.record import SessionRecord
from gatepass.users.model import User


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "roles": list(user.roles)}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def session_json(record: SessionRecord, current: SessionRecord | None) -> dict[str, Any]:
    return {
        "id": record.public_id,
        "created_at": _iso(record.created_at),
        "last_seen_at": _iso(record.last_seen_at),
        "ip": record.ip,
        "user_agent": record.user_agent,
        "current": current is not None and record.key == current.key,
    }


async def register(request: Request) -> Response:
    parts = components(request)
    if parts.settings.registration != "open":
        raise PermissionDenied("Registration is closed.")
    fields = await read_fields(request, parts.settings.max_body_bytes)
    user = await parts.accounts.register(
        string_field(fields, "email"), string_field(fields, "password")
    )
    return JSONResponse({"id": user.id, "email": user.email}, status_code=201)


async def login(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    user = await parts.accounts.authenticate(
        string_field(fields, "email"),
        string_field(fields, "password"),
        client_ip=client_ip(request.scope),
    )
    if parts.settings.browser_mode == "jwt":
        await jwt_login(request, user)
    else:
        await auth_of(request).login(user.id, user.roles, remember=bool_field(fields, "remember"))
    return JSONResponse({"user": user_json(user)})


async def csrf(request: Request) -> Response:
    return JSONResponse({"csrf_token": csrf_token(request)}, headers={"cache-control": "no-store"})


async def logout(request: Request) -> Response:
    """End whatever authenticated this request: the session, or the token and its family."""
    identity = await current_user(request)
    if identity is not None and identity.scheme != "session":
        await jwt_logout(request)
    else:
        await auth_of(request).logout()
    return Response(status_code=204)


async def me(request: Request) -> Response:
    identity = await require_user(request)
    user = await components(request).accounts.users.get(identity.user_id)
    if user is None:
        raise NotFound("The account no longer exists.")
    return JSONResponse(user_json(user))


async def list_sessions(request: Request) -> Response:
    identity = await require_user(request)
    records = await components(request).sessions.list_user(identity.user_id)
    return JSONResponse([session_json(r, identity.session) for r in records])


async def revoke_session(request: Request) -> Response:
    identity = await require_user(request)
    public_id = request.path_params["session_id"]
    await components(request).sessions.revoke(identity.user_id, public_id)
    if identity.session is not None and identity.session.public_id == public_id:
        await auth_of(request).logout()
    return Response(status_code=204)


async def revoke_others(request: Request) -> Response:
    identity = await require_user(request)
    await components(request).sessions.revoke_all(identity.user_id, keep=identity.session)
    return Response(status_code=204)


_admin = RequirePermissions("users:read")


async def admin_users(request: Request) -> Response:
    await _admin(request)
    users = await components(request).accounts.users.list(limit=1000)
    return JSONResponse(
        [{**user_json(u), "disabled": u.disabled, "created_at": _iso(u.created_at)} for u in users]
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
