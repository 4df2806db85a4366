"""Second-factor endpoints: ``/auth/mfa/*`` (SPEC "Multi-factor authentication").

* ``POST /auth/mfa/totp/setup`` → ``{secret, otpauth_uri}``; the QR code of
  that URI is ``GET /auth/mfa/totp/qr.svg`` (drawn here, no image service).
* ``POST /auth/mfa/totp/confirm`` ``{code}`` → ``{recovery_codes}``: TOTP on.
* ``DELETE /auth/mfa/totp`` ``{password}`` or ``{code}``, or a login that
  authenticated within the last 5 minutes.
* ``POST /auth/mfa/recovery-codes``: ten new codes (the same re-authentication).
* ``GET /auth/mfa``: which factors are on.
* ``POST /auth/mfa/verify`` ``{mfa_token, code}`` or ``{mfa_token, passkey}``
  (an assertion for options from ``POST /auth/passkeys/login/options``): the second step of
  ``/auth/login`` or ``/auth/token``, answering exactly as that first step
  would have.  It is CSRF-exempt in the middleware and runs the CSRF checks
  itself when the first step was ``/auth/login`` (SPEC: "exactly when the
  first step did").
"""

from __future__ import annotations

import io
from typing import Any

import segno
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatepass.asgi.csrf import enforce_csrf
from gatepass.asgi.dependencies import RequireRecentAuth, require_user
from gatepass.asgi.middleware import client_ip
from gatepass.errors import InvalidCredentials, InvalidMFAToken, NotFound
from gatepass.identity import Identity
from gatepass.mfa.service import AMR_OTP
from gatepass.server import apidoc
from gatepass.server.api import user_json
from gatepass.server.apidoc import Operation, error, json_content, ref
from gatepass.server.bodies import bool_field, read_fields, string_field
from gatepass.server.components import components
from gatepass.server.second_step import client_of
from gatepass.server.signin import renew_with_factor, sign_in
from gatepass.users.model import User

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}

#: How recent a login must be to turn a factor off or replace the recovery
#: codes without typing the password or a code again.
RECENT_AUTH = 300

#: The second step is CSRF-checked by its handler, only for browser first steps.
CSRF_EXEMPT = frozenset({"/auth/mfa/verify"})


async def _user(request: Request, user_id: str) -> User:
    user = await components(request).accounts.users.get(user_id)
    if user is None or user.disabled:
        raise NotFound("The account no longer exists.")
    return user


async def status(request: Request) -> Response:
    identity = await require_user(request)
    parts = components(request)
    factors = await parts.mfa.factors(identity.user_id)
    return JSONResponse(
        {
            "totp": factors.totp_enabled,
            "recovery_codes_left": factors.recovery_codes_left,
            "passkeys": await parts.passkeys.count(identity.user_id),
            "methods": list(await parts.mfa.methods(identity.user_id)),
        },
        headers=NO_STORE,
    )


async def totp_setup(request: Request) -> Response:
    identity = await require_user(request)
    user = await _user(request, identity.user_id)
    setup = await components(request).mfa.begin_totp(user.id, user.email)
    return JSONResponse(
        {"secret": setup.secret, "otpauth_uri": setup.otpauth_uri}, headers=NO_STORE
    )


async def totp_qr(request: Request) -> Response:
    """The pending setup's otpauth URI as an SVG QR code (404 without a setup)."""
    identity = await require_user(request)
    user = await _user(request, identity.user_id)
    uri = await components(request).mfa.pending_uri(user.id, user.email)
    if uri is None:
        raise NotFound("There is no TOTP setup in progress.")
    return Response(qr_svg(uri), media_type="image/svg+xml", headers=NO_STORE)


def qr_svg(uri: str) -> str:
    """``uri`` as an SVG QR code (for this endpoint and the enrolment page).

    The SVG holds the secret: drawn without a title, script, style or
    external reference (so it also passes the pages' strict CSP inline),
    and never cached.
    """
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out, kind="svg", scale=4, xmldecl=False, svgns=True, svgclass="qr", lineclass=None
    )
    return out.getvalue().decode("ascii")


async def totp_confirm(request: Request) -> Response:
    identity = await require_user(request)
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    user = await _user(request, identity.user_id)
    codes = await parts.mfa.confirm_totp(
        user.id, string_field(fields, "code"), ip=client_ip(request.scope)
    )
    # The code just proved the factor: a browser login carries it from now
    # on (renewed under a new id); a Bearer token signs in again.
    await renew_with_factor(request, identity, user, (AMR_OTP,))
    return JSONResponse({"recovery_codes": codes}, headers=NO_STORE)


async def _reauthenticate(request: Request, identity: Identity) -> None:
    """The password or a code in the body, else a login younger than RECENT_AUTH."""
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_empty=True)
    await reauthenticate(request, identity, fields)


