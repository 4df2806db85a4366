"""A session served from the store's memory still ends on time (issue 14).

The middleware reads a cached session without I/O (``SessionManager.peek``);
the idle and absolute deadlines must hold on that path exactly as on a store
read, on the manager's clock.  The absolute deadline is the one sliding
renewal cannot reveal: a session used a moment ago is still past it.
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette

from gatepass.sessions.config import SessionConfig
from gatepass.sessions.manager import SessionManager
from gatepass.stores.memory import MemorySessionStore
from tests.asgi.test_request_garbage import call, make_app


def app_at(now: list[float]) -> Starlette:
    config = SessionConfig(idle_timeout=600, absolute_timeout=3600)
    return make_app(SessionManager(MemorySessionStore(), config, clock=lambda: now[0]))


def test_the_absolute_deadline_holds_for_a_session_in_use() -> None:
    async def run() -> None:
        now = [1_000_000.0]
        app = app_at(now)
        token = (await call(app, "POST", "/login"))[1].decode()
        cookie = f"__Host-gatepass={token}"
        # Used every five minutes: renewed, never idle, always served.
        for _ in range(11):
            now[0] += 300
            assert await call(app, "GET", "/me", cookie) == (200, b"ada")
        # Then used every 50 s (less than the renewal interval, so the
        # session is served from memory) right up to the absolute deadline.
        for t in range(3400, 3600, 50):
            now[0] = 1_000_000.0 + t
            assert await call(app, "GET", "/me", cookie) == (200, b"ada")
        now[0] = 1_000_000.0 + 3599.5
        assert await call(app, "GET", "/me", cookie) == (200, b"ada")
        now[0] = 1_000_000.0 + 3600
        assert await call(app, "GET", "/me", cookie) == (200, b"-")

    asyncio.run(run())


def test_the_idle_deadline_holds_on_the_cached_path() -> None:
    async def run() -> None:
        now = [1_000_000.0]
        app = app_at(now)
        token = (await call(app, "POST", "/login"))[1].decode()
        cookie = f"__Host-gatepass={token}"
        assert await call(app, "GET", "/me", cookie) == (200, b"ada")
        now[0] += 599
        assert await call(app, "GET", "/me", cookie) == (200, b"ada")
        now[0] += 600
        assert await call(app, "GET", "/me", cookie) == (200, b"-")

    asyncio.run(run())
