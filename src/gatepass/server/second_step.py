"""The hand-off from a first step that passed to the second factor.

Kept apart from :mod:`.mfa_routes` so the first-step handlers
(:mod:`.api`, :mod:`.token_api`, :mod:`.pages`, :mod:`.oauth_routes`) can
call it without an import cycle.

Two ways to hand over:

* the JSON first steps (``/auth/login``, ``/auth/token``) answer 401
  ``mfa_required`` with the ``mfa_token`` in the body
  (:func:`second_step_needed`);
* the browser pages (``POST /login``, a provider's callback) redirect to
  ``/login/second-step`` with the ``mfa_token`` in a short-lived HttpOnly
  cookie (:func:`page_second_step`, :data:`MFA_COOKIE`).  Why a cookie and
  not a hidden field: the provider's callback is a redirect, and a token
  in a URL ends up in logs and history; a ``__Host-`` HttpOnly cookie is
  out of reach of page scripts and of other sites, and ties the token to
  this browser's cookie jar on top of the client binding every
  ``mfa_token`` has.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gatepass.asgi.middleware import client_ip
from gatepass.cookies import CookieSpec, read_cookie
from gatepass.errors import MFARequired
from gatepass.mfa.service import AMR_PASSWORD, client_binding
from gatepass.server.components import components
from gatepass.users.model import User

#: Where the browser types its second factor.
SECOND_STEP_PATH = "/login/second-step"

#: The browser's ``mfa_token`` between the first step and the second-step
#: page.  Its value is ``<methods>.<token>``: the methods (``totp+recovery_code``)
#: only choose what the page offers, never what the server accepts.
MFA_COOKIE = CookieSpec(name="__Host-gatepass-mfa", same_site="lax")


def client_of(request: Request) -> str:
    """The binding of an mfa_token to this request's client (see ``client_binding``)."""
    return client_binding(client_ip(request.scope), request.headers.get("user-agent"))


async def second_step_needed(request: Request, user: User, *, kind: str,
                             data: dict[str, Any]) -> None:  # fmt: skip
    """Raise MFARequired (401 with an mfa_token) when ``user`` has a second factor.

    Called only after the password was verified: a wrong password never
    yields an mfa_token.  ``kind`` is the first step ("login" or "token");
    ``data`` is what the second step needs to finish as the first would have.
    """
    mfa = components(request).mfa
    methods = await mfa.methods(user.id)
    if not methods:
        return
    token = await mfa.start_challenge(
        user.id, kind=kind, client=client_of(request), data={**data, "amr": [AMR_PASSWORD]}
    )
    raise MFARequired(token, methods)


async def page_second_step(
    request: Request, user: User, *, amr: tuple[str, ...], remember: bool, next_path: str
) -> Response | None:
    """For a browser first step that passed: None when ``user`` has no second
    factor (sign in now), else the redirect to the second-step page, carrying
    a fresh mfa_token in :data:`MFA_COOKIE`.  No login exists until that page
    gets a right code: never a session on one factor.

    ``next_path`` must already be vetted (``Components.safe_next``); it is
    kept in the challenge and vetted again when the second step finishes.
    """
    mfa = components(request).mfa
    methods = await mfa.methods(user.id)
    if not methods:
        return None
    token = await mfa.start_challenge(
        user.id,
        kind="login",
        client=client_of(request),
        data={"remember": remember, "next": next_path, "amr": list(amr), "page": True},
    )
    # ``next`` in the URL only sets the page's CSP form-action (the redirect
    # after the form post); where the user goes is the challenge's ``next``.
    response = RedirectResponse(
        f"{SECOND_STEP_PATH}?next={quote(next_path, safe='')}",
        status_code=303,
        headers={"cache-control": "no-store"},
    )
    response.headers.append(
        "set-cookie",
        MFA_COOKIE.header(f"{'+'.join(methods)}.{token}", max_age=int(mfa.challenge_ttl)),
    )
    return response


def held_challenge(request: Request) -> tuple[tuple[str, ...], str] | None:
    """The methods and mfa_token this browser holds, if any."""
    value = read_cookie(request.headers.get("cookie"), MFA_COOKIE.name)
    if not value or "." not in value:
        return None
    methods, _, token = value.partition(".")
    if not token:
        return None
    return tuple(m for m in methods.split("+") if m), token
