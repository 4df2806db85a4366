"""Device-bound sessions (W3C DBSC): the offer, registration and refresh.

Flow (SPEC "Device-bound sessions", docs/device-bound-sessions.md):

1. every browser sign-in (:func:`gatepass.server.signin.sign_in`) answers
   with ``Secure-Session-Registration``, carrying a fresh challenge issued
   for that very login (single use, in the shared store);
2. a browser with DBSC POSTs a proof to :data:`REGISTER_PATH`: a JWT signed
   by its new key, which it embeds.  We check it, take the challenge, store
   the public key on the login (session record data, or refresh family
   data in JWT mode) and set the bound cookie;
3. from then on the auth path refuses that login without a valid bound
   cookie; the browser renews it at :data:`REFRESH_PATH` by signing a
   challenge we send with a 403.  A login that was ended (logout, any
   ``Logins.end*``, password reset, admin revoke) answers the refresh with
   ``{"continue": false}``: the browser drops the DBSC session.

Challenges live in the one-time token store (atomic take, on every
backend), under their own purposes, so a reset link can never be used as a
challenge nor the reverse.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatepass.asgi.bearer import ACCESS_COOKIE
from gatepass.asgi.dependencies import auth_of
from gatepass.cookies import read_cookie
from gatepass.dbsc import (
    DATA_KEY,
    PURPOSE_REFRESH,
    PURPOSE_REGISTER,
    REFRESH_CHALLENGE_TTL,
    REFRESH_PATH,
    REGISTER_PATH,
    REGISTRATION_TTL,
    InvalidProof,
    challenge_header,
    header_string,
    is_session_id,
    registration_header,
    verify_proof,
)
from gatepass.errors import Conflict, NotAuthenticated, NotFound
from gatepass.identity import Identity
from gatepass.server import apidoc
from gatepass.server.apidoc import Operation, Schema, error, json_content
from gatepass.server.components import Components, components
from gatepass.tokens.refresh import Family, is_authentic

logger = logging.getLogger("gatepass.dbsc")

NO_STORE = {"cache-control": "no-store"}

# -- the login a request belongs to -------------------------------------------------


def _binding(data: dict[str, Any]) -> dict[str, Any] | None:
    value = data.get(DATA_KEY)
    return value if isinstance(value, dict) else None


def session_ref(public_id: str) -> str:
    return f"s:{public_id}"


def family_ref(family_id: str) -> str:
    return f"f:{family_id}"


# -- the offer, at sign-in ------------------------------------------------------------


async def offer(request: Request, identity: Identity, roles: Sequence[str]) -> None:
    """Offer the login that ``identity`` just started a device binding.

    Called by :func:`~gatepass.server.signin.sign_in` for both browser
    modes.  For a user with a role of ``GATEPASS_DBSC_REQUIRED_ROLES`` the
    login is also marked: unbound, it stops working after the window.
    """
    parts = components(request)
    binding = parts.dbsc
    if binding is None:
        return
    if identity.session is not None:
        ref = session_ref(identity.session.public_id)
    elif identity.claims is not None and identity.claims.fid is not None:
        ref = family_ref(identity.claims.fid)
    else:  # pragma: no cover - sign_in always starts one of the two
        return
    challenge = await binding.issue(PURPOSE_REGISTER, identity.user_id, ref, REGISTRATION_TTL)
    if binding.required_roles.intersection(roles):
        await _store_binding(parts, identity, {"by": binding.clock() + REGISTRATION_TTL})
        if identity.claims is not None and identity.claims.fid is not None:
            # The token just issued knows nothing of the deadline: swap it.
            await parts.tokens.revoke_access(identity.claims)
            access, expires_in = await parts.tokens.bound_access(identity.claims.fid)
            auth_of(request).set_cookies.append(ACCESS_COOKIE.header(access, max_age=expires_in))
    auth_of(request).extra_headers.append(
        (
            b"secure-session-registration",
            registration_header(REGISTER_PATH, challenge, binding.authorization(challenge)).encode(
                "ascii"
            ),
        )
    )


async def _store_binding(parts: Components, identity: Identity, value: dict[str, Any]) -> None:
    """Write ``value`` as the login's binding (session data or family data)."""
    if identity.session is not None:
        record = identity.session
        await parts.sessions.store.update_data(record.key, {**record.data, DATA_KEY: value})
    elif identity.claims is not None and identity.claims.fid is not None:
        await parts.tokens.set_binding(identity.claims.fid, value)


# -- registration ---------------------------------------------------------------------


def _proof_header(request: Request) -> str | None:
    return header_string(request.headers.get("secure-session-response"))


