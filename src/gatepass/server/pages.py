"""The server's HTML pages: home, sign-in, account.

Plain strings with every value escaped; no inline script, so a strict
Content-Security-Policy holds.  Forms post with ``application/x-www-form-urlencoded``.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gatepass.asgi.csrf import csrf_token
from gatepass.asgi.dependencies import auth_of, current_user
from gatepass.asgi.middleware import client_ip
from gatepass.errors import InvalidCredentials, InvalidRequest, NotFound, RateLimited
from gatepass.redirects import safe_next
from gatepass.server.bodies import bool_field, read_fields, string_field
from gatepass.server.components import components
from gatepass.server.oauth_routes import provider_links
from gatepass.server.token_api import jwt_login, jwt_logout

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}"
    "label{display:block;margin:.6rem 0}input{display:block;width:100%;padding:.4rem}"
    "button{margin-top:.8rem;padding:.4rem 1rem}table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}"
    ".error{color:#a00}form.inline{display:inline}.check input{display:inline;width:auto}"
)


def page(
    title: str, body: str, status: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} · gatepass</title>"
        '<link rel=stylesheet href="/static/gatepass.css"></head>'
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(
        html, status_code=status, headers={"cache-control": "no-store", **(headers or {})}
    )


def token_field(request: Request) -> str:
    return f'<input type=hidden name=csrf_token value="{escape(csrf_token(request))}">'


def login_form(request: Request, next_path: str, message: str = "") -> str:
    error = f"<p class=error role=alert>{escape(message)}</p>" if message else ""
    return (
        f"{error}<form method=post action=/login>{token_field(request)}"
        f'<input type=hidden name=next value="{escape(next_path)}">'
        '<label>Email <input type=email name=email autocomplete=username required></label>'
        "<label>Password <input type=password name=password "
        "autocomplete=current-password required></label>"
        "<label class=check><input type=checkbox name=remember value=on>"
        " Remember me</label>"
        "<button type=submit>Sign in</button></form>"
        + provider_links(request, next_path)
    )


async def home(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        body = '<p>You are not signed in. <a href="/login">Sign in</a></p>'
    else:
        body = '<p>You are signed in. <a href="/account">Your account</a></p>'
    return page("gatepass", body)


async def login_page(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    return page("Sign in", login_form(request, next_path))


async def login_submit(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    next_path = safe_next(fields.get("next") if isinstance(fields.get("next"), str) else None)
    try:
        user = await parts.accounts.authenticate(
            string_field(fields, "email"),
            string_field(fields, "password"),
            client_ip=client_ip(request.scope),
        )
    except (InvalidCredentials, InvalidRequest):
        # One generic message whatever went wrong.
        form = login_form(request, next_path, "Invalid email or password.")
        return page("Sign in", form, 401)
    except RateLimited as exc:
        form = login_form(request, next_path, "Too many attempts; try again in a moment.")
        return page("Sign in", form, 429, headers={"retry-after": str(exc.retry_after)})
    if await parts.mfa.methods(user.id):
        # The page for the second step comes with the next round of issue 12;
        # until then fail closed rather than sign in on the password alone.
        form = login_form(
            request, next_path, "This account needs its second factor; sign in through the API."
        )
        return page("Sign in", form, 403)
    if parts.settings.browser_mode == "jwt":
        await jwt_login(request, user, amr=("pwd",))
    else:
        await auth_of(request).login(
            user.id, user.roles, remember=bool_field(fields, "remember"), amr=("pwd",)
        )
    return RedirectResponse(next_path, status_code=303)


async def account(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse("/login?next=" + quote("/account", safe=""), status_code=303)
    parts = components(request)
    user = await parts.accounts.users.get(identity.user_id)
    if user is None:
        raise NotFound("The account no longer exists.")
    token = token_field(request)
    rows = []
    for record in await parts.sessions.list_user(identity.user_id):
        current = identity.session is not None and record.key == identity.session.key
        rows.append(
            "<tr>"
            f"<td>{escape(record.user_agent or 'unknown device')}</td>"
            f"<td>{escape(record.ip or '')}</td>"
            f"<td>{'this device' if current else ''}</td>"
            f"<td><form class=inline method=post "
            f'action="/account/sessions/{escape(record.public_id)}/revoke">{token}'
            "<button type=submit>Sign out</button></form></td></tr>"
        )
    body = (
        f"<p>Signed in as <strong>{escape(user.email)}</strong>"
        f"{' (' + escape(', '.join(user.roles)) + ')' if user.roles else ''}.</p>"
        "<h2>Your sessions</h2><table><tr><th>Device</th><th>Address</th><th></th><th></th></tr>"
        + "".join(rows)
        + "</table>"
        f'<form method=post action="/account/sessions/revoke-others">{token}'
        "<button type=submit>Sign out all other sessions</button></form>"
        f'<form method=post action="/logout">{token}<button type=submit>Sign out</button></form>'
    )
    return page("Your account", body)


async def account_revoke(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse("/login", status_code=303)
    public_id = request.path_params["session_id"]
    await components(request).sessions.revoke(identity.user_id, public_id)
    if identity.session is not None and identity.session.public_id == public_id:
        await auth_of(request).logout()
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/account", status_code=303)


async def account_revoke_others(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse("/login", status_code=303)
    await components(request).sessions.revoke_all(identity.user_id, keep=identity.session)
    return RedirectResponse("/account", status_code=303)


async def logout_submit(request: Request) -> Response:
    identity = await current_user(request)
    if identity is not None and identity.scheme != "session":
        await jwt_logout(request)
    else:
        await auth_of(request).logout()
    return RedirectResponse("/login", status_code=303)


async def stylesheet(request: Request) -> Response:
    return Response(STYLE, media_type="text/css", headers={"cache-control": "max-age=3600"})


routes = [
    Route("/", home, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout_submit, methods=["POST"]),
    Route("/account", account, methods=["GET"]),
    Route("/account/sessions/revoke-others", account_revoke_others, methods=["POST"]),
    Route("/account/sessions/{session_id}/revoke", account_revoke, methods=["POST"]),
    Route("/static/gatepass.css", stylesheet, methods=["GET"]),
]
