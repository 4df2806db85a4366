"""The ASGI middleware that resolves who is calling, once per request.

A plain ASGI class in Starlette's manner: everything that can be is
precomputed in ``__init__``; ``__call__`` reads the session cookie with the
strict parser, loads the session (one store read; a write only when sliding
renewal is due), and exposes the result as ``scope["user"]`` (an
:class:`~gatepass.identity.Identity` or ``ANONYMOUS``) and ``scope["auth"]``
(a :class:`RequestAuth`, through which a route logs in or out).

Failure modes, on purpose:

* A cookie that is garbage, unknown, expired, duplicated or look-alike makes
  the caller anonymous.  Never a 500, never someone else's session.
* A store that cannot be reached makes the request fail with 503.  The
  caller is never treated as anonymous (clients would drop their session)
  and never let through unchecked.
* Any :class:`~gatepass.errors.GatepassError` raised by the app, e.g. by a
  ``require_user`` dependency, is turned into its HTTP answer here, by the
  one mapping in :mod:`gatepass.asgi.errors`.
"""

from __future__ import annotations

from typing import Any

from gatepass.asgi.bearer import BearerResolver
from gatepass.asgi.errors import error_parts
from gatepass.asgi.types import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    client_ip,
    credentials,
    header,
)
from gatepass.cookies import CookieSpec, read_cookie
from gatepass.dbsc import DATA_KEY, BoundCookies
from gatepass.errors import GatepassError
from gatepass.identity import ANONYMOUS, Anonymous, Identity, RolePermissions
from gatepass.sessions.manager import IssuedSession, SessionManager
from gatepass.sessions.record import SessionRecord

# Re-exported: apps and older code import the ASGI types from here.
__all__ = [
    "ASGIApp", "AuthMiddleware", "Message", "Receive", "RequestAuth", "Scope", "Send",
    "client_ip", "header",
]  # fmt: skip


