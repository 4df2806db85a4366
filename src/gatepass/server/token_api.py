"""Token endpoints: ``/auth/token``, ``/auth/refresh``, ``/auth/revoke``, JWKS.

API clients send and receive tokens in JSON bodies (no ambient credential,
so no CSRF token is needed).  In browser JWT mode (``GATEPASS_BROWSER_MODE=
jwt``) the pair lives in HttpOnly ``__Host-`` cookies instead, and a refresh
that relies on the cookie passes the CSRF check like any cookie-authenticated
request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatepass.asgi.bearer import ACCESS_COOKIE
from gatepass.asgi.csrf import enforce_csrf
from gatepass.asgi.dependencies import auth_of
from gatepass.asgi.middleware import client_ip
from gatepass.cookies import CookieSpec, read_cookie
from gatepass.dbsc import DATA_KEY
from gatepass.errors import InvalidGrant, InvalidRequest, InvalidToken
from gatepass.server import apidoc
from gatepass.server.apidoc import Operation, error, json_content, ref
from gatepass.server.bodies import read_fields, string_field
from gatepass.server.components import components
from gatepass.server.second_step import second_step_needed
from gatepass.tokens.refresh import family_id_of, is_well_formed
from gatepass.tokens.service import TokenPair
from gatepass.users.model import User

#: SameSite=Strict: the refresh cookie is only ever needed by our own pages.
REFRESH_COOKIE = CookieSpec(name="__Host-gatepass-rt", same_site="strict")

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _scopes(fields: dict[str, object]) -> tuple[str, ...]:
    raw = fields.get("scope", "")
    if not isinstance(raw, str) or len(raw) > 1024:
        raise InvalidRequest("scope must be a space-separated string.")
    return tuple(s for s in raw.split(" ") if s)


async def token(request: Request) -> Response:
    """Resource-owner password flow for API clients (first-party)."""
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    user = await parts.accounts.authenticate(
        string_field(fields, "email"),
        string_field(fields, "password"),
        client_ip=client_ip(request.scope),
    )
    scopes = _scopes(fields)
    # Unknown scopes are refused now, not after the second factor.
    parts.tokens.scopes.grant(user.roles, scopes)
    await second_step_needed(request, user, kind="token", data={"scopes": list(scopes)})
    pair = await parts.tokens.issue(
        user.id,
        roles=user.roles,
        scopes=scopes,
        kind="api",
        amr=("pwd",),
        ip=client_ip(request.scope),
        user_agent=request.headers.get("user-agent"),
        email_verified=user.email_verified,
    )
    return JSONResponse(pair.as_json(), headers=NO_STORE)


async def refresh(request: Request) -> Response:
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_empty=True)
    presented = fields.get("refresh_token")
    from_cookie = presented is None
    if from_cookie:
        # The cookie is an ambient credential: only with the CSRF checks.
        await enforce_csrf(request)
        presented = read_cookie(request.headers.get("cookie"), REFRESH_COOKIE.name)
    if not isinstance(presented, str) or not presented:
        raise InvalidGrant(reason="missing")
    if parts.dbsc is not None:
        await _check_bound(request, presented)
    try:
        pair = await parts.tokens.refresh(presented)
    except InvalidGrant:
        if from_cookie:
            auth_of(request).set_cookies.extend(_cleared())
        raise
    if from_cookie:
        set_token_cookies(request, pair)
        return JSONResponse({"expires_in": pair.expires_in}, headers=NO_STORE)
    return JSONResponse(pair.as_json(), headers=NO_STORE)


async def revoke(request: Request) -> Response:
    """RFC 7009: revoke an access or refresh token; 200 whether or not it was valid."""
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes)
    presented = string_field(fields, "token")
    if is_well_formed(presented):
        await parts.tokens.revoke_refresh(presented)
    else:
        try:
            claims = await parts.tokens.verify(presented)
        except InvalidToken:
            pass  # unknown, expired or already revoked: nothing to do
        else:
            await parts.tokens.revoke_access(claims)
    return JSONResponse({}, headers=NO_STORE)


async def jwks(request: Request) -> Response:
    parts = components(request)
    return JSONResponse(
        parts.keys().jwks(parts.tokens.codec.clock()),
        headers={"cache-control": "public, max-age=60"},
    )


async def _check_bound(request: Request, presented: str) -> None:
    """A device-bound family refreshes only with its bound cookie (DBSC),
    whether its refresh token came as a cookie or was copied into a body.
    Checked before the rotation, so a refused attempt changes nothing."""
    parts = components(request)
    assert parts.dbsc is not None
    family_id = family_id_of(presented)
    if family_id is None:
        return  # malformed: the service refuses it
    family = await parts.tokens.refresh_store.get(family_id)
    if family is not None and not parts.dbsc.cookies.check(
        request.headers.get("cookie"), family.data.get(DATA_KEY)
    ):
        raise InvalidGrant(reason="unbound")


def set_token_cookies(request: Request, pair: TokenPair) -> None:
    """Browser JWT mode: the pair goes into HttpOnly cookies, never into the page."""
    parts = components(request)
    auth = auth_of(request)
    auth.set_cookies.append(ACCESS_COOKIE.header(pair.access_token, max_age=pair.expires_in))
    auth.set_cookies.append(
        REFRESH_COOKIE.header(pair.refresh_token, max_age=parts.settings.refresh_token_ttl)
    )
    # The CSRF token is bound to the family from now on.
    request.scope["user"] = parts.permissions.identity_for_claims(pair.claims, "jwt-cookie")


def _cleared() -> list[str]:
    return [ACCESS_COOKIE.deletion_header(), REFRESH_COOKIE.deletion_header()]


async def jwt_login(request: Request, user: User, *, amr: tuple[str, ...] = ()) -> None:
    """Browser login in JWT mode: a token family instead of a session."""
    pair = await components(request).tokens.issue(
        user.id,
        roles=user.roles,
        amr=amr,
        kind="browser",
        ip=client_ip(request.scope),
        user_agent=request.headers.get("user-agent"),
        email_verified=user.email_verified,
    )
    set_token_cookies(request, pair)


async def jwt_logout(request: Request) -> None:
    """End the caller's access token and its refresh family.

    A Bearer logout carries no refresh token: the family is named by the
    access token itself and ends with it (SECURITY 10).  Only a browser (JWT
    cookie mode) has cookies to clear.
    """
    parts = components(request)
    identity = request.scope.get("user")
    claims = getattr(identity, "claims", None)
    if claims is not None:
        await parts.tokens.revoke_access(claims)
        if claims.fid is not None:
            await parts.tokens.revoke_family(claims.fid, owner=claims.sub)
    if getattr(identity, "scheme", None) == "bearer":
        return
    presented = read_cookie(request.headers.get("cookie"), REFRESH_COOKIE.name)
    if presented:
        await parts.tokens.revoke_refresh(presented)
    auth = auth_of(request)
    auth.set_cookies.extend(_cleared())
    auth.clear_site_data = True


routes = [
    Route("/auth/token", token, methods=["POST"]),
    Route("/auth/refresh", refresh, methods=["POST"]),
    Route("/auth/revoke", revoke, methods=["POST"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
]

#: Paths that need no CSRF token: their credential is in the body, not a
#: cookie (``/auth/refresh`` checks CSRF itself when it falls back to one).
CSRF_EXEMPT = frozenset({"/auth/token", "/auth/refresh", "/auth/revoke"})

api_docs = apidoc.ApiDocs(
    {
        ("/auth/token", "POST"): Operation(
            "Password grant for API clients: an access token and a refresh token.",
            {
                "200": {
                    "description": "OK",
                    "headers": apidoc.NO_STORE,
                    **json_content(ref("TokenPair")),
                },
                "401": error(
                    "`invalid_credentials`, a Bearer token that does not verify, or "
                    "`mfa_required` with an `mfa_token` for `POST /auth/mfa/verify`.",
                    headers=apidoc.WWW_AUTHENTICATE,
                ),
                "400": error("Malformed request, or an unknown scope (`invalid_scope`)."),
                "403": error(
                    "`email_unverified`: the password is right but the email is not "
                    "verified yet (GATEPASS_EMAIL_VERIFICATION=required)."
                ),
                "429": error("Throttled (`rate_limited`).", headers=apidoc.RETRY_AFTER),
            },
            security=apidoc.PUBLIC,
            body=apidoc.body(ref("TokenRequest")),
            csrf=False,
        ),
        ("/auth/refresh", "POST"): Operation(
            "Rotate a refresh token: a new pair.  Reuse of a rotated token revokes its family.",
            {
                "200": {
                    "description": "OK",
                    "headers": apidoc.NO_STORE,
                    **json_content({"anyOf": [ref("TokenPair"), ref("CookieRefresh")]}),
                },
                "401": error(
                    "`invalid_grant`: expired, revoked, reused, unknown or missing.",
                    headers=apidoc.WWW_AUTHENTICATE,
                ),
                "403": error("The refresh cookie was used without passing the CSRF checks."),
            },
            security=apidoc.PUBLIC,
            body=apidoc.body(ref("RefreshRequest"), required=False),
            csrf=False,
        ),
        ("/auth/revoke", "POST"): Operation(
            "RFC 7009: revoke an access or refresh token; 200 whether or not it was valid.",
            {
                "200": {
                    "description": "OK",
                    "headers": apidoc.NO_STORE,
                    **json_content({"type": "object", "maxProperties": 0}),
                }
            },
            security=apidoc.PUBLIC,
            body=apidoc.body(ref("RevokeRequest")),
            csrf=False,
        ),
        ("/.well-known/jwks.json", "GET"): Operation(
            "The public signing keys.",
            {"200": {"description": "OK", **json_content(ref("JWKS"))}},
            security=apidoc.PUBLIC,
        ),
    },
    schemas={
        "TokenRequest": {
            "type": "object",
            "required": ["email", "password"],
            "properties": {
                "email": {"type": "string", "format": "email", "maxLength": 254},
                "password": {"type": "string", "minLength": 1},
                "scope": {
                    "type": "string",
                    "maxLength": 1024,
                    "description": "Space-separated scopes.",
                },
            },
        },
        "RefreshRequest": {
            "type": "object",
            "properties": {
                "refresh_token": {
                    "type": "string",
                    "description": "Omitted: the `__Host-gatepass-rt` cookie is used (browser "
                    "JWT mode), with the CSRF checks.",
                }
            },
        },
        "RevokeRequest": {
            "type": "object",
            "required": ["token"],
            "properties": {"token": {"type": "string", "minLength": 1}},
        },
        "CookieRefresh": {
            "type": "object",
            "description": "Browser JWT mode: the new pair went into HttpOnly cookies.",
            "required": ["expires_in"],
            "properties": {"expires_in": {"type": "integer", "minimum": 1}},
            "additionalProperties": False,
        },
        "JWKS": {
            "type": "object",
            "required": ["keys"],
            "properties": {
                "keys": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["kty", "kid", "alg", "use"],
                        "properties": {
                            "kty": {"enum": ["RSA", "EC", "OKP"]},
                            "kid": {"type": "string"},
                            "alg": {"enum": ["RS256", "ES256", "EdDSA"]},
                            "use": {"const": "sig"},
                            "n": {"type": "string"},
                            "e": {"type": "string"},
                            "crv": {"type": "string"},
                            "x": {"type": "string"},
                            "y": {"type": "string"},
                        },
                        # Public members only: d, p, q, dp, dq, qi, oth, k never appear.
                        "additionalProperties": False,
                    },
                }
            },
            "additionalProperties": False,
        },
    },
)
