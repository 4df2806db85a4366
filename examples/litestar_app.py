"""Litestar behind gatepass: sessions (fixation-proof, listed, revocable), CSRF,
security headers and Bearer tokens.

    uvicorn litestar_app:app --app-dir examples --no-server-header
"""

from dataclasses import dataclass

from litestar import Litestar, Request, delete, get, post

import gatepass
from gatepass.asgi import RequestAuth
from gatepass.litestar import CurrentUser, GatepassPlugin, RequireScopes, require_user

# Scopes are granted by policy, never chosen by a client: every user may hold "reports".
settings = gatepass.Settings.load({"token_scopes": "*=reports"})
plugin = GatepassPlugin(settings, layers=gatepass.Layers(csrf_exempt=("/token",)))
gp = plugin.gatepass  # accounts, sessions and tokens, once the app has started


@dataclass
class Credentials:
    email: str
    password: str


@get("/csrf")
async def csrf(request: Request) -> dict[str, str]:
    return {"csrf_token": gatepass.csrf_token(request)}


@post("/register")
async def register(data: Credentials) -> dict[str, str]:
    return {"id": (await gp.accounts.register(data.email, data.password)).id}


@post("/login", status_code=200)
async def login(data: Credentials, auth: RequestAuth) -> dict[str, str]:
    user = await gp.accounts.authenticate(data.email, data.password)
    await auth.login(user.id, user.roles)  # a fresh session id; the presented one is destroyed
    return {"id": user.id}


@post("/token", status_code=200)
async def token(data: Credentials) -> dict[str, object]:
    user = await gp.accounts.authenticate(data.email, data.password)
    return (await gp.tokens.issue(user.id, roles=user.roles, scopes=("reports",))).as_json()


@get("/me", guards=[require_user])
async def me(user: CurrentUser) -> dict[str, str]:
    return {"id": user.user_id, "via": user.scheme}


@post("/notes", guards=[require_user])
async def add_note(user: CurrentUser) -> dict[str, str]:
    return {"saved_for": user.user_id}


@get("/reports", guards=[RequireScopes("reports")])
async def reports(user: CurrentUser) -> dict[str, str]:
    return {"for": user.user_id}  # only an access token granting "reports" gets here


@get("/sessions", guards=[require_user])
async def sessions(user: CurrentUser) -> list[dict[str, object]]:
    # Every login of the user, whatever its kind: cookie sessions and token pairs.
    current = gatepass.current_login_id(user)
    logins = await gp.accounts.logins.list(user.user_id)
    return [login.as_json(current=login.id == current) for login in logins]


@delete("/sessions/{session_id:str}", guards=[require_user])
async def end_session(session_id: str, user: CurrentUser) -> None:
    await gp.accounts.logins.end(user.user_id, session_id)  # its session, or its tokens


@post("/logout", status_code=204)
async def logout(auth: RequestAuth) -> None:
    await auth.logout()


app = Litestar(
    [csrf, register, login, token, me, add_note, reports, sessions, end_session, logout],
    plugins=[plugin],
)
