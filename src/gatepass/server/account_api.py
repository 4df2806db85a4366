"""Account lifecycle: forgot and reset password, change password, verify email.

SPEC "Account lifecycle and mail"; SECURITY 40-42.  Handlers raise gatepass
errors and let the middleware answer them.  Mail is composed here but sent
off the request path (:meth:`gatepass.mail.Mailer.send` only queues), and
every link is built on ``GATEPASS_PUBLIC_URL`` by the composer, never on the
request's Host.  The flows are plain functions of the server's parts so the
HTML pages run exactly the same code as the JSON API.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatepass.asgi.dependencies import auth_of, require_user
from gatepass.asgi.middleware import client_ip
from gatepass.errors import EmailTaken, InvalidLinkToken, InvalidRequest, NotFound, UserExists
from gatepass.identity import Identity
from gatepass.logins import current_login_id
from gatepass.server import apidoc
from gatepass.server.apidoc import Operation, error, json_content, ref
from gatepass.server.bodies import read_fields, string_field
from gatepass.server.components import Components, components
from gatepass.server.token_api import jwt_login
from gatepass.users.emails import normalize_email
from gatepass.users.model import User

logger = logging.getLogger("gatepass.account")

NO_STORE = {"cache-control": "no-store"}


# -- the flows (shared with the pages) -------------------------------------


async def request_reset(parts: Components, raw_email: str, ip: str | None) -> None:
    """Mail a reset link if the account exists; the caller answers the same either way.

    Both paths do the same work in the request (quota, lookup, one store
    round trip, rendering a mail); only the known one queues the mail, and
    queueing returns at once.  So neither the answer nor its timing tells
    whether the address has an account (SECURITY 40).
    """
    try:
        email = normalize_email(raw_email)
    except InvalidRequest:
        email = raw_email.strip().lower()[:320]
    # Counted before the lookup, unknown addresses too: the quota says
    # nothing about existence and an attacker cannot mail-bomb a victim.
    await parts.mail_per_address.spend_address(ip)
    await parts.mail_per_email.spend("email", email)
    user = await parts.accounts.users.get_by_email(email)
    if user is not None and not user.disabled:
        token = await parts.links.issue("reset", user.id)
        mail = parts.mail.password_reset(user.email, token, ttl_seconds=int(parts.links.reset_ttl))
        parts.mailer.send(mail)
        logger.info("password reset requested (user %s)", user.id)
    else:
        # The same store round trip and rendering as the known path, with
        # nothing kept and nothing sent.
        dummy = secrets.token_urlsafe(32)
        await parts.links.store.take(
            hashlib.sha256(dummy.encode()).hexdigest(), purpose="reset", now=parts.links.clock()
        )
        parts.mail.password_reset("nobody@invalid.invalid", dummy)


async def reset_password(parts: Components, token: object, password: str, ip: str | None) -> User:
    """Set a new password with a reset token; every login of the user ends.

    A weak password is refused before the token is used, so the user can
    try again with the same link.
    """
    parts.accounts.hasher.check_policy(password)
    grant = await parts.links.redeem("reset", token)
    user = await parts.accounts.users.get(grant.user_id)
    if user is None or user.disabled:
        raise InvalidLinkToken()
    await parts.accounts.set_password(user, password)  # ends every login
    await parts.links.void("reset", user.id)  # any other link mailed before
    if not user.email_verified:
        # The link reached this address: that proves it as well as a
        # verification link would.
        await parts.accounts.users.set_email_verified(user.id, True)
    parts.mailer.send(parts.mail.password_changed(user.email, ip=ip))
    logger.info("password reset (user %s); every login ended", user.id)
    return user


async def change_password(request: Request, identity: Identity, current: str, new: str) -> None:
    """Change the signed-in user's password: this login stays with a fresh
    id, every other one ends (SECURITY 42: the current password is needed)."""
    parts = components(request)
    user = await _user_of(parts, identity)
    ip = client_ip(request.scope)
    await parts.accounts.check_password(user, current, client_ip=ip)
    await parts.accounts.change_password(user, new)
    keep: str | None
    if identity.session is not None:
        issued = await auth_of(request).rotate()
        keep = issued.record.public_id if issued is not None else None
    elif identity.scheme == "jwt-cookie":
        # A browser-JWT login: a new family replaces the old one, which ends
        # below with the others (its cookies are overwritten here).
        await jwt_login(request, user, amr=identity.amr)
        keep = current_login_id(request.scope.get("user"))
    else:
        # A Bearer client cannot be handed new tokens by a 204: its login stays.
        keep = current_login_id(identity)
    await parts.accounts.logins.end_others(user.id, keep=keep)
    await parts.links.void("reset", user.id)
    parts.mailer.send(parts.mail.password_changed(user.email, ip=ip))
    logger.info("password changed (user %s); other logins ended", user.id)


async def send_verification(parts: Components, user: User) -> None:
    """Mail a fresh verification link for the user's current address."""
    if parts.settings.email_verification == "off" or user.email_verified:
        return
    token = await parts.links.issue("verify", user.id, user.email)
    parts.mailer.send(
        parts.mail.email_verification(user.email, token, ttl_seconds=int(parts.links.verify_ttl))
    )


