"""Passkey endpoints: ``/auth/passkeys*`` (WebAuthn, see docs/passkeys.md).

* ``GET /auth/passkeys``: the signed-in user's passkeys (name, created, last used).
* ``POST /auth/passkeys/register/options`` → the options for
  ``navigator.credentials.create()``; ``POST /auth/passkeys/register``
  ``{credential, name}`` → 201 the new passkey.
* ``PATCH /auth/passkeys/{id}`` ``{name}`` renames one; ``DELETE
  /auth/passkeys/{id}`` removes one, with the re-authentication turning TOTP
  off needs (the password or a code in the body, or a login younger than
  5 minutes).
* ``POST /auth/passkeys/login/options`` → options for
  ``navigator.credentials.get()``: for a sign-in with a passkey alone, or,
  given ``{mfa_token}``, for the second step (then answered at
  ``POST /auth/mfa/verify`` ``{mfa_token, passkey}``), or given
  ``{second_step: true}``, for the second-step page's sign-in (its token is
  in the page's HttpOnly cookie; the page's form then posts the assertion).
* ``POST /auth/passkeys/login`` ``{credential, remember?}``: a sign-in with a
  passkey alone; answers like ``POST /auth/login``.

Everything is CSRF-checked like the other cookie-authenticated endpoints;
the options for a second step are checked by their handler exactly when
the first step was (as ``/auth/mfa/verify`` is).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatepass.asgi.csrf import enforce_csrf
from gatepass.asgi.dependencies import require_user
from gatepass.errors import EmailUnverified, InvalidMFAToken, InvalidPasskey, InvalidRequest
from gatepass.passkeys.service import AMR_MFA
from gatepass.server import apidoc
from gatepass.server.api import user_json
from gatepass.server.apidoc import Operation, error, json_content, ref
from gatepass.server.bodies import bool_field, read_fields
from gatepass.server.components import components
from gatepass.server.mfa_routes import NO_STORE, _reauthenticate, _user
from gatepass.server.second_step import client_of, held_challenge
from gatepass.server.signin import sign_in

#: The second step's options are CSRF-checked by their handler.
CSRF_EXEMPT = frozenset({"/auth/passkeys/login/options"})


async def list_passkeys(request: Request) -> Response:
    identity = await require_user(request)
    found = await components(request).passkeys.passkeys(identity.user_id)
    return JSONResponse({"passkeys": [p.as_json() for p in found]}, headers=NO_STORE)


async def register_options(request: Request) -> Response:
    identity = await require_user(request)
    user = await _user(request, identity.user_id)
    options = await components(request).passkeys.registration_options(
        user.id, user.email, client=client_of(request)
    )
    return JSONResponse(options, headers=NO_STORE)


async def register(request: Request) -> Response:
    identity = await require_user(request)
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    user = await _user(request, identity.user_id)
    passkey = await parts.passkeys.register(
        user.id, fields.get("credential"), fields.get("name"), client=client_of(request)
    )
    return JSONResponse(passkey.as_json(), status_code=201, headers=NO_STORE)


async def rename(request: Request) -> Response:
    identity = await require_user(request)
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    renamed = await parts.passkeys.rename(
        identity.user_id, request.path_params["passkey_id"], fields.get("name")
    )
    return JSONResponse(renamed.as_json(), headers=NO_STORE)


async def remove(request: Request) -> Response:
    identity = await require_user(request)
    await _reauthenticate(request, identity)
    passkey_id = request.path_params["passkey_id"]
    await components(request).passkeys.remove(identity.user_id, passkey_id)
    return Response(status_code=204)


async def login_options(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_empty=True)
    token = fields.get("mfa_token")
    if "mfa_token" in fields and not isinstance(token, str):
        # Present but not a string (null included): never read as "absent".
        raise InvalidRequest("The field 'mfa_token' must be a string.")
    if "second_step" in fields and not isinstance(fields["second_step"], bool):
        raise InvalidRequest("The field 'second_step' must be true or false.")
    if token is None and fields.get("second_step") is True:
        # The second-step page: its mfa_token is in the HttpOnly cookie.
        held = held_challenge(request)
        token = held[1] if held is not None else ""
    if token is None:
        await enforce_csrf(request)
        options = await parts.passkeys.login_options(client=client_of(request))
        return JSONResponse(options, headers=NO_STORE)
    if not isinstance(token, str):
        raise InvalidMFAToken()
    challenge = await parts.mfa.attempt(token, client=client_of(request))
    if challenge.kind == "login":
        await enforce_csrf(request)
    options = await parts.mfa.passkey_options(token, challenge)
    return JSONResponse(options, headers=NO_STORE)


async def login(request: Request) -> Response:
    """A sign-in with a passkey alone (user verification required)."""
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    remember = bool_field(fields, "remember")
    asserted = await parts.passkeys.sign_in(fields.get("credential"), client=client_of(request))
    user = await parts.accounts.users.get(asserted.user_id)
    if user is None or user.disabled:
        # As a password login: a disabled account looks like a wrong credential.
        raise InvalidPasskey()
    if parts.accounts.require_verified_email and not user.email_verified:
        raise EmailUnverified()
    await sign_in(request, user, amr=(*asserted.amr, AMR_MFA), remember=remember)
    return JSONResponse({"user": user_json(user)}, headers=NO_STORE)


async def one_passkey(request: Request) -> Response:
    return await (rename if request.method == "PATCH" else remove)(request)


routes = [
    Route("/auth/passkeys", list_passkeys, methods=["GET"]),
    Route("/auth/passkeys/register/options", register_options, methods=["POST"]),
    Route("/auth/passkeys/register", register, methods=["POST"]),
    Route("/auth/passkeys/login/options", login_options, methods=["POST"]),
    Route("/auth/passkeys/login", login, methods=["POST"]),
    # One route for both methods, so a 405 names both in its Allow header.
    Route("/auth/passkeys/{passkey_id}", one_passkey, methods=["PATCH", "DELETE"]),
]

_OPTIONS = {"description": "OK", "headers": apidoc.NO_STORE, **json_content(ref("WebAuthnOptions"))}
_ONE = {"description": "OK", "headers": apidoc.NO_STORE, **json_content(ref("Passkey"))}
_PASSKEY_ID = apidoc.path_parameter("passkey_id", "The passkey's id here (from the list).")
_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "description": "Printable characters (no control, format or unassigned code points; "
    "400 otherwise); runs of white space become one space.",
}

api_docs = apidoc.ApiDocs(
    {
        ("/auth/passkeys", "GET"): Operation(
            "My passkeys (name, created, last used), oldest first.",
            {
                "200": {
                    "description": "OK",
                    "headers": apidoc.NO_STORE,
                    **json_content(ref("PasskeyList")),
                }
            },
            security=apidoc.USER,
        ),
        ("/auth/passkeys/register/options", "POST"): Operation(
            "Start registering a passkey: options for `navigator.credentials.create()` "
            "(a discoverable credential; the user's passkeys excluded).",
            {
                "200": _OPTIONS,
                "404": error("The account no longer exists."),
                "409": error("The account has 20 passkeys already (`conflict`)."),
            },
            security=apidoc.USER_UNSAFE,
        ),
        ("/auth/passkeys/register", "POST"): Operation(
            "Finish registering a passkey with the authenticator's answer and a name.",
            {
                "201": _ONE,
                "400": error(
                    "Malformed, or `invalid_passkey`: the answer does not verify (wrong "
                    "origin or RP ID, challenge unknown, used, expired or not this "
                    "client's); nothing is stored."
                ),
                "409": error("Already registered, or 20 passkeys already (`conflict`)."),
            },
            security=apidoc.USER_UNSAFE,
            body=apidoc.body(ref("PasskeyRegistration")),
        ),
        ("/auth/passkeys/login/options", "POST"): Operation(
            "Options for `navigator.credentials.get()`: for a sign-in with a passkey "
            "alone (user verification required), or with `mfa_token` for the second "
            "step (the user's passkeys; user presence enough).",
            {
                "200": _OPTIONS,
                "401": error(
                    "`invalid_mfa_token` (unknown, used, expired, void, or another client's).",
                    headers=apidoc.WWW_AUTHENTICATE,
                ),
                "403": error(
                    "The CSRF checks failed (always checked, except for the second step "
                    "of `/auth/token`)."
                ),
                "404": error("The account has no passkey."),
            },
            security=[{}, {"csrfHeader": [], "csrfCookie": []}],
            body=apidoc.body(ref("PasskeyOptionsRequest"), required=False),
            csrf=False,
        ),
        ("/auth/passkeys/login", "POST"): Operation(
            "Sign in with a passkey alone: answers like `POST /auth/login` (a session "
            "cookie or, in jwt browser mode, token cookies; `amr` `hwk`/`swk`, `user`, "
            "`mfa`).",
            {
                "200": {
                    "description": "OK",
                    "headers": apidoc.NO_STORE,
                    **json_content(ref("LoggedIn")),
                },
                "401": error(
                    "`invalid_passkey`: unknown credential; challenge unknown, used, expired "
                    "or another client's; wrong origin or RP ID; bad signature; no user "
                    "verification; a counter that went backwards.",
                    headers=apidoc.WWW_AUTHENTICATE,
                ),
                "403": error(
                    "The CSRF checks failed, or the email address is not confirmed "
                    "(`email_unverified`)."
                ),
            },
            security=apidoc.ANONYMOUS_UNSAFE,
            body=apidoc.body(ref("PasskeyLogin")),
        ),
        ("/auth/passkeys/{passkey_id}", "PATCH"): Operation(
            "Rename one of my passkeys.",
            {"200": _ONE, "404": error("No such passkey of mine.")},
            security=apidoc.USER_UNSAFE,
            body=apidoc.body(ref("PasskeyName")),
            parameters=[_PASSKEY_ID],
        ),
        ("/auth/passkeys/{passkey_id}", "DELETE"): Operation(
            "Remove one of my passkeys (the re-authentication of `DELETE /auth/mfa/totp`).",
            {
                "204": {"description": "Done (no body)."},
                "401": error(
                    "`invalid_credentials` or `invalid_code`, or not signed in.",
                    headers=apidoc.WWW_AUTHENTICATE,
                ),
                "403": error(
                    "The CSRF checks failed, or no password or code was sent and the "
                    "sign-in is older than 5 minutes (`insufficient_user_authentication`)."
                ),
                "404": error("No such passkey of mine."),
                "429": error(
                    "Too many wrong codes or passwords (`rate_limited`).",
                    headers=apidoc.RETRY_AFTER,
                ),
            },
            security=apidoc.USER_UNSAFE,
            body=apidoc.body(ref("Reauthentication"), required=False),
            parameters=[_PASSKEY_ID],
        ),
    },
    schemas={
        "Passkey": {
            "type": "object",
            "required": ["id", "name", "created_at", "last_used_at", "transports"],
            "properties": {
                "id": {
                    "type": "string",
                    "description": "The passkey's id here (not its WebAuthn credential id).",
                },
                "name": _NAME,
                "created_at": {"type": "number"},
                "last_used_at": {"type": ["number", "null"]},
                "transports": {"type": "array", "items": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        "PasskeyList": {
            "type": "object",
            "required": ["passkeys"],
            "properties": {"passkeys": {"type": "array", "items": ref("Passkey")}},
            "additionalProperties": False,
        },
        "PasskeyCredential": {
            "type": "object",
            "description": "A `PublicKeyCredential` as JSON (WebAuthn Level 3 `toJSON()`: "
            "binary members base64url).",
            "required": ["id", "rawId", "type", "response"],
            "properties": {
                "id": {"type": "string"},
                "rawId": {"type": "string"},
                "type": {"const": "public-key"},
                "response": {"type": "object"},
            },
        },
        "PasskeyRegistration": {
            "type": "object",
            "required": ["credential", "name"],
            "properties": {"credential": ref("PasskeyCredential"), "name": _NAME},
        },
        "PasskeyName": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": _NAME},
        },
        "PasskeyLogin": {
            "type": "object",
            "required": ["credential"],
            "properties": {"credential": ref("PasskeyCredential"), "remember": {"type": "boolean"}},
        },
        "PasskeyOptionsRequest": {
            "type": "object",
            "properties": {
                "mfa_token": {
                    "type": "string",
                    "description": "For the second step of a sign-in (counts as one of its "
                    "attempts); without it, options for a sign-in with a passkey alone.",
                },
                "second_step": {
                    "type": "boolean",
                    "description": "The second-step page's own request: its mfa_token is "
                    "in the page's HttpOnly cookie.",
                },
            },
        },
        "WebAuthnOptions": {
            "type": "object",
            "description": "Options for `navigator.credentials.create()` or `.get()` as JSON "
            "(binary members base64url), e.g. for `PublicKeyCredential.parse…OptionsFromJSON()`. "
            "The challenge works once, for 5 minutes, from this client only.",
        },
    },
)