async def register(request: Request) -> Response:
    parts = components(request)
    binding = parts.dbsc
    if binding is None:
        raise NotFound("Device-bound sessions are off.")
    token = _proof_header(request)
    if token is None:
        raise InvalidProof("Secure-Session-Response is missing.", reason="missing")
    proof = verify_proof(token)
    if proof.claims.get("authorization") != binding.authorization(proof.jti):
        raise InvalidProof("The proof's authorization does not match.", reason="authorization")
    identity = request.scope.get("user")
    if not isinstance(identity, Identity) or identity.scheme == "bearer":
        raise NotAuthenticated("Sign in first: a binding belongs to a browser login.")
    if identity.session is not None:
        ref, data = session_ref(identity.session.public_id), identity.session.data
    elif identity.claims is not None and identity.claims.fid is not None:
        family = await parts.tokens.refresh_store.get(identity.claims.fid)
        if family is None:
            raise NotAuthenticated("Sign in first: a binding belongs to a browser login.")
        ref, data = family_ref(family.family_id), family.data
    else:
        raise NotAuthenticated("Sign in first: a binding belongs to a browser login.")
    current = _binding(data)
    if current is not None and "sid" in current:
        raise Conflict("This login is already bound to a device.")
    await binding.take(PURPOSE_REGISTER, proof, identity.user_id, ref)
    session_id = secrets.token_urlsafe(16)
    value = {"sid": session_id, "alg": proof.alg, "jwk": proof.jwk, "at": int(binding.clock())}
    await _store_binding(parts, identity, value)
    auth = auth_of(request)
    if identity.claims is not None and identity.scheme == "jwt-cookie":
        # The access token issued at sign-in says nothing of the binding:
        # end it, and hand out one that does.
        await parts.tokens.revoke_access(identity.claims)
        access, expires_in = await parts.tokens.bound_access(identity.claims.fid or "")
        auth.set_cookies.append(ACCESS_COOKIE.header(access, max_age=expires_in))
    auth.set_cookies.append(binding.cookies.header(session_id))
    logger.info("login bound to a device key (user %s, %s)", identity.user_id, proof.alg)
    return JSONResponse(binding.instructions(session_id), headers=NO_STORE)


# -- refresh ---------------------------------------------------------------------------------


def _end(session_id: str) -> Response:
    """Tell the browser that this DBSC session is over."""
    return JSONResponse({"session_identifier": session_id, "continue": False}, headers=NO_STORE)


async def _login_of(
    request: Request, parts: Components
) -> tuple[str, str, dict[str, Any] | None, Family | None] | None:
    """``(user_id, ref, binding, family)`` of the browser login the request's
    long-lived cookie names, bound cookie or not; None when it is gone."""
    cookie_header = request.headers.get("cookie")
    if parts.settings.browser_mode == "jwt":
        from gatepass.server.token_api import REFRESH_COOKIE

        presented = read_cookie(cookie_header, REFRESH_COOKIE.name)
        if presented is None or not is_authentic(presented, parts.tokens.server_key):
            return None
        family = await parts.tokens.refresh_store.get(presented.split(".", 1)[0])
        if family is None or not await parts.tokens.is_live_now(family):
            return None
        return family.user_id, family_ref(family.family_id), _binding(family.data), family
    token = read_cookie(cookie_header, parts.cookie.name)
    if token is None:
        return None
    record = await parts.sessions.load(token)
    if record is None:
        return None
    return record.user_id, session_ref(record.public_id), _binding(record.data), None


async def refresh(request: Request) -> Response:
    parts = components(request)
    binding = parts.dbsc
    if binding is None:
        raise NotFound("Device-bound sessions are off.")
    session_id = header_string(request.headers.get("sec-secure-session-id"))
    if session_id is None or not is_session_id(session_id):
        raise InvalidProof("Sec-Secure-Session-Id is missing or malformed.", reason="session_id")
    login = await _login_of(request, parts)
    if login is None:
        return _end(session_id)
    user_id, _ref, current, _family = login
    sid = current.get("sid") if current is not None else None
    if not isinstance(sid, str) or not hmac.compare_digest(sid, session_id):
        # Not this login's DBSC session (a new login replaced it): over.
        return _end(session_id)
    assert current is not None
    await binding.refreshes.spend("sid", session_id)
    token = _proof_header(request)
    if token is None:
        challenge = await binding.issue(PURPOSE_REFRESH, user_id, session_id, REFRESH_CHALLENGE_TTL)
        return JSONResponse(
            {"error": "dbsc_challenge", "detail": "Sign this challenge."},
            status_code=403,
            headers={
                "secure-session-challenge": challenge_header(challenge, session_id),
                **NO_STORE,
            },
        )
    alg, jwk = current.get("alg"), current.get("jwk")
    if not isinstance(alg, str) or not isinstance(jwk, dict):
        return _end(session_id)
    proof = verify_proof(token, registered=(alg, jwk))
    await binding.take(PURPOSE_REFRESH, proof, user_id, session_id)
    auth_of(request).set_cookies.append(binding.cookies.header(session_id))
    return JSONResponse(binding.instructions(session_id), headers=NO_STORE)