async def verify_email(parts: Components, token: object) -> User:
    grant = await parts.links.redeem("verify", token)
    user = await parts.accounts.users.get(grant.user_id)
    # The link proves the address it was mailed to, and only that one.
    if user is None or user.disabled or user.email != grant.data:
        raise InvalidLinkToken()
    await parts.accounts.users.set_email_verified(user.id, True)
    logger.info("email verified (user %s)", user.id)
    return user


async def request_email_change(
    request: Request, identity: Identity, raw_email: str, password: str
) -> None:
    """Start moving the signed-in account to another address (SECURITY 42).

    The current password is needed (throttled like a sign-in).  The NEW
    address gets a single-use link, or, when another account has it, a mail
    saying so with no link; the OLD address gets a notice it cannot act on.
    The caller answers 202 either way, so the answer never tells whether an
    address has an account.  Nothing changes until the link is opened
    (:func:`confirm_email_change`); a newer request voids older links.
    """
    parts = components(request)
    user = await _user_of(parts, identity)
    ip = client_ip(request.scope)
    new_email = normalize_email(raw_email)  # InvalidRequest: 400, nothing spent
    if new_email == user.email:
        raise InvalidRequest("That is already your email address.")
    await parts.accounts.check_password(user, password, client_ip=ip)
    # Mail quotas like forgot and resend: per client address, and per the
    # address that receives the mail (no mail-bombing a stranger's inbox).
    await parts.mail_per_address.spend_address(ip)
    await parts.mail_per_email.spend("email", new_email)
    await parts.links.void("email", user.id)
    if await parts.accounts.users.get_by_email(new_email) is None:
        data = json.dumps({"to": new_email, "from": user.email,
                           "login": current_login_id(identity)})  # fmt: skip
        token = await parts.links.issue("email", user.id, data)
        parts.mailer.send(
            parts.mail.email_change(new_email, token, ttl_seconds=int(parts.links.verify_ttl))
        )
        logger.info("email change requested (user %s)", user.id)
    else:
        # Taken: the same work as above (one store round trip, a rendered
        # mail), no link, and the same answer.
        dummy = secrets.token_urlsafe(32)
        await parts.links.store.take(
            hashlib.sha256(dummy.encode()).hexdigest(), purpose="email", now=parts.links.clock()
        )
        parts.mailer.send(parts.mail.email_change_taken(new_email))
        logger.info("email change to a taken address refused (user %s)", user.id)
    parts.mailer.send(parts.mail.email_change_requested(user.email, new_email, ip=ip))


async def confirm_email_change(parts: Components, token: object) -> User:
    """Open an email-change link: the account moves to the new address, verified.

    Refused (InvalidLinkToken) when the link is bad, the account is gone or
    disabled, or its address changed since the link was mailed; EmailTaken
    (409) when another account took the address meanwhile (the store's
    unique constraint decides a race between two confirmations).

    Logins: the one that asked for the change stays; every other one of the
    user ends, as after a password change.  Whoever changes the address has
    proved the password and the new mailbox; a login stolen earlier must
    not outlive a change of where the account's reset mails go.  Reset
    links already mailed to the old address are voided.
    """
    grant = await parts.links.redeem("email", token)
    try:
        data = json.loads(grant.data)
        new_email, old_email = str(data["to"]), str(data["from"])
        keep = data.get("login")
    except (ValueError, KeyError, TypeError):
        raise InvalidLinkToken() from None
    user = await parts.accounts.users.get(grant.user_id)
    if user is None or user.disabled or user.email != old_email:
        raise InvalidLinkToken()
    try:
        moved = await parts.accounts.users.set_email(user.id, new_email, expected=old_email)
    except UserExists:
        raise EmailTaken() from None
    if not moved:  # changed by another request between the read and the write
        raise InvalidLinkToken()
    await parts.links.void("reset", user.id)
    await parts.links.void("verify", user.id)
    await parts.accounts.logins.end_others(user.id, keep=keep if isinstance(keep, str) else None)
    logger.info("email changed (user %s); other logins ended", user.id)
    changed = await parts.accounts.users.get(user.id)
    if changed is None:
        raise InvalidLinkToken()
    return changed


