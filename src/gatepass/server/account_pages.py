"""HTML pages of the account lifecycle: forgot and reset password, verify
email, confirm an email change, and the change-password, change-email and
resend forms of ``/account``.

The same flows as the JSON API (:mod:`gatepass.server.account_api`), with
answers a person can read.  Forms post without JavaScript and carry the CSRF
token.  A GET never changes anything: the verification link opens a page
whose button POSTs.  Pages that hold a token in their URL are ``no-store``
like every page, and the ``Referrer-Policy: no-referrer`` header keeps the
token out of any request the page makes; the access log is told to drop
their query (:data:`gatepass.server.oauth_routes.ACCESS_LOG_FILTER`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatepass.asgi.dependencies import current_user
from gatepass.asgi.middleware import client_ip
from gatepass.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidLinkToken,
    InvalidRequest,
    RateLimited,
)
from gatepass.server import account_api
from gatepass.server.bodies import read_fields, string_field
from gatepass.server.components import components
from gatepass.server.pages import account_page
from gatepass.server.rendering import error_page, render
from gatepass.users.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

_BAD_LINK = (
    "This link is invalid or has expired",
    "Links work once and only for a while. Ask for a new one.",
)


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


def _text(fields: dict[str, object], name: str, limit: int = 1024) -> str:
    value = fields.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _bad_link(request: Request, again: str, label: str) -> Response:
    title, detail = _BAD_LINK
    return render(
        request, "done.html", title, 400, detail=detail, narrow=True,
        links=[(again, label), ("/login", "Sign in")],
    )  # fmt: skip


# -- forgot ------------------------------------------------------------------


async def forgot_page(request: Request) -> Response:
    return render(request, "password_forgot.html", "Forgot your password?", narrow=True,
                  email="", sent=False)  # fmt: skip


async def forgot_submit(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    email = _text(fields, "email", 320)
    try:
        await account_api.request_reset(parts, email, client_ip(request.scope))
    except RateLimited as exc:
        return render(
            request, "password_forgot.html", "Forgot your password?", 429,
            {"retry-after": str(exc.retry_after)}, email=email, sent=False, narrow=True,
            message="Too many requests; try again later.",
        )  # fmt: skip
    # The same page whether or not the address has an account.
    return render(
        request, "password_forgot.html", "Check your mail", email=email, sent=True, narrow=True,
        valid_for=_minutes(parts.links.reset_ttl),
    )  # fmt: skip


# -- reset -------------------------------------------------------------------


def _reset_form(request: Request, token: str, message: str = "", status: int = 200) -> Response:
    return render(
        request, "password_reset.html", "Choose a new password", status, token=token,
        message=message or None, narrow=True,
        min_password=MIN_PASSWORD_LENGTH, max_password=MAX_PASSWORD_LENGTH,
    )  # fmt: skip


async def reset_page(request: Request) -> Response:
    # Only shown here: whether the token is any good is decided on submit,
    # so merely opening the link (a mail scanner does) spends nothing.
    return _reset_form(request, request.query_params.get("token", "")[:128])


async def reset_submit(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    token = _text(fields, "token", 128)
    try:
        await account_api.reset_password(
            parts, token, string_field(fields, "password"), client_ip(request.scope)
        )
    except InvalidLinkToken:
        return _bad_link(request, "/password/forgot", "Get a new link")
    except InvalidRequest as exc:  # weak or oversize password: the link still works
        return _reset_form(request, token, exc.detail, 400)
    return render(
        request, "done.html", "Password changed", narrow=True,
        detail="Your new password is set and every device was signed out. Sign in again.",
        links=[("/login", "Sign in")],
    )  # fmt: skip


# -- verify ------------------------------------------------------------------


async def verify_page(request: Request) -> Response:
    return render(request, "email_verify.html", "Confirm your email", narrow=True,
                  token=request.query_params.get("token", "")[:128])  # fmt: skip


async def verify_submit(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    try:
        await account_api.verify_email(parts, _text(fields, "token", 128))
    except InvalidLinkToken:
        return _bad_link(request, "/account", "Your account")
    signed_in = await current_user(request) is not None
    return render(
        request, "done.html", "Email confirmed", narrow=True,
        detail="Thank you: your email address is confirmed.",
        links=[("/account", "Your account")] if signed_in else [("/login", "Sign in")],
    )  # fmt: skip


# -- email change ----------------------------------------------------------------


async def email_change_page(request: Request) -> Response:
    # As with verification: a GET spends nothing, the button POSTs.
    return render(request, "email_change.html", "Confirm your new email address", narrow=True,
                  token=request.query_params.get("token", "")[:128])  # fmt: skip


async def email_change_confirm_submit(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    try:
        user = await account_api.confirm_email_change(parts, _text(fields, "token", 128))
    except InvalidLinkToken:
        return _bad_link(request, "/account", "Your account")
    except EmailTaken as exc:
        return render(
            request, "done.html", "That address is taken", 409, detail=exc.detail, narrow=True,
            links=[("/account", "Your account")],
        )  # fmt: skip
    signed_in = await current_user(request) is not None
    return render(
        request, "done.html", "Email address changed", narrow=True,
        detail=f"Your account's email address is now {user.email}. "
        "Your other devices were signed out.",
        links=[("/account", "Your account")] if signed_in else [("/login", "Sign in")],
    )  # fmt: skip


# -- /account forms ------------------------------------------------------------


async def change_submit(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse("/login?next=%2Faccount", status_code=303)
    fields = await read_fields(request, components(request).settings.max_body_bytes,
                               allow_form=True)  # fmt: skip
    try:
        await account_api.change_password(
            request, identity,
            string_field(fields, "current_password"), string_field(fields, "new_password"),
        )  # fmt: skip
    except InvalidCredentials:
        return await account_page(request, identity, "Your current password is not right.",
                                  status=401)  # fmt: skip
    except RateLimited:
        return await account_page(request, identity, "Too many attempts; try again later.",
                                  status=429)  # fmt: skip
    except InvalidRequest as exc:
        return await account_page(request, identity, exc.detail, status=400)
    # The session id changed: the page must be rendered for the fresh one.
    fresh = request.scope["user"]
    return await account_page(
        request, fresh, "Your password is changed; your other devices are signed out.", ok=True
    )


async def email_change_submit(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse("/login?next=%2Faccount", status_code=303)
    fields = await read_fields(request, components(request).settings.max_body_bytes,
                               allow_form=True)  # fmt: skip
    new_email = _text(fields, "new_email", 320)
    try:
        await account_api.request_email_change(
            request, identity, new_email, string_field(fields, "password")
        )
    except InvalidCredentials:
        return await account_page(request, identity, "Your password is not right.", status=401)
    except RateLimited:
        return await account_page(request, identity, "Too many attempts; try again later.",
                                  status=429)  # fmt: skip
    except InvalidRequest as exc:
        return await account_page(request, identity, exc.detail, status=400)
    # The same words whether or not the address has an account.
    return await account_page(
        request, identity,
        f"We mailed a link to {new_email}. Your address changes once you open it.", ok=True,
    )  # fmt: skip


async def resend_submit(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse("/login?next=%2Faccount", status_code=303)
    parts = components(request)
    user = await parts.accounts.users.get(identity.user_id)
    if user is None:
        return error_page(request, 404, "Not found", "The account no longer exists.")
    try:
        await parts.mail_per_address.spend_address(client_ip(request.scope))
        await parts.mail_per_email.spend("email", user.email)
    except RateLimited:
        return await account_page(request, identity, "Too many mails; try again later.",
                                  status=429)  # fmt: skip
    await account_api.send_verification(parts, user)
    return await account_page(
        request, identity, f"A new link is on its way to {user.email}.", ok=True
    )


routes = [
    Route("/password/forgot", forgot_page, methods=["GET"]),
    Route("/password/forgot", forgot_submit, methods=["POST"]),
    Route("/password/reset", reset_page, methods=["GET"]),
    Route("/password/reset", reset_submit, methods=["POST"]),
    Route("/email/verify", verify_page, methods=["GET"]),
    Route("/email/verify", verify_submit, methods=["POST"]),
    Route("/account/password", change_submit, methods=["POST"]),
    Route("/account/email/resend", resend_submit, methods=["POST"]),
    Route("/account/email", email_change_submit, methods=["POST"]),
    Route("/email/change", email_change_page, methods=["GET"]),
    Route("/email/change", email_change_confirm_submit, methods=["POST"]),
]