async def reauthenticate(request: Request, identity: Identity, fields: dict[str, Any]) -> None:
    """The one rule for the API and the /account forms: ``password`` or
    ``code`` in ``fields`` (checked and throttled like a sign-in), else a
    login younger than RECENT_AUTH (403 ``insufficient_user_authentication``)."""
    parts = components(request)
    ip = client_ip(request.scope)
    if fields.get("password") is not None:
        user = await _user(request, identity.user_id)
        password = string_field(fields, "password")
        checked = await parts.accounts.authenticate(user.email, password, client_ip=ip)
        if checked.id != identity.user_id:
            raise InvalidCredentials()
        return
    if fields.get("code") is not None:
        await parts.mfa.verify_code(identity.user_id, string_field(fields, "code"), ip=ip)
        return
    await RequireRecentAuth(RECENT_AUTH, clock=parts.sessions.clock)(request)


async def totp_disable(request: Request) -> Response:
    identity = await require_user(request)
    await _reauthenticate(request, identity)
    if not await components(request).mfa.disable_totp(identity.user_id):
        raise NotFound("TOTP is not on.")
    return Response(status_code=204)


async def recovery_codes(request: Request) -> Response:
    identity = await require_user(request)
    await _reauthenticate(request, identity)
    codes = await components(request).mfa.regenerate_recovery_codes(identity.user_id)
    return JSONResponse({"recovery_codes": codes}, headers=NO_STORE)


async def verify(request: Request) -> Response:
    """The second step: finish the sign-in the mfa_token stands for."""
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    token = string_field(fields, "mfa_token")
    passkey = fields.get("passkey")
    code = "" if passkey is not None else string_field(fields, "code")
    challenge = await parts.mfa.attempt(token, client=client_of(request))
    if challenge.kind == "login":
        # The browser first step needed CSRF; so does its second.
        await enforce_csrf(request)
    if passkey is not None:
        passed = await parts.mfa.finish_with_passkey(token, challenge, passkey)
    else:
        passed = await parts.mfa.finish(token, challenge, code, ip=client_ip(request.scope))
    user = await parts.accounts.users.get(challenge.user_id)
    if user is None or user.disabled:
        raise InvalidMFAToken()
    now = parts.sessions.clock()
    if challenge.kind == "token":
        asked = challenge.data.get("scopes")
        scopes = tuple(s for s in asked if isinstance(s, str)) if isinstance(asked, list) else ()
        pair = await parts.tokens.issue(
            user.id,
            roles=user.roles,
            scopes=scopes,
            kind="api",
            ip=client_ip(request.scope),
            user_agent=request.headers.get("user-agent"),
            amr=passed.amr,
            auth_time=now,
        )
        return JSONResponse(pair.as_json(), headers=NO_STORE)
    await sign_in(request, user, amr=passed.amr, remember=bool_field(challenge.data, "remember"))
    return JSONResponse({"user": user_json(user)}, headers=NO_STORE)


routes = [
    Route("/auth/mfa", status, methods=["GET"]),
    Route("/auth/mfa/totp/setup", totp_setup, methods=["POST"]),
    Route("/auth/mfa/totp/qr.svg", totp_qr, methods=["GET"]),
    Route("/auth/mfa/totp/confirm", totp_confirm, methods=["POST"]),
    Route("/auth/mfa/totp", totp_disable, methods=["DELETE"]),
    Route("/auth/mfa/recovery-codes", recovery_codes, methods=["POST"]),
    Route("/auth/mfa/verify", verify, methods=["POST"]),
]

_THROTTLED = error("Too many wrong codes or passwords (`rate_limited`).",
                   headers=apidoc.RETRY_AFTER)  # fmt: skip
_CODES = {"description": "OK", "headers": apidoc.NO_STORE, **json_content(ref("RecoveryCodes"))}
_REAUTH = apidoc.body(ref("Reauthentication"), required=False)
_REAUTH_401 = error(
    "`invalid_credentials` or `invalid_code`, or not signed in.",
    headers=apidoc.WWW_AUTHENTICATE,
)
_REAUTH_403 = error(
    "The CSRF checks failed, or no password or code was sent and the sign-in is older "
    "than 5 minutes (`insufficient_user_authentication`)."
)