async def _user_of(parts: Components, identity: Identity) -> User:
    user = await parts.accounts.users.get(identity.user_id)
    if user is None:
        raise NotFound("The account no longer exists.")
    return user


# -- the JSON API ----------------------------------------------------------


async def forgot(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    email = string_field(fields, "email")
    if len(email) > 1024:
        raise InvalidRequest("email is too long.")
    await request_reset(parts, email, client_ip(request.scope))
    return JSONResponse({}, status_code=202, headers=NO_STORE)


async def reset(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    password = string_field(fields, "password")
    await reset_password(parts, fields.get("token"), password, client_ip(request.scope))
    if auth_of(request).token is not None:
        # The caller's own session ended with the others: clear its cookie.
        await auth_of(request).logout()
    return Response(status_code=204, headers=NO_STORE)


async def change(request: Request) -> Response:
    identity = await require_user(request)
    fields = await read_fields(request, components(request).settings.max_body_bytes)
    await change_password(
        request,
        identity,
        string_field(fields, "current_password"),
        string_field(fields, "new_password"),
    )
    return Response(status_code=204, headers=NO_STORE)


async def verify(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    await verify_email(parts, fields.get("token"))
    return Response(status_code=204, headers=NO_STORE)


async def resend(request: Request) -> Response:
    identity = await require_user(request)
    parts = components(request)
    user = await _user_of(parts, identity)
    await parts.mail_per_address.spend_address(client_ip(request.scope))
    await parts.mail_per_email.spend("email", user.email)
    await send_verification(parts, user)
    return JSONResponse({}, status_code=202, headers=NO_STORE)


async def email_change(request: Request) -> Response:
    identity = await require_user(request)
    fields = await read_fields(request, components(request).settings.max_body_bytes)
    new_email = string_field(fields, "new_email")
    if len(new_email) > 1024:
        raise InvalidRequest("new_email is too long.")
    await request_email_change(request, identity, new_email, string_field(fields, "password"))
    return JSONResponse({}, status_code=202, headers=NO_STORE)


async def email_change_confirm(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    await confirm_email_change(parts, fields.get("token"))
    return Response(status_code=204, headers=NO_STORE)


routes = [
    Route("/auth/password/forgot", forgot, methods=["POST"]),
    Route("/auth/password/reset", reset, methods=["POST"]),
    Route("/auth/password/change", change, methods=["POST"]),
    Route("/auth/email/verify", verify, methods=["POST"]),
    Route("/auth/email/resend", resend, methods=["POST"]),
    Route("/auth/email/change", email_change, methods=["POST"]),
    Route("/auth/email/change/confirm", email_change_confirm, methods=["POST"]),
]

_EMPTY = {"description": "Done (no body).", "headers": apidoc.NO_STORE}
_ACCEPTED = {"description": "Accepted.", "headers": apidoc.NO_STORE, **json_content(ref("Empty"))}
_QUOTA = error(
    "Too many mails for this address or from this client (`rate_limited`; 5 an hour per "
    "email, GATEPASS_MAIL_LIMIT per client address).",
    headers=apidoc.RETRY_AFTER,
)

#: SPEC "Account lifecycle and mail".
api_docs = apidoc.ApiDocs(
    {
        ("/auth/password/forgot", "POST"): Operation(
            "Mail a reset link to the address if it has an account. The same answer, "
            "and similar timing, whether or not it has one.",
            {"202": _ACCEPTED, "429": _QUOTA},
            security=apidoc.ANONYMOUS_UNSAFE,
            body=apidoc.body(ref("ForgotRequest")),
        ),
        ("/auth/password/reset", "POST"): Operation(
            "Set a new password with a mailed token; every login of the user ends.",
            {
                "204": _EMPTY,
                "400": error(
                    "`invalid_token` (unknown, used, voided or expired), or a weak "
                    "password (`weak_password`; the token stays usable)."
                ),
            },
            security=apidoc.ANONYMOUS_UNSAFE,
            body=apidoc.body(ref("ResetRequest")),
        ),
        ("/auth/password/change", "POST"): Operation(
            "Change my password: this login stays with a fresh id, the others end.",
            {
                "204": _EMPTY,
                "400": error("Malformed request, or a weak new password."),
                "401": error(
                    "Not signed in, or `invalid_credentials`: the current password is wrong.",
                    headers=apidoc.WWW_AUTHENTICATE,
                ),
                "404": error("The account no longer exists."),
                "429": error("Throttled like logins (`rate_limited`).", headers=apidoc.RETRY_AFTER),
            },
            security=apidoc.USER_UNSAFE,
            body=apidoc.body(ref("ChangePasswordRequest")),
        ),
        ("/auth/email/verify", "POST"): Operation(
            "Mark the email verified with the token mailed to it.",
            {
                "204": _EMPTY,
                "400": error(
                    "`invalid_token`: unknown, used, voided or expired (one answer for all); "
                    "or malformed."
                ),
            },
            security=apidoc.ANONYMOUS_UNSAFE,
            body=apidoc.body(ref("VerifyEmailRequest")),
        ),
        ("/auth/email/resend", "POST"): Operation(
            "Mail me a fresh verification link (nothing is sent when already verified "
            "or GATEPASS_EMAIL_VERIFICATION=off).",
            {"202": _ACCEPTED, "404": error("The account no longer exists."), "429": _QUOTA},
            security=apidoc.USER_UNSAFE,
        ),
        ("/auth/email/change", "POST"): Operation(
            "Ask to move my account to another address (the current password is needed). "
            "A single-use link goes to the new address (or, when another account has it, "
            "a mail saying so and no link) and a notice to the current one; the answer is "
            "the same either way. Nothing changes until the link is opened; a newer "
            "request voids older links.",
            {
                "202": _ACCEPTED,
                "400": error(
                    "Malformed request: a missing field, an invalid address, or the "
                    "account's own address (`invalid_request`)."
                ),
                "401": error(
                    "Not signed in, or `invalid_credentials`: the password is wrong (also "
                    "for an account without a password).",
                    headers=apidoc.WWW_AUTHENTICATE,
                ),
                "404": error("The account no longer exists."),
                "429": error(
                    "Throttled: wrong passwords like logins, mails like the other mail "
                    "endpoints (`rate_limited`).",
                    headers=apidoc.RETRY_AFTER,
                ),
            },
            security=apidoc.USER_UNSAFE,
            body=apidoc.body(ref("EmailChangeRequest")),
        ),
        ("/auth/email/change/confirm", "POST"): Operation(
            "Open an email-change link: the account moves to the new address, verified; "
            "the login that asked stays, every other one ends, and links mailed to the "
            "old address stop working.",
            {
                "204": _EMPTY,
                "400": error(
                    "`invalid_token`: unknown, used, voided or expired, or the account's "
                    "address changed since the link was mailed."
                ),
                "409": error(
                    "`email_taken`: another account has the address now; nothing changed."
                ),
            },
            security=apidoc.ANONYMOUS_UNSAFE,
            body=apidoc.body(ref("VerifyEmailRequest")),
        ),
    },
    schemas={
        "EmailChangeRequest": {
            "type": "object",
            "required": ["new_email", "password"],
            "properties": {
                "new_email": {"type": "string", "format": "email", "maxLength": 254},
                "password": {"type": "string", "minLength": 1, "maxLength": 1024},
            },
        },
        "ForgotRequest": {
            "type": "object",
            "required": ["email"],
            "properties": {"email": {"type": "string", "minLength": 1, "maxLength": 1024}},
        },
        "ResetRequest": {
            "type": "object",
            "required": ["token", "password"],
            "properties": {
                "token": {"type": "string", "description": "From the mailed link."},
                "password": apidoc.NEW_PASSWORD,
            },
        },
        "ChangePasswordRequest": {
            "type": "object",
            "required": ["current_password", "new_password"],
            "properties": {
                "current_password": {"type": "string", "minLength": 1},
                "new_password": apidoc.NEW_PASSWORD,
            },
        },
        "VerifyEmailRequest": {
            "type": "object",
            "required": ["token"],
            "properties": {"token": {"type": "string", "description": "From the mailed link."}},
        },
    },
)
