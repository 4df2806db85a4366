"""CPU time and Redis round trips per refresh, in process, per signing algorithm.

    python bench/refresh.py [--n 2000] [--concurrency 32] [--algs RS256,ES256,EdDSA,HS256]
                            [--profile ALG [--sort tottime]]

What ``bench/run.py --only login`` drives over HTTP, without the HTTP server:
``POST /auth/refresh`` with a JSON body, each request presenting the refresh
token the previous one of its chain returned (``--concurrency`` chains, one
family each, in flight together, as under load: a lone request would also
pay for the event loop going to sleep on every Redis reply), handed as a
synthetic ASGI scope to the real
``gatepass serve`` app (users in SQLite, sessions and tokens on a private
redis-server on a free port, stopped at the end; Redis's own CPU is not
counted).  Per algorithm it prints:

* ``app``: µs of CPU per request through the whole app (best of 5 batches);
* ``service``: µs of CPU of ``TokenService.refresh`` alone (the rotation, the
  checks and the access token), the rest being Starlette and the route;
* ``sign``: µs of CPU to sign one access token with that algorithm;
* ``trips``: Redis round trips per refresh (commands and pipelines).

``--profile ALG`` prints a cProfile of the app loop for that algorithm instead
(``--sort tottime`` for time spent in each function itself).
One core's ceiling is about 1e6 / (app µs + the HTTP server's own µs per
request, which ``bench/hotpath.py`` puts near a plain Starlette route's).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hotpath import lifespan, scope_for


def refresh_scope(token: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"refresh_token": token}).encode()
    scope = scope_for(
        "/auth/refresh",
        [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    )
    scope["method"] = "POST"
    return scope, body


async def post(app: Any, token: str) -> str:
    """One refresh through the app; the successor refresh token."""
    scope, body = refresh_scope(token)
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] += message.get("body", b"")

    await app(dict(scope, headers=list(scope["headers"]), state={}), receive, send)
    if out["status"] != 200:
        raise SystemExit(f"/auth/refresh answered {out['status']}: {out['body'][:200]!r}")
    token_: str = json.loads(out["body"])["refresh_token"]
    return token_


async def best_of(batches: int, rounds: int, step: Any) -> float:
    """CPU seconds of ``rounds`` calls of ``step`` (a coroutine function): the best batch."""
    best = float("inf")
    for _ in range(batches):
        t0 = time.process_time()
        for _ in range(rounds):
            await step()
        best = min(best, time.process_time() - t0)
    return best


async def one_algorithm(
    alg: str, redis_url: str, n: int, concurrency: int, profile: str | None
) -> None:
    """Print the numbers for ``alg``, or (``profile``: a pstats order) its profile."""
    from gatepass.server.app import create_app
    from gatepass.server.settings import Settings

    tmp = tempfile.mkdtemp(prefix="gatepass-refresh-")
    settings = Settings(
        data_dir=Path(tmp), session_store_url=f"{redis_url}?prefix={alg}:", jwt_algorithm=alg
    )  # type: ignore[arg-type]
    app = create_app(settings)
    task, inbox = await lifespan(app)
    parts = app.state.gatepass.components
    user = await parts.accounts.users.create(f"{alg}@example.com", None, ("user",))
    stats = parts.sessions.store.stats
    # One family per concurrent client, each refreshing in a chain.
    chains = [
        (await parts.tokens.issue(user.id, roles=("user",))).refresh_token
        for _ in range(concurrency)
    ]

    async def chain_app(i: int) -> None:
        chains[i] = await post(app, chains[i])

    async def chain_service(i: int) -> None:
        chains[i] = (await parts.tokens.refresh(chains[i])).refresh_token

    async def through_app() -> None:
        await asyncio.gather(*(chain_app(i) for i in range(concurrency)))

    async def service_only() -> None:
        await asyncio.gather(*(chain_service(i) for i in range(concurrency)))

    rounds = max(n // concurrency, 1)
    for _ in range(max(rounds // 10, 5)):  # warm-up: caches, streams, connections
        await through_app()
    if profile is not None:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(rounds):
            await through_app()
        profiler.disable()
        pstats.Stats(profiler).sort_stats(profile).print_stats(45)
    else:
        before = stats.round_trips
        await chain_app(0)
        trips = stats.round_trips - before
        per = rounds * concurrency / 1e6
        app_us = await best_of(5, rounds, through_app) / per
        service_us = await best_of(5, rounds, service_only) / per
        codec = parts.tokens.codec
        sign_n = max(n // 4, 50)
        t0 = time.process_time()
        for _ in range(sign_n):
            codec.issue(user.id, roles=("user",), scopes=(), fid="f" * 22, gen=0)
        sign_us = (time.process_time() - t0) / sign_n * 1e6
        print(
            f"{alg:6} app {app_us:7.1f} µs  service {service_us:7.1f} µs  "
            f"sign {sign_us:6.1f} µs  trips {trips}",
            flush=True,
        )
    await inbox.put({"type": "lifespan.shutdown"})
    await task


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument(
        "--concurrency", type=int, default=32, help="refreshes in flight (wrk's -c32)"
    )
    parser.add_argument("--algs", default="RS256,ES256,EdDSA,HS256")
    parser.add_argument("--profile", metavar="ALG", help="cProfile the app loop for ALG")
    parser.add_argument("--sort", default="cumulative", help="the profile's order (pstats)")
    args = parser.parse_args()
    os.environ.setdefault("GATEPASS_SECRET_KEY", "k" * 43)

    from harness import Redis

    redis = Redis()
    try:
        for alg in [args.profile] if args.profile else args.algs.split(","):
            profile = args.sort if args.profile else None
            await one_algorithm(alg, redis.url, args.n, args.concurrency, profile=profile)
    finally:
        redis.stop()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
