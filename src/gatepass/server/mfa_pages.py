"""HTML pages of the second factor: the second step of a browser sign-in,
and TOTP enrolment, turning it off and new recovery codes from /account.

``GET /login/second-step`` asks for a TOTP or recovery code; ``POST`` checks
it through the same :class:`~gatepass.mfa.service.MFAService` rules as
``POST /auth/mfa/verify`` (attempts counted on the token, throttled per
account and address, each code once) and then signs in exactly as the first
step would have (``remember``, the vetted ``next``).  The mfa_token travels
in :data:`~gatepass.server.second_step.MFA_COOKIE`; the form carries the
CSRF token like every form (the middleware checks it).

Enrolment: ``POST /account/mfa/totp/setup`` starts a setup and redirects to
``GET /account/mfa/totp``, which shows the pending secret as an inline SVG
QR code and as text (a GET reads, never changes anything);
``POST /account/mfa/totp/confirm`` turns TOTP on with a code, renews this
login with the factor in its ``amr`` and shows the recovery codes once.
Turning TOTP off (``POST /account/mfa/totp/disable``) and new codes
(``POST /account/mfa/recovery-codes``) need the password or a code, or a
sign-in within the last 5 minutes: the API's rule
(:func:`gatepass.server.mfa_routes.reauthenticate`).
"""

from __future__ import annotations

import json
from urllib.parse import quote

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatepass.asgi.dependencies import current_user
from gatepass.asgi.headers import csp_with_form_target
from gatepass.asgi.middleware import client_ip
from gatepass.errors import (
    Conflict,
    InsufficientAuthentication,
    InvalidCode,
    InvalidCredentials,
    InvalidMFAToken,
    InvalidPasskey,
    InvalidRequest,
    RateLimited,
)
from gatepass.identity import Identity
from gatepass.mfa.service import AMR_OTP, MAX_CODE_LENGTH
from gatepass.mfa.store import Challenge
from gatepass.server.bodies import read_fields
from gatepass.server.components import components
from gatepass.server.mfa_policy import enrolment_required
from gatepass.server.mfa_routes import qr_svg, reauthenticate
from gatepass.server.pages import account_page
from gatepass.server.rendering import render
from gatepass.server.second_step import MFA_COOKIE, client_of, held_challenge
from gatepass.server.signin import renew_with_factor, sign_in

WRONG_CODE = "That code is not right, or it was already used. Try the next code."
PASSKEY_FAILED = "That passkey could not be verified. Try again."


