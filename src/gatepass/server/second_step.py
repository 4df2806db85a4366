"""The hand-off from a first step that passed to the second factor.

Kept apart from :mod:`.mfa_routes` so the first-step handlers
(:mod:`.api`, :mod:`.token_api`) can call it without an import cycle.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gatepass.asgi.middleware import client_ip
from gatepass.errors import MFARequired
from gatepass.mfa.service import AMR_PASSWORD, client_binding
from gatepass.server.components import components
from gatepass.users.model import User


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
