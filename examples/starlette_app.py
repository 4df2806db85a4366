"""Starlette behind gatepass: sessions, CSRF, security headers and Bearer tokens.

    uvicorn starlette_app:app --app-dir examples --no-server-header
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import gatepass
from gatepass.asgi import RequireScopes, requires_user


async def csrf(request: Request) -> Response:
    return JSONResponse({"csrf_token": gatepass.csrf_token(request)})


async def register(request: Request) -> Response:
    body = await request.json()
    user = await auth.accounts.register(body["email"], body["password"])
    return JSONResponse({"id": user.id}, status_code=201)


async def login(request: Request) -> Response:
    body = await request.json()
    user = await auth.accounts.authenticate(body["email"], body["password"])
    await gatepass.auth_of(request).login(user.id, user.roles)  # a fresh session id
    return JSONResponse({"id": user.id})


async def token(request: Request) -> Response:
    body = await request.json()
    user = await auth.accounts.authenticate(body["email"], body["password"])
    pair = await auth.tokens.issue(user.id, roles=user.roles, scopes=("reports",))
    return JSONResponse(pair.as_json())


@requires_user()
async def me(request: Request) -> Response:
    return JSONResponse({"id": request.user.user_id, "via": request.user.scheme})


@requires_user()
async def add_note(request: Request) -> Response:
    return JSONResponse({"saved_for": request.user.user_id}, status_code=201)


async def reports(request: Request) -> Response:
    user = await RequireScopes("reports")(request)  # only a token granting "reports"
    return JSONResponse({"for": user.user_id})


async def logout(request: Request) -> Response:
    await gatepass.auth_of(request).logout()
    return Response(status_code=204)


app = Starlette(routes=[
    Route("/csrf", csrf),
    Route("/register", register, methods=["POST"]),
    Route("/login", login, methods=["POST"]),
    Route("/token", token, methods=["POST"]),
    Route("/me", me),
    Route("/notes", add_note, methods=["POST"]),
    Route("/reports", reports),
    Route("/logout", logout, methods=["POST"]),
])
# Scopes are granted by policy, never chosen by a client: every user may hold "reports".
settings = gatepass.Settings.load({"token_scopes": "*=reports"})
auth = gatepass.install(app, settings, layers=gatepass.Layers(csrf_exempt=("/token",)))