def _form(
    request: Request, methods: tuple[str, ...], next_path: str, message: str = "", *,
    status: int = 200, headers: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    return render(
        request, "second_step.html", "Two-step verification", status,
        {**csp_with_form_target(next_path), **(headers or {})},
        methods=methods, next_path=next_path, message=message or None, narrow=True,
    )  # fmt: skip


def _restart(request: Request, next_path: str) -> Response:
    """The token is gone (used, expired, void, another client): sign in again."""
    response = RedirectResponse(
        f"/login?restart=1&next={quote(next_path, safe='')}", status_code=303
    )
    response.headers.append("set-cookie", MFA_COOKIE.deletion_header())
    return response


async def second_step_page(request: Request) -> Response:
    parts = components(request)
    next_path = parts.safe_next(request.query_params.get("next"))
    held = held_challenge(request)
    if held is None:
        return RedirectResponse(f"/login?next={quote(next_path, safe='')}", status_code=303)
    return _form(request, held[0], next_path)


async def second_step_submit(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    raw_next = fields.get("next")
    form_next = parts.safe_next(raw_next if isinstance(raw_next, str) else None)
    held = held_challenge(request)
    if held is None:
        return _restart(request, form_next)
    methods, token = held
    if "passkey" in methods and isinstance(fields.get("passkey"), str) and fields["passkey"]:
        return await _passkey_submit(request, methods, token, fields["passkey"], form_next)
    code = fields.get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > MAX_CODE_LENGTH:
        # Nothing to check: no attempt is spent on an empty form.
        return _form(request, methods, form_next, "Enter a code.", status=400)
    try:
        challenge = await parts.mfa.attempt(token, client=client_of(request))
    except InvalidMFAToken:
        return _restart(request, form_next)
    saved_next = challenge.data.get("next")
    next_path = parts.safe_next(saved_next if isinstance(saved_next, str) else None)
    try:
        passed = await parts.mfa.finish(token, challenge, code, ip=client_ip(request.scope))
    except InvalidCode:
        return _form(request, methods, next_path, WRONG_CODE, status=401)
    except RateLimited as exc:
        return _form(
            request, methods, next_path, "Too many attempts; try again in a moment.",
            status=429, headers={"retry-after": str(exc.retry_after)},
        )  # fmt: skip
    except InvalidMFAToken:  # taken by a concurrent request
        return _restart(request, next_path)
    return await _signed_in(request, challenge, passed.amr, next_path)


async def _signed_in(request: Request, challenge: Challenge, amr: tuple[str, ...],
                     next_path: str) -> Response:  # fmt: skip
    """The second step passed: sign in as the first step would have, and go on."""
    user = await components(request).accounts.users.get(challenge.user_id)
    if user is None or user.disabled:
        return _restart(request, next_path)
    await sign_in(request, user, amr=amr, remember=challenge.data.get("remember") is True)
    response = RedirectResponse(next_path, status_code=303)
    response.headers.append("set-cookie", MFA_COOKIE.deletion_header())
    return response


async def _passkey_submit(request: Request, methods: tuple[str, ...], token: str, raw: str,
                          form_next: str) -> Response:  # fmt: skip
    """The second step answered with a passkey (the assertion passkeys.js put
    in the form): the rules of ``POST /auth/mfa/verify`` with ``passkey``."""
    parts = components(request)
    try:
        credential = json.loads(raw)
    except ValueError:
        return _form(request, methods, form_next, PASSKEY_FAILED, status=400)
    try:
        challenge = await parts.mfa.attempt(token, client=client_of(request))
    except InvalidMFAToken:
        return _restart(request, form_next)
    saved_next = challenge.data.get("next")
    next_path = parts.safe_next(saved_next if isinstance(saved_next, str) else None)
    try:
        passed = await parts.mfa.finish_with_passkey(token, challenge, credential)
    except (InvalidPasskey, InvalidRequest):
        return _form(request, methods, next_path, PASSKEY_FAILED, status=401)
    except InvalidMFAToken:
        return _restart(request, next_path)
    return await _signed_in(request, challenge, passed.amr, next_path)


# -- enrolment and management from /account ---------------------------------

SETUP_PATH = "/account/mfa/totp"
TO_ACCOUNT = "/login?next=%2Faccount"


def _grouped(secret: str) -> str:
    """``JBSW Y3DP EHPK 3PXP``: easier to type into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


async def _setup_form(request: Request, identity: Identity, message: str = "", *,
                      status: int = 200) -> Response:  # fmt: skip
    parts = components(request)
    user = await parts.accounts.users.get(identity.user_id)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    setup = await parts.mfa.pending_setup(user.id, user.email)
    required = enrolment_required(request)
    if setup is None:
        if (await parts.mfa.factors(user.id)).totp_enabled:
            return RedirectResponse("/account", status_code=303)
        # Nothing started yet (e.g. walked here by the policy): a button
        # starts it, since a GET changes nothing.
        return render(request, "mfa_setup.html", "Set up an authenticator app", status,
                      qr=None, secret=None, message=message or None, narrow=True,
                      required=required)  # fmt: skip
    return render(
        request, "mfa_setup.html", "Set up an authenticator app", status,
        # segno's drawing of the URI: no text of the user's in it.
        qr=Markup(qr_svg(setup.otpauth_uri)),  # noqa: S704
        secret=_grouped(setup.secret), message=message or None, narrow=True,
        required=required,
    )  # fmt: skip


def _codes_page(request: Request, codes: list[str], title: str, *,
                replaced: bool = False) -> Response:  # fmt: skip
    """The recovery codes, shown this once (never cached, never shown again)."""
    return render(request, "mfa_codes.html", title, headers={"pragma": "no-cache"},
                  codes=codes, replaced=replaced, narrow=True)  # fmt: skip


async def setup_start(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse(TO_ACCOUNT, status_code=303)
    parts = components(request)
    user = await parts.accounts.users.get(identity.user_id)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    try:
        await parts.mfa.begin_totp(user.id, user.email)
    except Conflict:
        return await account_page(request, identity, "Two-step verification is already on.",
                                  status=409)  # fmt: skip
    return RedirectResponse(SETUP_PATH, status_code=303)


async def setup_page(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse(TO_ACCOUNT, status_code=303)
    return await _setup_form(request, identity)


async def setup_confirm(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse(TO_ACCOUNT, status_code=303)
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    user = await parts.accounts.users.get(identity.user_id)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    code = fields.get("code")
    try:
        codes = await parts.mfa.confirm_totp(
            user.id, code if isinstance(code, str) else "", ip=client_ip(request.scope)
        )
    except (InvalidCode, InvalidRequest):
        return await _setup_form(
            request, identity, "That code is not right. Check the time on your device and "
            "enter the code your app shows now.", status=401,
        )  # fmt: skip
    except RateLimited:
        return await _setup_form(request, identity, "Too many attempts; try again in a moment.",
                                 status=429)  # fmt: skip
    except Conflict:  # no setup in progress (finished in another tab)
        return RedirectResponse("/account", status_code=303)
    await renew_with_factor(request, identity, user, (AMR_OTP,))
    return _codes_page(request, codes, "Two-step verification is on")


async def _reauthenticated(request: Request, identity: Identity) -> Response | None:
    """None when the /account form's password or code (or a recent sign-in)
    confirms it is the user; else /account with the reason."""
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    given = {name: value for name in ("password", "code")
             if isinstance(value := fields.get(name), str) and value}  # fmt: skip
    try:
        await reauthenticate(request, identity, given)
    except (InvalidCredentials, InvalidCode, InvalidRequest):
        return await account_page(request, identity, "That password or code is not right.",
                                  status=401)  # fmt: skip
    except RateLimited:
        return await account_page(request, identity, "Too many attempts; try again later.",
                                  status=429)  # fmt: skip
    except InsufficientAuthentication:
        return await account_page(
            request, identity, "Enter your password or a code from your app to confirm.",
            status=403,
        )  # fmt: skip
    return None


async def disable_submit(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse(TO_ACCOUNT, status_code=303)
    refused = await _reauthenticated(request, identity)
    if refused is not None:
        return refused
    if not await components(request).mfa.disable_totp(identity.user_id):
        return await account_page(request, identity, "Two-step verification is not on.",
                                  status=404)  # fmt: skip
    return await account_page(request, identity, "Two-step verification is off.", ok=True)


async def recovery_submit(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse(TO_ACCOUNT, status_code=303)
    refused = await _reauthenticated(request, identity)
    if refused is not None:
        return refused
    try:
        codes = await components(request).mfa.regenerate_recovery_codes(identity.user_id)
    except Conflict:
        return await account_page(request, identity, "Turn two-step verification on first.",
                                  status=409)  # fmt: skip
    return _codes_page(request, codes, "New recovery codes", replaced=True)


routes = [
    Route("/login/second-step", second_step_page, methods=["GET"]),
    Route("/login/second-step", second_step_submit, methods=["POST"]),
    Route("/account/mfa/totp/setup", setup_start, methods=["POST"]),
    Route(SETUP_PATH, setup_page, methods=["GET"]),
    Route("/account/mfa/totp/confirm", setup_confirm, methods=["POST"]),
    Route("/account/mfa/totp/disable", disable_submit, methods=["POST"]),
    Route("/account/mfa/recovery-codes", recovery_submit, methods=["POST"]),
]
