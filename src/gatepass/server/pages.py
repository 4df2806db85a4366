"""The server's HTML pages: home, sign-in, sign-up, account.

Rendered from Jinja2 templates (autoescaped; an operator's
``GATEPASS_TEMPLATES_DIR`` overrides any of them) with no inline script or
style, so the strict Content-Security-Policy holds.  Forms post
``application/x-www-form-urlencoded`` and work without JavaScript; each
carries the CSRF token.  Only pages whose endpoints exist are served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from gatepass.asgi.dependencies import current_user
from gatepass.asgi.headers import csp_with_form_target
from gatepass.asgi.middleware import client_ip
from gatepass.errors import (
    EmailUnverified,
    InvalidCredentials,
    InvalidRequest,
    NotFound,
    RateLimited,
    UserExists,
)
from gatepass.identity import Identity
from gatepass.logins import current_login_id
from gatepass.mfa.service import AMR_PASSWORD
from gatepass.server.account_api import send_verification
from gatepass.server.bodies import bool_field, read_fields, string_field
from gatepass.server.components import components
from gatepass.server.devices import present_logins
from gatepass.server.mfa_policy import SETUP_PAGE, enrolment_required
from gatepass.server.oauth_routes import linked_providers, offered_providers
from gatepass.server.passkey_views import present_passkeys
from gatepass.server.rendering import error_page, render
from gatepass.server.second_step import page_second_step
from gatepass.server.signin import sign_in, sign_out
from gatepass.users.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH


def _registration_open(request: Request) -> bool:
    return components(request).settings.registration == "open"


async def home(request: Request) -> Response:
    identity = await current_user(request)
    email = None
    if identity is not None:
        user = await components(request).accounts.users.get(identity.user_id)
        email = user.email if user is not None else None
    return render(
        request, "home.html", "Welcome", email=email,
        registration_open=_registration_open(request), narrow=True,
    )  # fmt: skip


def login_form(
    request: Request, next_path: str, message: str = "", *, status: int = 200,
    email: str = "", headers: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    return render(
        request, "login.html", "Sign in", status, headers,
        next_path=next_path, message=message or None, email=email, narrow=True,
        providers=offered_providers(request),
        registration_open=_registration_open(request),
    )  # fmt: skip


async def login_page(request: Request) -> Response:
    next_path = components(request).safe_next(request.query_params.get("next"))
    # Sent back here by the second step: its sign-in expired or had too many wrong codes.
    message = (
        "That sign-in attempt has expired or had too many wrong codes. Sign in again."
        if request.query_params.get("restart")
        else ""
    )
    return login_form(request, next_path, message, headers=csp_with_form_target(next_path))


async def login_submit(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    next_field = fields.get("next")
    next_path = parts.safe_next(next_field if isinstance(next_field, str) else None)
    email = fields.get("email") if isinstance(fields.get("email"), str) else ""
    try:
        user = await parts.accounts.authenticate(
            string_field(fields, "email"),
            string_field(fields, "password"),
            client_ip=client_ip(request.scope),
        )
    except (InvalidCredentials, InvalidRequest):
        # One generic message whatever went wrong.
        return login_form(request, next_path, "Invalid email or password.", status=401,
                          email=str(email)[:320],
                          headers=csp_with_form_target(next_path))  # fmt: skip
    except EmailUnverified:
        return login_form(
            request, next_path,
            "Confirm your email address first: open the link we mailed you.",
            status=403, email=str(email)[:320], headers=csp_with_form_target(next_path),
        )  # fmt: skip
    except RateLimited as exc:
        return login_form(
            request, next_path, "Too many attempts; try again in a moment.", status=429,
            email=str(email)[:320],
            headers={"retry-after": str(exc.retry_after), **csp_with_form_target(next_path)},
        )  # fmt: skip
    remember = bool_field(fields, "remember")
    second = await page_second_step(
        request, user, amr=(AMR_PASSWORD,), remember=remember, next_path=next_path
    )
    if second is not None:  # no login until the second factor is in
        return second
    await sign_in(request, user, amr=(AMR_PASSWORD,), remember=remember)
    if enrolment_required(request):  # straight to the setup page, even for an app's URL
        return RedirectResponse(SETUP_PAGE, status_code=303)
    return RedirectResponse(next_path, status_code=303)


def _register_form(
    request: Request, message: str = "", *, status: int = 200, email: str = "",
    headers: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    return render(
        request, "register.html", "Create an account", status, headers,
        message=message or None, email=email, narrow=True,
        min_password=MIN_PASSWORD_LENGTH, max_password=MAX_PASSWORD_LENGTH,
        providers=offered_providers(request) if components(request).settings.oauth_create_users
        else [],
    )  # fmt: skip


def _registration_closed(request: Request) -> Response:
    return error_page(
        request, 403, "Registration is closed",
        "New accounts are not being created here. Ask an administrator.",
    )  # fmt: skip


async def register_page(request: Request) -> Response:
    if not _registration_open(request):
        return _registration_closed(request)
    return _register_form(request)


async def register_submit(request: Request) -> Response:
    parts = components(request)
    if not _registration_open(request):
        return _registration_closed(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    raw_email = fields.get("email")
    email = raw_email[:320] if isinstance(raw_email, str) else ""
    try:
        # The same per-address quota as POST /auth/register: every attempt counts.
        await parts.registrations.spend_address(client_ip(request.scope))
    except RateLimited as exc:
        return _register_form(
            request, "Too many sign-ups from here; try again later.", status=429, email=email,
            headers={"retry-after": str(exc.retry_after)},
        )  # fmt: skip
    try:
        user = await parts.accounts.register(
            string_field(fields, "email"), string_field(fields, "password")
        )
    except UserExists:
        # The JSON API answers 409 for this too: the page says no more than it.
        return _register_form(
            request, "An account with this email already exists. Sign in instead.",
            status=409, email=email,
        )  # fmt: skip
    except InvalidRequest as exc:  # weak or oversize password, malformed email
        return _register_form(request, exc.detail, status=400, email=email)
    await send_verification(parts, user)
    if parts.settings.email_verification == "required":
        return render(
            request, "done.html", "Check your mail", narrow=True, links=[("/login", "Sign in")],
            detail=f"We mailed a link to {user.email}. Open it to confirm the address, "
            "then sign in.",
        )  # fmt: skip
    await sign_in(request, user, amr=(AMR_PASSWORD,))
    return RedirectResponse("/account", status_code=303)


async def account(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse("/login?next=" + quote("/account", safe=""), status_code=303)
    if request.query_params.get("passkey") == "added":  # back from passkeys.js
        return await account_page(request, identity, "Your passkey is added.", ok=True)
    return await account_page(request, identity)


async def account_page(
    request: Request, identity: Identity, message: str = "", *, ok: bool = False,
    status: int = 200,
) -> Response:  # fmt: skip
    parts = components(request)
    user = await parts.accounts.users.get(identity.user_id)
    if user is None:
        raise NotFound("The account no longer exists.")
    # Every login of the user, whatever its kind, as GET /auth/sessions shows them.
    current = current_login_id(identity)
    logins = present_logins(
        [login.as_json(current=login.id == current)
         for login in await parts.accounts.logins.list(identity.user_id)],
        now=parts.sessions.clock(),
    )  # fmt: skip
    linked, linkable = await linked_providers(request, identity.user_id)
    passkeys = present_passkeys(await parts.passkeys.passkeys(user.id), now=parts.sessions.clock())
    return render(
        request, "account.html", "Your account", status,
        user=user, logins=logins, message=message or None, message_ok=ok,
        passkeys=passkeys, passkey_suggestion=f"Passkey {len(passkeys) + 1}",
        providers_enabled=parts.oauth is not None, linked=linked, linkable=linkable,
        can_unlink=user.password_hash is not None or len(linked) > 1,
        verification_on=parts.settings.email_verification != "off",
        min_password=MIN_PASSWORD_LENGTH, max_password=MAX_PASSWORD_LENGTH,
        factors=await parts.mfa.factors(identity.user_id),
    )  # fmt: skip


async def account_revoke(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse("/login", status_code=303)
    login_id = request.path_params["session_id"]
    # The login's session, or its refresh family and every access token of it.
    await components(request).accounts.logins.end(identity.user_id, login_id)
    if login_id == current_login_id(identity):
        await sign_out(request, identity)
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/account", status_code=303)


async def account_revoke_others(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse("/login", status_code=303)
    await components(request).accounts.logins.end_others(
        identity.user_id, keep=current_login_id(identity)
    )
    return RedirectResponse("/account", status_code=303)


async def account_unlink(request: Request) -> Response:
    """Unlink a provider, unless it is the last way left to sign in."""
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse("/login", status_code=303)
    parts = components(request)
    if parts.oauth is None:
        raise NotFound("No sign-in providers are configured.")
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    issuer, subject = string_field(fields, "issuer"), string_field(fields, "subject")
    user = await parts.accounts.users.get(identity.user_id)
    if user is None:
        raise NotFound("The account no longer exists.")
    mine = await parts.oauth.identities.list_user(user.id)
    target = next((i for i in mine if (i.issuer, i.subject) == (issuer, subject)), None)
    if target is None:
        return await account_page(request, identity, "That provider is not linked.", status=404)
    if user.password_hash is None and len(mine) <= 1:
        return await account_page(
            request, identity,
            "This provider is your only way to sign in, so it cannot be unlinked.",
            status=409,
        )  # fmt: skip
    await parts.oauth.identities.remove(issuer, subject, user.id)
    title = parts.oauth.providers[target.provider].title if target.provider in \
        parts.oauth.providers else target.provider  # fmt: skip
    return await account_page(request, identity, f"{title} is unlinked.", ok=True)


async def logout_submit(request: Request) -> Response:
    await sign_out(request, await current_user(request))
    return RedirectResponse("/login", status_code=303)


class _Static(StaticFiles):
    """The stylesheet and icon: cacheable for an hour, unlike the pages."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "public, max-age=3600"
        return response


