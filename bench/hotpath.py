"""CPU time per request through gatepass's own code, in process: for code-level work.

    python bench/hotpath.py [--n 20000] [--store URL] [--only verify,me,bearer,bare]

No server and no network: each request is a synthetic ASGI scope handed
straight to the app, so what is measured is the app's own CPU per request
(``time.process_time``, best of 5 batches), far steadier on a shared machine
than wrk's requests/s.  Scenarios, on the real ``gatepass serve`` app
(sessions on ``--store``, default the embedded SQLite):

* ``verify``: ``GET /auth/verify`` with a session cookie (forward auth);
* ``me``: ``GET /auth/me`` with a session cookie;
* ``bearer``: ``GET /auth/me`` with ``Authorization: Bearer``;
* ``lib``: ``GET /me`` on ``bench/app.py`` (``AuthMiddleware`` alone, the
  wrk rows' app) with a session cookie, sessions on ``--store`` too;
* ``browser``: ``GET /me`` on ``bench/app.py`` with ``CSRFMiddleware`` too
  (``BENCH_CSRF=1``) and the access token in its cookie (browser JWT mode);
* ``bare``: a plain Starlette route with no gatepass (the honest baseline).

The numbers leave out the HTTP server (parsing, the socket), which costs
about as much again as a plain Starlette route: compare differences, not
ratios, with wrk's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

Scope = dict[str, Any]


def scope_for(path: str, headers: list[tuple[bytes, bytes]], query: bytes = b"") -> Scope:
    """A scope as uvicorn builds it for ``GET path`` over plain HTTP on loopback."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 51000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"wrk"),
            (b"accept", b"*/*"),
            *headers,
        ],
        "state": {},
    }


async def call(app: Any, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = message.get("headers", [])
        else:
            out["body"] += message.get("body", b"")

    await app(dict(scope, headers=list(scope["headers"]), state={}), receive, send)
    return out["status"], out["headers"], out["body"]


async def lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    message = await outbox.get()
    if message["type"] != "lifespan.startup.complete":
        raise SystemExit(f"start-up failed: {message}")
    return task, inbox


async def measure(app: Any, scope: Scope, n: int) -> float:
    """µs of CPU per request: the best of 5 batches of n."""
    status, _, body = await call(app, scope)
    if status >= 300:
        raise SystemExit(f"{scope['path']} answered {status}: {body[:200]!r}")
    for _ in range(n // 10):
        await call(app, scope)
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(n):
            await call(app, scope)
        best = min(best, time.process_time() - t0)
    return best / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--store", help="GATEPASS_SESSION_STORE_URL (default: embedded SQLite)")
    parser.add_argument("--only", default="bare,lib,browser,verify,me,bearer")
    args = parser.parse_args()
    wanted = args.only.split(",")

    from bench.plain_app import app as bare
    from gatepass.server.app import create_app
    from gatepass.server.settings import Settings

    tmp = tempfile.mkdtemp(prefix="gatepass-hotpath-")
    overrides: dict[str, Any] = {"data_dir": Path(tmp)}
    if args.store:
        overrides["session_store_url"] = args.store
    os.environ.setdefault("GATEPASS_SECRET_KEY", "k" * 43)
    app = create_app(Settings(**overrides))
    task, inbox = await lifespan(app)
    parts = app.state.gatepass.components
    user = await parts.accounts.users.create("bench@example.com", None, ("user",))
    issued = await parts.sessions.create(user.id, ("user",))
    pair = await parts.tokens.issue(user.id, roles=("user",))
    cookie = (b"cookie", f"__Host-gatepass={issued.token}".encode())
    bearer = (b"authorization", f"Bearer {pair.access_token}".encode())
    os.environ["BENCH_STORE"] = args.store or f"sqlite:///{tmp}/bench-app.db"
    from bench.app import BenchApp

    lib = BenchApp()
    lib_task, lib_inbox = await lifespan(lib)
    lib_cookie = await call(lib, dict(scope_for("/_bench/login", []), method="POST"))
    set_cookie = dict(lib_cookie[1])[b"set-cookie"].split(b";")[0]
    os.environ["BENCH_CSRF"] = "1"
    browser = BenchApp()
    browser_task, browser_inbox = await lifespan(browser)
    access = (await call(browser, dict(scope_for("/_bench/token", []), method="POST")))[2]
    scenarios = {
        "lib": (lib, scope_for("/me", [(b"cookie", set_cookie)])),
        "browser": (browser, scope_for("/me", [(b"cookie", b"__Host-gatepass-at=" + access)])),
        "bare": (bare, scope_for("/plain", [])),
        "verify": (app, scope_for("/auth/verify", [cookie])),
        "me": (app, scope_for("/auth/me", [cookie])),
        "bearer": (app, scope_for("/auth/me", [bearer])),
    }
    for name in wanted:
        target, scope = scenarios[name]
        print(f"{name:8} {await measure(target, scope, args.n):8.1f} µs/request", flush=True)
    for box, running in ((inbox, task), (lib_inbox, lib_task), (browser_inbox, browser_task)):
        await box.put({"type": "lifespan.shutdown"})
        await running


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
