"""One call puts gatepass in front of a Starlette or FastAPI app.

::

    app = FastAPI()
    auth = gatepass.install(app, store_url="sqlite:///app.db", public_url="https://app.example")

The middleware is added at once (before the app starts, which is when
Starlette allows it); the stores are opened in the app's lifespan, on the
server's own event loop, before the app's own start-up code runs, and closed
after its shut-down code.  ``gatepass serve`` is this very call on the
server's routes, so both get the same layers in the same order
(:mod:`gatepass.asgi.stack`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from starlette.applications import Starlette

from gatepass.accounts import Accounts
from gatepass.asgi.stack import Layers, build_stack
from gatepass.asgi.types import ASGIApp, Message, Receive, Scope, Send
from gatepass.errors import GatepassError
from gatepass.identity import RolePermissions
from gatepass.server.components import Components
from gatepass.server.settings import Settings
from gatepass.sessions.manager import SessionManager
from gatepass.tokens.service import TokenService

logger = logging.getLogger("gatepass")

#: Seconds between two housekeeping rounds (expired rows out, key rotation).
HOUSEKEEPING_INTERVAL = 60.0


class Gatepass:
    """gatepass for one app: its settings, its layers, and, once started, its parts.

    The parts (``accounts``, ``sessions``, ``tokens``) exist between the
    app's start-up and shut-down; reading them outside that is an error.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        layers: Layers | None = None,
        permissions: RolePermissions | None = None,
        housekeeping: bool = True,
    ) -> None:
        """``settings`` default to ``Settings()`` (SQLite in ``./.gatepass``); they
        are not read from the environment unless you pass ``Settings.load()``.
        ``permissions`` maps roles to permissions; ``housekeeping`` purges
        expired rows and rotates the signing key once a minute."""
        self.settings = settings or Settings()
        self.layers = layers or Layers()
        self.permissions = permissions
        self.housekeeping = housekeeping
        self._parts: Components | None = None
        self._stack: ASGIApp | None = None
        self._task: asyncio.Task[None] | None = None
        self._sighup = False

    # -- the parts, while running ------------------------------------------------

    @property
    def components(self) -> Components:
        if self._parts is None:
            raise RuntimeError(
                "gatepass is not started: its stores open in the app's lifespan "
                "(run the app under an ASGI server, or `with TestClient(app):`)."
            )
        return self._parts

    @property
    def accounts(self) -> Accounts:
        """Register, authenticate, disable users; set passwords and roles."""
        return self.components.accounts

    @property
    def sessions(self) -> SessionManager:
        return self.components.sessions

    @property
    def tokens(self) -> TokenService:
        """Issue, refresh, verify and revoke Bearer tokens."""
        return self.components.tokens

    # -- wiring --------------------------------------------------------------------

    def middleware(self, app: ASGIApp) -> GatepassMiddleware:
        """``app`` behind gatepass, for any ASGI app: the outermost wrapper."""
        return GatepassMiddleware(app, gatepass=self)

    def install(self, app: Starlette) -> Gatepass:
        """Add the stack to a Starlette or FastAPI app, outermost; returns self."""
        app.add_middleware(GatepassMiddleware, gatepass=self)
        return self

    async def open(self) -> Components:
        """Open the stores and start housekeeping (framework plugins call this)."""
        parts = await Components.open(self.settings)
        if self.permissions is not None:
            parts.permissions = self.permissions
        self._parts = parts
        await parts.mailer.start()
        if self.housekeeping:
            self._task = asyncio.create_task(self._housekeeping_forever())
        self._watch_sighup(parts)
        return parts

    def _watch_sighup(self, parts: Components) -> None:
        """SIGHUP reloads the forward-auth access rules (a bad file keeps the old ones)."""
        rules = parts.rules
        if rules is None or rules.path is None:
            return
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, rules.reload)
        except (NotImplementedError, RuntimeError, ValueError):
            # Not the main thread (an embedded server) or no signals here:
            # the rules then stay as loaded; say so rather than pretend.
            logger.warning("SIGHUP cannot reload the access rules in this process")
            return
        self._sighup = True

    async def start(self, app: ASGIApp) -> None:
        """Open the stores and build the stack around ``app``."""
        self._stack = build_stack(app, await self.open(), self.layers)

    async def stop(self) -> None:
        if self._sighup:
            self._sighup = False
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        parts, self._parts, self._stack = self._parts, None, None
        if parts is not None:
            # Before the stores close: queued mail is sent or kept in the outbox.
            await parts.mailer.stop()
            await parts.close()

    async def housekeeping_round(self) -> None:
        """Expired rows out; the signing key rotated when due."""
        parts = self.components
        settings = parts.settings
        now = parts.sessions.clock()
        for name, store in (
            ("sessions", parts.sessions.store),
            ("refresh families", parts.tokens.refresh_store),
            ("revocations", parts.tokens.revocation),
            ("mfa challenges", parts.mfa.store),
        ):
            try:
                removed = await store.purge_expired(now)
                if removed:
                    logger.info("purged %d expired %s", removed, name)
            except GatepassError:
                logger.warning("purge of %s skipped: store unavailable", name)
        rotated = await asyncio.to_thread(
            parts.keys.rotate_if_due,
            settings.key_rotation_days * 86400,
            settings.access_token_ttl + parts.tokens.codec.leeway,
        )
        if rotated:
            logger.info("signing key rotated (scheduled)")

    async def _housekeeping_forever(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            await self.housekeeping_round()


class GatepassMiddleware:
    """Opens gatepass in the lifespan, then runs every request through the stack.

    The stack is built at start-up, around the app this middleware wraps,
    because its layers need the opened stores.
    """

    def __init__(self, app: ASGIApp, *, gatepass: Gatepass) -> None:
        self.app = app
        self.gatepass = gatepass

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        stack = self.gatepass._stack
        if stack is None:
            raise RuntimeError(
                "gatepass is not started: the ASGI server must run the lifespan "
                "(uvicorn's --lifespan on or auto)."
            )
        await stack(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        startup = await receive()
        try:
            await self.gatepass.start(self.app)
        except Exception as exc:  # reported to the ASGI server, which exits
            # Our own errors carry vetted text; a driver's may quote a URL
            # with its password, so only its type is told.
            reason = exc.detail if isinstance(exc, GatepassError) else type(exc).__name__
            logger.error("start-up failed: %s", reason)
            await self.gatepass.stop()
            await send({"type": "lifespan.startup.failed", "message": reason})
            # Servers ignore what follows a reported failure; test clients
            # expect the app to raise.  Vetted text only, no chained driver error.
            raise RuntimeError(f"gatepass start-up failed: {reason}") from None
        if "state" in scope and self.gatepass._parts is not None:
            # Request handlers reach the parts as request.state.gatepass.
            scope["state"]["gatepass"] = self.gatepass
        replayed = False
        answered = False

        async def app_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return startup
            return await receive()

        async def app_send(message: Message) -> None:
            nonlocal answered
            answered = True
            if message["type"] in (
                "lifespan.startup.failed", "lifespan.shutdown.complete", "lifespan.shutdown.failed"
            ):  # fmt: skip
                # After the app's own shut-down code, which may still use us.
                await self.gatepass.stop()
            await send(message)

        try:
            await self.app(scope, app_receive, app_send)
        except BaseException:
            await self.gatepass.stop()
            if answered:
                raise
            # An app that does not speak the lifespan protocol: speak it for it.
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})


def install(
    app: Starlette,
    settings: Settings | None = None,
    *,
    store_url: str | None = None,
    layers: Layers | None = None,
    permissions: RolePermissions | None = None,
    **options: Any,
) -> Gatepass:
    """Put gatepass in front of ``app`` and return it.

    ``store_url`` names the database for users and sessions (``sqlite:///…``,
    ``postgresql://…``, ``redis://…`` for sessions and tokens with
    ``session_store_url``); other keyword arguments are :class:`Settings`
    fields (``public_url=``, ``secret_key=``, ``cors_origins=``…), or pass
    a whole ``settings``.  Every layer of :mod:`gatepass.asgi.stack` is on
    unless ``layers`` turns it off by name.
    """
    if settings is not None and (store_url is not None or options):
        raise TypeError("Pass either settings or Settings fields, not both.")
    if settings is None:
        if store_url is not None:
            options["database_url"] = store_url
        settings = Settings(**options)
    return Gatepass(settings, layers=layers, permissions=permissions).install(app)
