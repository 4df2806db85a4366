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

from types import MappingProxyType
from typing import Any, cast

from gatepass.asgi.bearer import BearerResolver
from gatepass.asgi.errors import error_parts
from gatepass.asgi.types import (
    ASGIApp,
    CookieReader,
    Message,
    Receive,
    Scope,
    Send,
    client_ip,
    credentials,
    header,
)
from gatepass.cookies import CookieSpec
from gatepass.dbsc import DATA_KEY, BoundCookies
from gatepass.errors import GatepassError
from gatepass.identity import ANONYMOUS, Anonymous, Identity, RolePermissions
from gatepass.sessions.manager import IssuedSession, SessionManager
from gatepass.sessions.record import SessionRecord
from gatepass.sessions.store import UNKNOWN
from gatepass.sessions.tokens import is_well_formed, token_key

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
        "_middleware", "_scope", "_send", "clear_site_data", "extra_headers", "record",
        "set_cookies", "started", "token",
    )  # fmt: skip

    def __init__(
        self, middleware: AuthMiddleware, scope: Scope, token: str | None,
        record: SessionRecord | None, send: Send,
    ) -> None:  # fmt: skip
        self._middleware = middleware
        self._scope = scope
        self._send = send
        #: True once the response has started (an error can no longer be sent).
        self.started = False
        self.token = token
        self.record = record
        #: ``Set-Cookie`` values to add to the response.
        self.set_cookies: list[str] = []
        #: Set by logout: the browser is asked to drop cached pages and storage.
        self.clear_site_data = False
        #: Other headers that go with the cookies (a device-binding offer).
        self.extra_headers: list[tuple[bytes, bytes]] = []

    async def _send_through(self, message: Message) -> None:
        """The app's ``send``: adds the cookies (and what goes with them) to
        the response start; everything else passes untouched."""
        if message["type"] == "http.response.start":
            self.started = True
            if self.set_cookies:
                message["headers"] = self._with_cookies(message.get("headers", ()))
        await self._send(message)

    def _with_cookies(self, original: Any) -> list[tuple[bytes, bytes]]:
        headers = list(original)
        headers.extend((b"set-cookie", v.encode("latin-1")) for v in self.set_cookies)
        # A response that sets a session cookie must never be stored by a
        # shared cache and served to someone else.
        headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
        headers.append((b"cache-control", b"no-store"))
        headers.extend(self.extra_headers)
        if self.clear_site_data:
            # Not "cookies": that would clear every cookie of the registrable
            # domain, sibling apps' included; ours are expired explicitly.
            headers.append((b"clear-site-data", b'"cache", "storage"'))
        return headers

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
        #: The session token in a Cookie header and its store key (None for a
        #: value that is not the shape we mint), memoised per header: the
        #: session itself is still read from the store on every request.
        self._session_cookie = CookieReader(self._cookie_name, _token_and_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return

        token: str | None = None
        record: SessionRecord | None = None
        user: Identity | Anonymous = ANONYMOUS
        authorization, cookie = credentials(scope)  # one pass over the headers
        bearer = self.bearer
        try:
            presented = (
                await bearer.resolve_headers(authorization, cookie)
                if bearer is not None and (authorization is not None or bearer.cookie is not None)
                else None
            )
            if presented is not None:
                # A bearer token decides alone: no cookie is consulted, so a
                # request cannot mix one user's token with another's session.
                user = presented
            elif cookie is not None:
                found = self._session_cookie(cookie)
                if found is not None:
                    token, key = found
                    if key is not None:
                        sessions = self.sessions
                        found_record = sessions.peek(key)  # no I/O: the store's cache
                        record = (
                            await sessions.load_key(key)
                            if found_record is UNKNOWN
                            else found_record  # type: ignore[assignment]
                        )
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
        auth = RequestAuth(self, scope, token if record is not None else None, record, send)
        if record is not None:
            user = self.permissions.identity_for(record)
        elif token is not None:
            # A cookie for a session that is gone: tell the browser to drop it.
            auth.set_cookies.append(self._stale_cookie)
        scope["user"] = user
        scope["auth"] = auth

        try:
            if kind != "http":
                await self.app(scope, receive, send)
                return
            try:
                await self.app(scope, receive, auth._send_through)
            except GatepassError as exc:
                if auth.started:
                    raise
                await _send_error(auth._send_through, exc)
        finally:
            # The request's auth state refers to its scope and to the server's
            # send (whose owner holds the scope, as uvicorn's does), and the
            # scope refers back to it: reference cycles that would leave every
            # request's objects to the garbage collector, whose passes then
            # cost more than the rest of the middleware.  Cut both.
            auth._scope = _ENDED
            auth._send = _ended

def _token_and_key(token: str) -> tuple[str, str | None]:
    return token, token_key(token) if is_well_formed(token) else None


#: What a finished request's :class:`RequestAuth` holds instead of its
#: scope: empty and read-only, so nothing can be learnt or left through it.
_ENDED = cast(Scope, MappingProxyType({}))


async def _ended(message: Message) -> None:
    """What a finished request's :class:`RequestAuth` holds instead of ``send``."""
    raise RuntimeError("The response of this request has been sent already.")


async def _send_error(send: Send, exc: GatepassError) -> None:
    status, headers, body = error_parts(exc)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