routes = [
    Route(REGISTER_PATH, register, methods=["POST"]),
    Route(REFRESH_PATH, refresh, methods=["POST"]),
]

#: The browser posts these itself, with no CSRF token; the proof (a
#: signature over a challenge issued for this login) is what protects them.
CSRF_EXEMPT = frozenset({REGISTER_PATH, REFRESH_PATH})

_PROOF_HEADER: Schema = {
    "name": "Secure-Session-Response",
    "in": "header",
    "description": "The proof: a JWT (`typ` dbsc+jwt, `alg` ES256 or RS256) signed by the "
    "browser's key, whose `jti` is our challenge; as an sf-string or bare. Needed to "
    "register, and to refresh after a challenge (404 when device-bound sessions are off).",
    "schema": {"type": "string"},
}
_SESSION_ID_HEADER: Schema = {
    "name": "Sec-Secure-Session-Id",
    "in": "header",
    "description": "The DBSC session's `session_identifier`; as an sf-string or bare. "
    "Needed when device-bound sessions are on (400 without it; 404 when they are off).",
    "schema": {"type": "string"},
}
_BOUND_COOKIE: Schema = {
    "Set-Cookie": {
        "description": "`__Host-gatepass-bound`, lifetime GATEPASS_DBSC_COOKIE_TTL.",
        "schema": {"type": "string"},
    },
    **apidoc.NO_STORE,
}
_BAD_PROOF = error(
    "`invalid_dbsc_proof`: a missing or garbled header, a proof that does not verify "
    "(typ, alg, key, signature), or a challenge that is unknown, used, expired or was "
    "issued for another login."
)
_OFF = error("Device-bound sessions are off.")

api_docs = apidoc.ApiDocs(
    {
        (REGISTER_PATH, "POST"): Operation(
            "Bind the caller's browser login to the key in the proof (the browser posts "
            "here when it accepts the `Secure-Session-Registration` offer of a sign-in). "
            "No CSRF token: the proof answers a challenge issued for this login.",
            {
                "200": {
                    "description": "Bound.",
                    "headers": _BOUND_COOKIE,
                    **json_content(apidoc.ref("DBSCInstructions")),
                },
                "400": _BAD_PROOF,
                "404": _OFF,
                "409": error("This login is already bound (`conflict`)."),
            },
            security=[{"sessionCookie": []}],
            parameters=[_PROOF_HEADER],
            csrf=False,
        ),
        (REFRESH_PATH, "POST"): Operation(
            "Renew the bound cookie: without a proof, a 403 with a challenge; with a "
            "proof signed by the registered key over that challenge, a fresh cookie.",
            {
                "200": {
                    "description": "A fresh bound cookie, or `continue: false`.",
                    "headers": _BOUND_COOKIE,
                    **json_content(apidoc.ref("DBSCInstructions")),
                },
                "400": _BAD_PROOF,
                "403": error(
                    "`dbsc_challenge`: sign the challenge and retry.",
                    headers={
                        "Secure-Session-Challenge": {
                            "description": '`"<challenge>";id="<session_identifier>"`',
                            "schema": {"type": "string"},
                            "required": True,
                        }
                    },
                ),
                "404": _OFF,
                "429": error(
                    "Too many refreshes of this DBSC session (`rate_limited`; "
                    "GATEPASS_DBSC_REFRESH_LIMIT an hour).",
                    headers=apidoc.RETRY_AFTER,
                ),
            },
            security=[{"sessionCookie": []}, {}],
            parameters=[_SESSION_ID_HEADER, _PROOF_HEADER],
            csrf=False,
        ),
    },
    schemas={
        "DBSCInstructions": {
            "type": "object",
            "description": "JSON session instructions (W3C DBSC), or `continue: false` when "
            "the login has ended (logout, ended elsewhere): the browser drops the DBSC session.",
            "required": ["session_identifier"],
            "properties": {
                "session_identifier": {"type": "string"},
                "continue": {"const": False},
                "refresh_url": {"const": REFRESH_PATH},
                "scope": {"type": "object"},
                "credentials": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
)