api_docs = apidoc.ApiDocs(
    {
        ("/auth/mfa", "GET"): Operation(
            "My second factors.",
            {"200": {"description": "OK", **json_content(ref("MFAStatus"))}},
            security=apidoc.USER,
        ),
        ("/auth/mfa/totp/setup", "POST"): Operation(
            "Start TOTP enrolment: a new secret (replacing an unconfirmed one).",
            {
                "200": {
                    "description": "OK",
                    "headers": apidoc.NO_STORE,
                    **json_content(ref("TotpSetup")),
                },
                "404": error("The account no longer exists."),
                "409": error("TOTP is already on (`conflict`)."),
            },
            security=apidoc.USER_UNSAFE,
        ),
        ("/auth/mfa/totp/qr.svg", "GET"): Operation(
            "The QR code of the enrolment in progress, drawn by the server.",
            {
                "200": {
                    "description": "An SVG image (no script, no external reference).",
                    "content": {"image/svg+xml": {"schema": {"type": "string"}}},
                },
                "404": error("No enrolment in progress."),
            },
            security=apidoc.USER,
        ),
        ("/auth/mfa/totp/confirm", "POST"): Operation(
            "Finish TOTP enrolment with a code: TOTP is on; ten recovery codes, shown once.",
            {
                "200": _CODES,
                "409": error("No enrolment in progress (`conflict`)."),
                "401": error("`invalid_code`, or not signed in.", headers=apidoc.WWW_AUTHENTICATE),
                "429": _THROTTLED,
            },
            security=apidoc.USER_UNSAFE,
            body=apidoc.body(ref("TotpCode")),
        ),
        ("/auth/mfa/totp", "DELETE"): Operation(
            "Turn TOTP off (and void the recovery codes).",
            {
                "204": {"description": "Done (no body)."},
                "401": _REAUTH_401,
                "403": _REAUTH_403,
                "404": error("TOTP is not on."),
                "429": _THROTTLED,
            },
            security=apidoc.USER_UNSAFE,
            body=_REAUTH,
        ),
        ("/auth/mfa/recovery-codes", "POST"): Operation(
            "Replace every recovery code by ten new ones, shown once.",
            {
                "200": _CODES,
                "409": error("TOTP is off: no recovery codes without it (`conflict`)."),
                "401": _REAUTH_401,
                "403": _REAUTH_403,
                "404": error("The account no longer exists."),
                "429": _THROTTLED,
            },
            security=apidoc.USER_UNSAFE,
            body=_REAUTH,
        ),
        ("/auth/mfa/verify", "POST"): Operation(
            "The second step: answers exactly like the first step would have (a session "
            "cookie and `{user}` after `/auth/login`, the token pair after `/auth/token`).",
            {
                "200": {
                    "description": "OK",
                    "headers": apidoc.NO_STORE,
                    **json_content({"anyOf": [ref("LoggedIn"), ref("TokenPair")]}),
                },
                "401": error(
                    "`invalid_code` (the mfa_token stays usable until its 5 attempts are "
                    "spent) or `invalid_mfa_token` (unknown, used, expired, void, or from "
                    "another client: sign in again).",
                    headers=apidoc.WWW_AUTHENTICATE,
                ),
                "403": error("The first step was `/auth/login` and the CSRF checks failed."),
                "429": _THROTTLED,
            },
            security=[{}, {"csrfHeader": [], "csrfCookie": []}],
            body=apidoc.body(ref("MFAVerify")),
        ),
    },
    schemas={
        "MFAStatus": {
            "type": "object",
            "required": ["totp", "recovery_codes_left", "passkeys", "methods"],
            "properties": {
                "totp": {"type": "boolean"},
                "recovery_codes_left": {"type": "integer", "minimum": 0},
                "passkeys": {"type": "integer", "minimum": 0},
                "methods": {
                    "type": "array",
                    "items": {"enum": ["totp", "recovery_code", "passkey"]},
                },
            },
            "additionalProperties": False,
        },
        "TotpSetup": {
            "type": "object",
            "required": ["secret", "otpauth_uri"],
            "properties": {
                "secret": {"type": "string", "pattern": "^[A-Z2-7]{32}$"},
                "otpauth_uri": {"type": "string", "pattern": "^otpauth://totp/"},
            },
            "additionalProperties": False,
        },
        "TotpCode": {
            "type": "object",
            "required": ["code"],
            "properties": {"code": {"type": "string", "minLength": 1, "maxLength": 64}},
        },
        "RecoveryCodes": {
            "type": "object",
            "required": ["recovery_codes"],
            "properties": {
                "recovery_codes": {
                    "type": "array",
                    "minItems": 10,
                    "maxItems": 10,
                    "items": {"type": "string", "pattern": "^[a-z2-9]{4}(-[a-z2-9]{4}){3}$"},
                    "description": "Shown once; each works once.  Only their hashes are kept.",
                }
            },
            "additionalProperties": False,
        },
        "Reauthentication": {
            "type": "object",
            "description": "The password, or a TOTP or recovery code; neither is needed when "
            "the caller signed in within the last 5 minutes.",
            "properties": {
                "password": {"type": "string", "minLength": 1},
                "code": {"type": "string", "minLength": 1, "maxLength": 64},
            },
        },
        "MFAVerify": {
            "type": "object",
            "required": ["mfa_token"],
            "description": "`code`, or `passkey` (an assertion for the options of "
            "`POST /auth/passkeys/login/options` with this `mfa_token`).",
            "anyOf": [{"required": ["code"]}, {"required": ["passkey"]}],
            "properties": {
                "mfa_token": {"type": "string", "minLength": 1},
                "code": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "description": "A TOTP code or a recovery code.",
                },
                "passkey": ref("PasskeyCredential"),
            },
        },
    },
)
