"""FastAPI behind gatepass: sessions, CSRF, security headers and Bearer tokens.

    uvicorn fastapi_app:app --app-dir examples --no-server-header

Settings come from GATEPASS_* variables (``gatepass serve --help`` lists them).
"""

from fastapi import FastAPI, Request, Security
from pydantic import BaseModel

import gatepass
from gatepass.fastapi import CurrentUser, require_user, swagger_ui

app = FastAPI(docs_url=None)
swagger_ui(app)  # /docs, with the lock icons, under a CSP that lets Swagger UI load
# The token endpoint takes a password in its body, never a cookie: no CSRF there.
# Scopes are granted by policy, never chosen by a client: every user may hold "reports".
settings = gatepass.Settings.load({"token_scopes": "*=reports"})
auth = gatepass.install(app, settings, layers=gatepass.Layers(csrf_exempt=("/token",)))


class Credentials(BaseModel):
    email: str
    password: str


@app.get("/csrf")
async def csrf(request: Request) -> dict[str, str]:
    return {"csrf_token": gatepass.csrf_token(request)}


@app.post("/register", status_code=201)
async def register(body: Credentials) -> dict[str, str]:
    return {"id": (await auth.accounts.register(body.email, body.password)).id}


@app.post("/login")
async def login(body: Credentials, request: Request) -> dict[str, str]:
    user = await auth.accounts.authenticate(body.email, body.password)
    await gatepass.auth_of(request).login(user.id, user.roles)  # a fresh session id
    return {"id": user.id}


@app.post("/token")
async def token(body: Credentials) -> dict[str, object]:
    user = await auth.accounts.authenticate(body.email, body.password)
    return (await auth.tokens.issue(user.id, roles=user.roles, scopes=("reports",))).as_json()


@app.get("/me")
async def me(user: CurrentUser) -> dict[str, str]:
    return {"id": user.user_id, "via": user.scheme}


@app.post("/notes", status_code=201)
async def add_note(user: CurrentUser) -> dict[str, str]:
    return {"saved_for": user.user_id}


@app.get("/reports")
async def reports(
    user: gatepass.Identity = Security(require_user, scopes=["reports"]),
) -> dict[str, str]:
    return {"for": user.user_id}  # only an access token granting "reports" gets here


@app.post("/logout", status_code=204)
async def logout(request: Request) -> None:
    await gatepass.auth_of(request).logout()
