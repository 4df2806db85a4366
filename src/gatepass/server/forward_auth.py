"""``GET /auth/verify``: forward auth for nginx, Caddy and Traefik.

The proxy asks, for every request it is about to pass on, "may this
caller have this?"; gatepass answers from the caller's cookie or Bearer
token, the original request (believed only from a trusted proxy) and the
access rules:

* 200 with the identity headers: let it through.
* 401 when a sign-in is needed, carrying ``Location`` to the login page with
  the original URL as ``next`` (nginx cannot forward a 3xx from
  ``auth_request``, but can redirect to ``$upstream_http_location``); with
  ``?redirect=1`` (Caddy, Traefik: they pass the answer on) a 302 there.
* 403 when the caller is signed in but a rule refuses.

``?role=R`` still requires role R on top of the rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gatepass.asgi.dependencies import current_user
from gatepass.asgi.errors import error_parts
from gatepass.asgi.proxies import PROXIED
from gatepass.errors import InvalidRequest, NotAuthenticated, PermissionDenied
from gatepass.forward_auth import (
    ANONYMOUS_HEADERS,
    Caller,
    OriginalRequest,
    Outcome,
    cache_headers,
    decide,
    identity_headers,
    original_request,
)
from gatepass.server import apidoc
from gatepass.server.apidoc import Operation, error
from gatepass.server.components import Components, components

logger = logging.getLogger("gatepass.forward_auth")


#: The request headers :func:`original_request` may ask for.
_FORWARDING = frozenset(
    {b"x-original-method", b"x-forwarded-method", b"x-original-url", b"x-forwarded-host",
     b"x-forwarded-uri", b"x-forwarded-proto"}
)  # fmt: skip


def _forwarding_headers(request: Request) -> Callable[[str], str | None] | None:
    """A getter over the forwarding headers, found in one pass over the request's
    (the first of repeated ones, as Starlette's ``headers.get``); None when
    there is none, as on a request straight from a client."""
    found: dict[bytes, bytes] = {}
    for name, value in request.scope["headers"]:
        if name in _FORWARDING and name not in found:
            found[name] = value
    if not found:
        return None

    def get(name: str) -> str | None:
        value = found.get(name.encode("latin-1"))
        return None if value is None else value.decode("latin-1")

    return get


def _original(request: Request, parts: Components) -> OriginalRequest | None:
    get = _forwarding_headers(request)
    found = original_request(get) if get is not None else None
    proxied = bool(request.scope.get(PROXIED))
    if found is not None and not proxied:
        # Anyone can write these headers; only our proxies are believed.
        # Ignoring them would quietly skip every rule for a proxy left out of
        # GATEPASS_TRUSTED_PROXIES, so say so instead.
        raise InvalidRequest(
            "Forwarded request headers from a peer that is not a trusted proxy "
            "(see GATEPASS_TRUSTED_PROXIES)."
        )
    if found is None and proxied and parts.rules is not None and parts.rules.current.rules:
        # A proxy that does not say what it is asking about would have every
        # "deny" rule skipped: a configuration mistake to report, not guess.
        raise InvalidRequest(
            "The proxy sent neither X-Original-URL nor X-Forwarded-Host/-Uri: "
            "the access rules cannot be applied."
        )
    return found


def login_url(parts: Components, original: OriginalRequest | None) -> str:
    base = parts.settings.public_url.rstrip("/") + "/login"
    if original is None:
        return base
    return f"{base}?next={quote(original.url, safe='')}"


#: Identity headers of an account's answer, encoded once per account state.
_IDENTITY_CACHE_SIZE = 4096
_identity_cache: dict[tuple[str, str, frozenset[str]], list[tuple[bytes, bytes]]] = {}


def _identity_raw(user_id: str, email: str, roles: frozenset[str]) -> list[tuple[bytes, bytes]]:
    key = (user_id, email, roles)
    raw = _identity_cache.get(key)
    if raw is None:
        headers = identity_headers(user_id, email, roles)
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if len(_identity_cache) >= _IDENTITY_CACHE_SIZE:
            _identity_cache.clear()
        _identity_cache[key] = raw
    return raw


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


_ANONYMOUS_RAW = _raw(ANONYMOUS_HEADERS)


def _allowed(max_age: int, identity: list[tuple[bytes, bytes]]) -> Response:
    """The 200: an empty body, the cache headers and the identity headers."""
    response = Response(status_code=200)  # content-length: 0
    response.raw_headers += _raw(cache_headers(max_age, cacheable=True))
    response.raw_headers += identity
    return response


async def verify(request: Request) -> Response:
    parts = components(request)
    # Most proxies ask with no query at all: nothing to parse then.
    query = request.query_params if request.scope["query_string"] else None
    if query is not None and query.get("redirect", "0") not in ("0", "1"):
        raise InvalidRequest("redirect must be 0 or 1.")
    original = _original(request, parts)
    identity = await current_user(request)
    rules = parts.rules.current if parts.rules is not None else None
    rule = None
    if rules is not None and original is not None:
        rule = rules.match(original.host, original.path, original.method)
    caller = None if identity is None else Caller(identity.roles, identity.amr)
    decision = decide(rule, caller)
    role = query.get("role") if query is not None else None
    if decision.outcome is Outcome.ALLOW and role is not None:
        if caller is None:
            decision = decide(None, None)
        elif role not in caller.roles:
            raise PermissionDenied(required_roles=(role,))
    if decision.outcome is Outcome.FORBIDDEN:
        # Who and which rule, never a credential; the host was validated.
        logger.info(
            "forward auth refused: %s (rule at line %d, host %s, user %s)",
            decision.reason, decision.rule.line if decision.rule else 0,
            original.host if original else "-", identity.user_id if identity else "-",
        )  # fmt: skip
        raise PermissionDenied(f"Access denied: {decision.reason}.")
    if decision.outcome is Outcome.SIGN_IN:
        return _sign_in(request, parts, original)
    if identity is None:
        return _allowed(parts.settings.forward_auth_cache, _ANONYMOUS_RAW)
    user = await parts.accounts.users.get(identity.user_id)
    if user is None or user.disabled:
        # Normally ended with its sessions; if not, sign in again (with
        # the Location nginx needs, which a bare 401 would lack).
        return _sign_in(request, parts, original)
    raw = _identity_raw(user.id, user.email, identity.roles)
    return _allowed(parts.settings.forward_auth_cache, raw)


def _sign_in(request: Request, parts: Components, original: OriginalRequest | None) -> Response:
    location = login_url(parts, original)
    if request.query_params.get("redirect") == "1":
        return Response(
            status_code=302, headers={"location": location, **cache_headers(0, cacheable=False)}
        )
    status, raw_headers, body = error_parts(NotAuthenticated())
    response = Response(body, status_code=status)
    for name, value in raw_headers:
        if name != b"content-length":
            response.headers[name.decode()] = value.decode()
    response.headers.update({"location": location, **cache_headers(0, cacheable=False)})
    return response


routes = [Route("/auth/verify", verify, methods=["GET"])]

_LOCATION = {"Location": {"required": True, "schema": {"type": "string"}}}

api_docs = apidoc.ApiDocs(
    {
        ("/auth/verify", "GET"): Operation(
            "Forward auth for reverse proxies (nginx `auth_request`, Caddy "
            "`forward_auth`, Traefik `ForwardAuth`), with the access rules.  The "
            "original request comes in `X-Original-URL` (+ `X-Original-Method`) or "
            "`X-Forwarded-Proto/Host/Uri/Method`, believed only from a trusted proxy.",
            {
                "200": {
                    "description": "Allowed (no body).  The identity headers are present "
                    "when the caller is signed in (a public rule also lets anonymous "
                    "callers through).  Values are ASCII; a non-ASCII one is sent "
                    "percent-encoded, with its RFC 8187 form in `X-Auth-Email*`.",
                    "headers": {
                        "X-Auth-User-Id": {"schema": {"type": "string"}},
                        "X-Auth-Email": {"schema": {"type": "string"}},
                        "X-Auth-Email*": {
                            "description": "RFC 8187: `UTF-8''<percent-encoded>`.",
                            "schema": {"type": "string"},
                        },
                        "X-Auth-Roles": {
                            "description": "Comma-separated.",
                            "schema": {"type": "string"},
                        },
                    },
                },
                "302": {
                    "description": "Sign-in needed (`?redirect=1`): to the login page "
                    "with the original URL as `next`.",
                    "headers": _LOCATION,
                },
                "400": error(
                    "Forwarded request headers that are malformed, or sent by a peer "
                    "that is not a trusted proxy."
                ),
                "401": error(
                    "Sign-in needed.  `Location` names the login page with the original "
                    "URL as `next` (nginx: `error_page 401 =302 $upstream_http_location`).",
                    headers={**apidoc.WWW_AUTHENTICATE, **_LOCATION},
                ),
                "403": error("Signed in, but a rule (or `role`) refuses."),
            },
            security=[*apidoc.USER, {}],
            parameters=[
                {
                    "name": "role",
                    "in": "query",
                    "required": False,
                    "description": "A role the caller must hold (on top of the rules).",
                    "schema": {"type": "string"},
                },
                {
                    "name": "redirect",
                    "in": "query",
                    "required": False,
                    "description": "`1`: answer a needed sign-in with a 302, not a 401.",
                    "schema": {"type": "string", "enum": ["0", "1"]},
                },
            ],
        ),
    }
)
