"""CSRF protection for every state-changing request a cookie authenticates.

Install it inside :class:`~gatepass.asgi.middleware.AuthMiddleware` (it reads
what that resolved).  For unsafe methods, in this order:

1. **Fetch Metadata**: ``Sec-Fetch-Site: cross-site`` is refused outright.
   ``same-origin`` (and ``none``, a user typing the URL) skip step 2: Chromium
   sends ``Origin: null`` on same-origin posts under ``Referrer-Policy:
   no-referrer``, which this layer's own headers set.
2. **Origin**, or ``Referer`` when Origin is absent, must be a trusted origin;
   ``Origin: null`` is refused.  Clients that send neither (curl, servers)
   go on to step 3.
3. **The token**, from ``X-CSRF-Token`` or the form field ``csrf_token``,
   must be bound by HMAC to the current session; before login it must equal
   the ``__Host-`` CSRF cookie (signed double-submit).

Requests authenticated by a Bearer token carry no ambient credential and are
exempt.  Failures answer 403 ``csrf_failed``, never 401.

The token is also kept in a readable cookie whose value is exactly what a
client echoes.  It is reissued whenever it does not match the session, so it
rotates at login and logout.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.requests import HTTPConnection

from gatepass.asgi.errors import error_parts
from gatepass.asgi.middleware import RequestAuth
from gatepass.asgi.types import (
    ASGIApp,
    CookieReader,
    Message,
    Receive,
    Scope,
    Send,
    cookie_header,
    header,
)
from gatepass.cookies import CookieSpec
from gatepass.csrf import ANONYMOUS_BINDING, CSRFSigner, normalize_origins, origin_of
from gatepass.errors import ConfigurationError, CSRFFailed, GatepassError, PayloadTooLarge
from gatepass.identity import Identity

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_COOKIE = CookieSpec(name="__Host-gatepass-csrf", http_only=False)
_FORM = b"application/x-www-form-urlencoded"


class CSRFState:
    """The token of this request; created lazily so pages can embed it."""

    __slots__ = ("cookie_token", "issued", "middleware", "signer")

    def __init__(self, middleware: CSRFMiddleware, cookie_token: str | None) -> None:
        self.middleware = middleware
        self.signer = middleware.signer
        self.cookie_token = cookie_token
        self.issued: tuple[str, str] | None = None  # (binding, token)

    def token(self, binding: str) -> str:
        if self.issued is not None and self.issued[0] == binding:
            return self.issued[1]
        if self.signer.verify(self.cookie_token, binding):
            assert self.cookie_token is not None
            return self.cookie_token
        token = self.signer.token_for(binding)
        self.issued = (binding, token)
        return token


def binding_of(scope: Scope) -> str:
    """What the CSRF token is bound to: the session, or the token family."""
    auth = scope.get("auth")
    if isinstance(auth, RequestAuth) and auth.record is not None:
        return auth.record.key
    user = scope.get("user")
    if isinstance(user, Identity) and user.claims is not None and user.claims.fid:
        return f"family:{user.claims.fid}"
    return ANONYMOUS_BINDING


async def enforce_csrf(conn: HTTPConnection) -> None:
    """Run the CSRF checks from within a route on an exempt path.

    For endpoints whose credential is usually in the body (``/auth/refresh``)
    but may fall back to a cookie: then it is an ambient credential and must
    pass the same checks.  The token must come in ``X-CSRF-Token``.
    """
    state = conn.scope.get("gatepass.csrf")
    if not isinstance(state, CSRFState):
        raise ConfigurationError("CSRFMiddleware is not installed on this app.")

    async def no_body() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    await state.middleware.check(conn.scope, no_body, state, allow_form=False)


def csrf_token(conn: HTTPConnection) -> str:
    """The CSRF token for this request, for a page or for ``GET /auth/csrf``."""
    state = conn.scope.get("gatepass.csrf")
    if not isinstance(state, CSRFState):
        raise ConfigurationError("CSRFMiddleware is not installed on this app.")
    return state.token(binding_of(conn.scope))


class CSRFMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        signer: CSRFSigner,
        trusted_origins: Iterable[str],
        cookie: CookieSpec = CSRF_COOKIE,
        max_form_bytes: int = 64 * 1024,
        exempt_paths: Iterable[str] = (),
    ) -> None:
        """``exempt_paths``: endpoints whose credential travels in the body (no
        cookie authenticates them), e.g. ``/auth/token``."""
        if cookie.http_only:
            raise ConfigurationError("The CSRF cookie must be readable by scripts (HttpOnly off).")
        self.app = app
        self.signer = signer
        self.trusted = normalize_origins(trusted_origins)
        self.cookie = cookie
        self._read_cookie = CookieReader(cookie.name, str)
        self.max_form_bytes = max_form_bytes
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = CSRFState(self, self._read_cookie(cookie_header(scope)))
        scope["gatepass.csrf"] = state
        if (
            scope["method"] not in SAFE_METHODS
            and not _bearer(scope)
            and scope["path"] not in self.exempt_paths
        ):
            try:
                receive = await self.check(scope, receive, state)
            except GatepassError as exc:
                status, headers, body = error_parts(exc)
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return

        async def send_with_token(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._reissue(scope, state, message)
            await send(message)

        await self.app(scope, receive, send_with_token)

    def _reissue(self, scope: Scope, state: CSRFState, message: Message) -> None:
        headers = message.setdefault("headers", [])
        if any(k == b"clear-site-data" and b'"cookies"' in v for k, v in headers):
            return  # every cookie is being cleared; the next page issues a new token
        auth = scope.get("auth")
        credentials_changed = isinstance(auth, RequestAuth) and bool(auth.set_cookies)
        # Only browsers need the cookie: those that asked for a token (a page,
        # GET /auth/csrf), already hold one, or just signed in or out.  A
        # Bearer client gets none.
        if state.issued is None and state.cookie_token is None and not credentials_changed:
            return
        token = state.token(binding_of(scope))
        if token != state.cookie_token:
            headers.append((b"set-cookie", self.cookie.header(token).encode("latin-1")))

    async def check(
        self, scope: Scope, receive: Receive, state: CSRFState, *, allow_form: bool = True
    ) -> Receive:
        """All three checks; returns a ``receive`` that still yields the body."""
        site = header(scope, b"sec-fetch-site")
        if site == "cross-site":
            raise CSRFFailed(reason="cross-site")
        if site not in ("same-origin", "none"):
            origin = header(scope, b"origin")
            if origin is not None:
                if origin_of(origin) not in self.trusted or origin != origin_of(origin):
                    raise CSRFFailed(reason="origin")
            else:
                referer = header(scope, b"referer")
                if referer is not None and origin_of(referer) not in self.trusted:
                    raise CSRFFailed(reason="referer")

        sent = header(scope, b"x-csrf-token")
        form = (header(scope, b"content-type") or "").encode().startswith(_FORM)
        if sent is None and allow_form and form:
            body, receive = await _buffer(receive, self.max_form_bytes)
            sent = _form_field(body, "csrf_token")
        binding = binding_of(scope)
        if not self.signer.verify(sent, binding):
            raise CSRFFailed(reason="token")
        if binding == ANONYMOUS_BINDING and sent != state.cookie_token:
            raise CSRFFailed(reason="double-submit")
        return receive


def _bearer(scope: Scope) -> bool:
    user = scope.get("user")
    return isinstance(user, Identity) and user.scheme == "bearer"


def _form_field(body: bytes, name: str) -> str | None:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return None
    values = [v for k, v in pairs if k == name]
    return values[0] if len(values) == 1 else None


async def _buffer(receive: Receive, limit: int) -> tuple[bytes, Receive]:
    """Read the whole body (up to ``limit``) and a ``receive`` that replays it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