def static_files(override_dir: Path | None) -> StaticFiles:
    """``/static``: ``<templates dir>/static/`` first (an operator's CSS and
    logo), then the built-in files."""
    override = override_dir / "static" if override_dir is not None else None
    if override is not None and override.is_dir():
        return _Static(directory=override, packages=[("gatepass", "static")])
    return _Static(packages=[("gatepass", "static")])


async def static(request: Request) -> Response:
    files: StaticFiles = request.app.state.static
    # StaticFiles resolves the path safely (no way out of its folders) and
    # answers 404 for anything it does not have.
    return await files.get_response(request.path_params["path"], request.scope)


async def favicon(request: Request) -> Response:
    """Browsers ask for /favicon.ico on pages without an icon link (JSON ones)."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


routes = [
    Route("/", home, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_submit, methods=["POST"]),
    Route("/register", register_page, methods=["GET"]),
    Route("/register", register_submit, methods=["POST"]),
    Route("/logout", logout_submit, methods=["POST"]),
    Route("/account", account, methods=["GET"]),
    Route("/account/sessions/revoke-others", account_revoke_others, methods=["POST"]),
    Route("/account/sessions/{session_id}/revoke", account_revoke, methods=["POST"]),
    Route("/account/providers/unlink", account_unlink, methods=["POST"]),
    Route("/favicon.ico", favicon, methods=["GET"]),
    Route("/static/{path:path}", static, methods=["GET"]),
]
