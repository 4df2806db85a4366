"""The passkey parts of the pages: the rows of ``/account``, and its rename
and remove forms (which work without JavaScript).

Adding a passkey and signing in with one need WebAuthn, so JavaScript:
``/static/passkeys.js`` drives the JSON endpoints of
:mod:`gatepass.server.passkey_routes` from ``/account``, ``/login`` and the
second-step page.  Removing a passkey needs a sign-in within the last
5 minutes, the rule of every factor change (:func:`.mfa_routes.reauthenticate`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gatepass.asgi.dependencies import current_user
from gatepass.errors import InsufficientAuthentication, InvalidRequest, NotFound
from gatepass.server.bodies import read_fields
from gatepass.server.components import components
from gatepass.server.mfa_routes import reauthenticate
from gatepass.server.pages import account_page

TO_ACCOUNT = "/login?next=%2Faccount"


async def rename_submit(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse(TO_ACCOUNT, status_code=303)
    parts = components(request)
    fields = await read_fields(request, parts.settings.max_body_bytes, allow_form=True)
    try:
        await parts.passkeys.rename(
            identity.user_id, request.path_params["passkey_id"], fields.get("name")
        )
    except NotFound:
        return await account_page(request, identity, "There is no such passkey.", status=404)
    except InvalidRequest as exc:
        return await account_page(request, identity, exc.detail, status=400)
    return await account_page(request, identity, "The passkey is renamed.", ok=True)


async def remove_submit(request: Request) -> Response:
    identity = await current_user(request)
    if identity is None:
        return RedirectResponse(TO_ACCOUNT, status_code=303)
    parts = components(request)
    await read_fields(request, parts.settings.max_body_bytes, allow_form=True, allow_empty=True)
    try:
        # Only a recent sign-in here: the form asks for nothing else.
        await reauthenticate(request, identity, {})
    except InsufficientAuthentication:
        return await account_page(
            request, identity,
            "To remove a passkey, sign in again first (your sign-in is over 5 minutes old).",
            status=403,
        )  # fmt: skip
    try:
        await parts.passkeys.remove(identity.user_id, request.path_params["passkey_id"])
    except NotFound:
        return await account_page(request, identity, "There is no such passkey.", status=404)
    return await account_page(request, identity, "The passkey is removed.", ok=True)


routes = [
    Route("/account/passkeys/{passkey_id}/rename", rename_submit, methods=["POST"]),
    Route("/account/passkeys/{passkey_id}/remove", remove_submit, methods=["POST"]),
]
