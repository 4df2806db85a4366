"""``gatepass serve``'s hot requests leave nothing for the garbage collector.

The same budget as tests/asgi/test_request_garbage.py, on the whole server
stack (every layer, both browser modes): requests that leave reference
cycles make the collector run every few dozen requests, and on a server
with gatepass's imports those passes cost about 6 µs per request under
load (issue 14's profile: 12% of a cached session GET).
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest

from gatepass.server.app import create_app
from gatepass.server.settings import Settings
from tests.asgi.test_request_garbage import Cycle

Headers = list[tuple[bytes, bytes]]


def scope_for(path: str, headers: Headers) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 51000), "scheme": "http",
        "method": "GET", "root_path": "", "path": path, "raw_path": path.encode(),
        "query_string": b"", "state": {},
        "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"*/*"), *headers],
    }  # fmt: skip


async def lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    return task, inbox


@pytest.mark.parametrize("mode", ["session", "jwt"])
def test_hot_requests_leave_no_reference_cycles(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEPASS_SECRET_KEY", "k" * 43)

    async def run() -> dict[str, int]:
        app = create_app(Settings(data_dir=tmp_path, browser_mode=mode))  # type: ignore[arg-type]
        task, inbox = await lifespan(app)
        parts = app.state.gatepass.components
        user = await parts.accounts.users.create("ada@example.com", None, ("user",))
        issued = await parts.sessions.create(user.id, ("user",))
        pair = await parts.tokens.issue(user.id, roles=("user",))
        cookie = (b"cookie", f"__Host-gatepass={issued.token}".encode())
        bearer = (b"authorization", f"Bearer {pair.access_token}".encode())
        access = (b"cookie", f"__Host-gatepass-at={pair.access_token}".encode())
        cases: dict[str, tuple[str, Headers, int]] = {
            "healthz": ("/healthz", [], 200),
            "verify, session": ("/auth/verify", [cookie], 200),
            "verify, bearer": ("/auth/verify", [bearer], 200),
            "verify, anonymous": ("/auth/verify", [], 401),
            "me, session": ("/auth/me", [cookie], 200),
            "me, bearer": ("/auth/me", [bearer], 200),
            "me, access cookie": ("/auth/me", [access], 200 if mode == "jwt" else 401),
        }
        found: dict[str, int] = {}
        try:
            for name, (path, headers, status) in cases.items():
                for _ in range(5):  # warm the caches
                    cycle = Cycle(scope_for(path, headers))
                    await app(cycle.scope, cycle.receive, cycle.send)
                    assert cycle.status == status, (name, cycle.status)
                gc.collect()
                gc.disable()
                try:
                    for _ in range(30):
                        cycle = Cycle(scope_for(path, headers))
                        await app(cycle.scope, cycle.receive, cycle.send)
                    del cycle
                    found[name] = gc.collect()
                finally:
                    gc.enable()
        finally:
            await inbox.put({"type": "lifespan.shutdown"})
            await task
        return found

    assert asyncio.run(run()) == dict.fromkeys(
        ["healthz", "verify, session", "verify, bearer", "verify, anonymous", "me, session",
         "me, bearer", "me, access cookie"], 0
    )  # fmt: skip