class RequestAuth:
    """Per-request authentication state and the actions a route can take.

    Obtain it with ``request.auth`` (Starlette) or :func:`gatepass.asgi.auth_of`.
    """

    __slots__ = (
        "_middleware", "_scope", "clear_site_data", "extra_headers", "record", "set_cookies",
        "token",
    )  # fmt: skip

    def __init__(
        self, middleware: AuthMiddleware, scope: Scope, token: str | None,
        record: SessionRecord | None,
    ) -> None:  # fmt: skip
        self._middleware = middleware
        self._scope = scope
        self.token = token
        self.record = record
        #: ``Set-Cookie`` values to add to the response.
        self.set_cookies: list[str] = []
        #: Set by logout: the browser is asked to drop cached pages and storage.
        self.clear_site_data = False
        #: Other headers that go with the cookies (a device-binding offer).
        self.extra_headers: list[tuple[bytes, bytes]] = []

    @property
    def scopes(self) -> list[str]:
        """Permissions, under the name Starlette's ``@requires`` reads."""
        user = self._scope.get("user")
        return sorted(user.permissions) if isinstance(user, Identity) else []

    @property
    def manager(self) -> SessionManager:
        return self._middleware.sessions

    async def login(
        self,
        user_id: str,
        roles: tuple[str, ...] = (),
        *,
        remember: bool = False,
        amr: tuple[str, ...] = (),
    ) -> IssuedSession:
        """Start a session under a fresh id and set its cookie.

        Whatever session the request came with is destroyed first, so a
        planted id never survives a login.  ``amr`` says how the user
        authenticated (e.g. ``("pwd", "otp")``); the session records it with
        the time of this login, for step-up checks.
        """
        mw = self._middleware
        data: dict[str, Any] = {"auth_time": mw.sessions.clock()}
        if amr:
            data["amr"] = list(amr)
        issued = await mw.sessions.create(
            user_id,
            roles,
            remember=remember,
            ip=client_ip(self._scope),
            user_agent=header(self._scope, b"user-agent"),
            replacing=self.token,
            data=data,
        )
        max_age = issued.record.absolute_expires_at - issued.record.created_at
        self.set_cookies.append(
            mw.cookie.header(issued.token, max_age=int(max_age) if remember else None)
        )
        self._become(issued)
        return issued

    async def rotate(self) -> IssuedSession | None:
        """A fresh id for the current session (call on privilege change)."""
        if self.token is None:
            return None
        issued = await self._middleware.sessions.rotate(self.token)
        if issued is None:
            return None
        remember = issued.record.remember
        lifetime = int(issued.record.absolute_expires_at - self._middleware.sessions.clock())
        self.set_cookies.append(
            self._middleware.cookie.header(issued.token, max_age=lifetime if remember else None)
        )
        self._become(issued)
        return issued

    async def logout(self) -> None:
        """Destroy the session server-side and clear the cookie."""
        if self.token is not None:
            await self._middleware.sessions.destroy(self.token)
        self.set_cookies.append(self._middleware.cookie.deletion_header())
        self.clear_site_data = True
        self.token = None
        self.record = None
        self._scope["user"] = ANONYMOUS

    def _become(self, issued: IssuedSession) -> None:
        self.token = issued.token
        self.record = issued.record
        self._scope["user"] = self._middleware.permissions.identity_for(issued.record)


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: SessionManager,
        cookie: CookieSpec | None = None,
        permissions: RolePermissions | None = None,
        bearer: BearerResolver | None = None,
        bound: BoundCookies | None = None,
    ) -> None:
        """``bearer`` enables ``Authorization: Bearer`` (see :mod:`gatepass.asgi.bearer`);
        ``bound`` enforces device-bound sessions (see :mod:`gatepass.dbsc`)."""
        self.app = app
        self.bound = bound
        self.sessions = sessions
        self.cookie = cookie or CookieSpec()
        self.permissions = permissions or RolePermissions()
        self.bearer = bearer
        self._cookie_name = self.cookie.name
        self._stale_cookie = self.cookie.deletion_header()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        token: str | None = None
        record: SessionRecord | None = None
        user: Identity | Anonymous = ANONYMOUS
        authorization, cookie = credentials(scope)  # one pass over the headers
        try:
            presented = (
                await self.bearer.resolve_headers(authorization, cookie)
                if self.bearer is not None
                else None
            )
            if presented is not None:
                # A bearer token decides alone: no cookie is consulted, so a
                # request cannot mix one user's token with another's session.
                user = presented
            else:
                token = read_cookie(cookie, self._cookie_name)
                if token is not None:
                    record = await self.sessions.load(token)
                    if (
                        record is not None
                        and DATA_KEY in record.data
                        and self.bound is not None
                        and not self.bound.check(cookie, record.data[DATA_KEY])
                    ):
                        # A device-bound login without its bound cookie: anonymous.
                        # The cookie stays: the browser needs it to refresh.
                        token = record = None
        except GatepassError as exc:
            await _send_error(send, exc)
            return
        auth = RequestAuth(self, scope, token if record else None, record)
        if token is not None and record is None:
            # A cookie for a session that is gone: tell the browser to drop it.
            auth.set_cookies.append(self._stale_cookie)
        if record is not None:
            user = self.permissions.identity_for(record)
        scope["user"] = user
        scope["auth"] = auth

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_cookies(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if auth.set_cookies:
                    headers = list(message.get("headers", ()))
                    headers.extend((b"set-cookie", v.encode("latin-1")) for v in auth.set_cookies)
                    # A response that sets a session cookie must never be
                    # stored by a shared cache and served to someone else.
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                    headers.extend(auth.extra_headers)
                    if auth.clear_site_data:
                        # Not "cookies": that would clear every cookie of the
                        # registrable domain, sibling apps' included; ours are
                        # expired explicitly above.
                        headers.append((b"clear-site-data", b'"cache", "storage"'))
                    message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookies)
        except GatepassError as exc:
            if started:
                raise
            await _send_error(send_with_cookies, exc)


async def _send_error(send: Send, exc: GatepassError) -> None:
    status, headers, body = error_parts(exc)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
