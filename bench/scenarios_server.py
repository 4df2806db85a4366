"""Scenarios on the real ``gatepass serve`` app, and memory per stored session.

* login throughput: ``POST /auth/login`` with a real Argon2id verify;
* refresh throughput: ``POST /auth/refresh``, each request presenting the
  token the previous one returned;
* event-loop health: p50/p99 of a cheap session GET under wrk, alone and with
  a burst of 20 concurrent logins fired 0.5 s into the run;

all driven by ``bench/loadgen.py`` (login, refresh, the burst) or wrk (the
GET), against the server run by uvicorn with the Python bench settings.  The
baseline of login and refresh is a cheap POST through the same middleware
stack (``POST /auth/revoke`` with a junk token) by the same load generator.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from harness import (
    BenchError,
    Process,
    Request,
    Row,
    Sample,
    cookie_header,
    failed,
    http,
    loadgen,
    log,
    wrk,
)
from scenarios_wrk import Context, asgi_argv, python_env

EMAIL, PASSWORD = "bench@example.com", "correct horse battery staple"
JSON = {"content-type": "application/json"}


def serve(ctx: Context) -> Process:
    data = ctx.tmp / "serve"
    data.mkdir(parents=True, exist_ok=True)
    env = python_env(
        ctx,
        GATEPASS_DATA_DIR=str(data),
        GATEPASS_SESSION_STORE_URL=ctx.redis.url,
        GATEPASS_SECRET_KEY="k" * 43,
    )
    added = subprocess.run(
        [sys.executable, "-m", "gatepass", "users", "add", EMAIL, "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        capture_output=True,
        env={**os.environ, **env},
    )
    if added.returncode != 0 and "exists" not in (added.stderr + added.stdout):
        raise BenchError(f"gatepass users add failed: {added.stderr.strip()[-300:]}")
    argv = asgi_argv("uvicorn", "gatepass.server.app:create_app")
    argv.insert(argv.index("--host"), "--factory")
    return Process("gatepass serve", argv, ready_url="/healthz", env=env)


def session_cookie(base: str) -> str:
    """A signed-in browser's cookies: CSRF first, then login."""
    _, headers, body = http(base + "/auth/csrf")
    cookie = cookie_header(headers)
    token = json.loads(body)["csrf_token"]
    status, headers, body = http(
        base + "/auth/login",
        method="POST",
        body=json.dumps({"email": EMAIL, "password": PASSWORD}).encode(),
        headers={**JSON, "cookie": cookie, "x-csrf-token": token},
    )
    if status != 200:
        raise BenchError(f"login answered {status}: {body[:200]!r}")
    return cookie_header(headers)


def throughput(ctx: Context) -> None:
    expected = [
        ("login & refresh", "login (Argon2id)", ""),
        ("login & refresh", "refresh (rotation, redis)", ""),
    ]
    try:
        ctx.redis.flush()
        with serve(ctx) as app:
            creds = ["--email", EMAIL, "--password", PASSWORD]
            common = ["--duration", str(ctx.duration)]
            runs: dict[str, list[dict[str, Any]]] = {"post": [], "login": [], "refresh": []}
            for _ in range(ctx.rounds):
                runs["post"].append(loadgen(["post", app.base, *common]))
                runs["login"].append(loadgen(["login", app.base, *common, *creds]))
                runs["refresh"].append(loadgen(["refresh", app.base, *common, *creds]))
            baseline = statistics.median(r["rps"] for r in runs["post"])
            for key, scenario in (
                ("login", "login (Argon2id)"),
                ("refresh", "refresh (rotation, redis)"),
            ):
                rs = runs[key]
                errors = sum(r["errors"] for r in rs)
                row = Row(
                    "login & refresh",
                    scenario,
                    "gatepass serve",
                    "uvicorn",
                    rps=statistics.median(r["rps"] for r in rs),
                    baseline_rps=baseline,
                    p50_ms=statistics.median(r["p50_ms"] for r in rs),
                    p99_ms=statistics.median(r["p99_ms"] for r in rs),
                    baseline_p99_ms=statistics.median(r["p99_ms"] for r in runs["post"]),
                    note="asyncio load generator; baseline: POST /auth/revoke (junk token)",
                    runs={
                        "rps": [round(r["rps"], 1) for r in rs],
                        "baseline_rps": [round(r["rps"]) for r in runs["post"]],
                    },
                )
                if errors:
                    row.status = f"failed: {errors} requests failed"
                ctx.add(row)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        for group, scenario, _ in expected:
            ctx.add(failed(group, scenario, "gatepass serve", "uvicorn", exc))


def forward_auth(ctx: Context) -> None:
    """``GET /auth/verify`` with a session cookie: what a proxy asks on every request.

    Against the honest baseline (the bare app's ``/plain``, same server) and,
    labelled, the server's own ``/healthz`` through its whole stack.
    """
    from harness import interleave
    from scenarios_wrk import Measure, bare_app, fill_row, statistics_median

    scenario = "GET /auth/verify, session / redis"
    try:
        ctx.redis.flush()
        with bare_app(ctx, "uvicorn") as bare, serve(ctx) as app:
            cookie = session_cookie(app.base)
            verify = Request("/auth/verify", headers=(f"Cookie: {cookie}",))
            status, _, body = http(app.base + "/auth/verify", headers={"cookie": cookie})
            if status != 200:
                raise BenchError(f"/auth/verify answered {status}: {body[:160]!r}")
            samples = interleave(
                app.base,
                [
                    Measure("bare", Request("/plain"), base=bare.base),
                    Measure("healthz", Request("/healthz")),
                    Measure("verify", verify),
                ],
                ctx.duration,
                ctx.rounds,
            )
            row = fill_row(
                Row("forward auth", scenario, "gatepass serve", "uvicorn"),
                samples["verify"],
                samples["bare"],
            )
            inner = statistics_median(samples["healthz"])
            row.extra["in_stack_ratio"] = round((row.rps or 0) / inner, 3)
            row.note = f"{(row.rps or 0) / inner:.2f} of /healthz on gatepass serve"
            ctx.add(row)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        ctx.add(failed("forward auth", scenario, "gatepass serve", "uvicorn", exc))


def serve_workers(ctx: Context, workers: int, data: str) -> Process:
    """``gatepass serve --workers N`` on the embedded SQLite default, not pinned
    (its workers may use every core; wrk still runs on CPU 1)."""
    directory = ctx.tmp / data
    directory.mkdir(parents=True, exist_ok=True)
    env = python_env(ctx, GATEPASS_DATA_DIR=str(directory), GATEPASS_SECRET_KEY="k" * 43)
    added = subprocess.run(
        [sys.executable, "-m", "gatepass", "users", "add", EMAIL, "--password-stdin"],
        input=PASSWORD + "\n", text=True, capture_output=True, env={**os.environ, **env},
    )  # fmt: skip
    if added.returncode != 0 and "exists" not in (added.stderr + added.stdout):
        raise BenchError(f"gatepass users add failed: {added.stderr.strip()[-300:]}")
    argv = [sys.executable, "-m", "gatepass", "serve", "--workers", str(workers),
            "--port", "{port}", "--log-level", "warning"]  # fmt: skip
    return Process(f"gatepass serve --workers {workers}", argv, ready_url="/healthz", env=env,
                   cpu=None)  # fmt: skip


def multi_worker(ctx: Context) -> None:
    """``GET /auth/verify`` with a session cookie: two workers against one.

    On a 2-core machine with wrk on one core this shows what a second worker
    adds when it has only half a core to itself, not clean scaling."""
    from harness import interleave
    from scenarios_wrk import Measure, fill_row

    scenario = "GET /auth/verify, sqlite, 2 workers vs 1"
    try:
        with serve_workers(ctx, 1, "serve-w1") as one, serve_workers(ctx, 2, "serve-w2") as two:
            requests = {}
            for label, app in (("one", one), ("two", two)):
                cookie = session_cookie(app.base)
                requests[label] = Request("/auth/verify", headers=(f"Cookie: {cookie}",))
                status, _, body = http(app.base + "/auth/verify", headers={"cookie": cookie})
                if status != 200:
                    raise BenchError(f"/auth/verify answered {status}: {body[:160]!r}")
            samples = interleave(
                one.base,
                [
                    Measure("one", requests["one"]),
                    Measure("two", requests["two"], base=two.base),
                ],
                ctx.duration,
                ctx.rounds,
            )
            row = fill_row(
                Row("workers", scenario, "gatepass serve", "uvicorn"),
                samples["two"],
                samples["one"],
            )
            row.note = "ratio: 2 workers over 1, both unpinned; wrk on CPU 1"
            ctx.add(row)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        ctx.add(failed("workers", scenario, "gatepass serve", "uvicorn", exc))


def event_loop(ctx: Context) -> None:
    """wrk on ``GET /auth/me`` alone, then the same with 20 logins fired 0.5 s in."""
    scenario = "GET p50/p99 during 20 logins"
    try:
        ctx.redis.flush()
        with serve(ctx) as app:
            me = Request("/auth/me", headers=(f"Cookie: {session_cookie(app.base)}",))
            duration = max(2.0, ctx.duration)
            wrk(app.base, me, 1)
            quiet, loaded, bursts = [], [], []
            for _ in range(ctx.rounds):
                quiet.append(wrk(app.base, me, duration))
                result: dict[str, Any] = {}

                def fire(out: dict[str, Any] = result) -> None:
                    out.update(
                        loadgen(
                            [
                                "burst",
                                app.base,
                                "--email",
                                EMAIL,
                                "--password",
                                PASSWORD,
                                "--count",
                                "20",
                                "--delay",
                                "0.5",
                            ]
                        )
                    )

                thread = threading.Thread(target=fire)
                thread.start()
                loaded.append(wrk(app.base, me, duration))
                thread.join()
                if not result or result.get("errors"):
                    raise BenchError(f"the login burst failed: {result}")
                bursts.append(result)

            def med(samples: list[Sample], attr: str) -> float:
                return float(statistics.median(getattr(s, attr) for s in samples))

            row = Row(
                "event loop",
                scenario,
                "gatepass serve",
                "uvicorn",
                rps=med(loaded, "rps"),
                baseline_rps=med(quiet, "rps"),
                p50_ms=med(loaded, "p50_ms"),
                p99_ms=med(loaded, "p99_ms"),
                baseline_p99_ms=med(quiet, "p99_ms"),
            )
            row.extra = {
                "quiet_p50_ms": med(quiet, "p50_ms"),
                "burst_p50_ms": row.p50_ms,
                "quiet_p99_ms": row.baseline_p99_ms,
                "burst_p99_ms": row.p99_ms,
                "p99_ratio": (row.p99_ms or 0) / (row.baseline_p99_ms or 1),
                "burst_seconds": statistics.median(b["burst_s"] for b in bursts),
                "login_max_ms": statistics.median(b["login_max_ms"] for b in bursts),
            }
            row.note = (
                f"p50 {row.extra['quiet_p50_ms']:.2f} → {row.p50_ms:.2f} ms, "
                f"p99 {row.baseline_p99_ms:.2f} → {row.p99_ms:.2f} ms "
                f"({row.extra['p99_ratio']:.1f}×); 20 logins took "
                f"{row.extra['burst_seconds']:.2f} s"
            )
            ctx.add(row)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        ctx.add(failed("event loop", scenario, "gatepass serve", "uvicorn", exc))


def session_memory(ctx: Context, count: int = 10_000) -> None:
    """Bytes of Redis memory per session created through the library."""
    scenario = f"Redis memory per session ({count // 1000}k sessions)"
    try:
        ctx.redis.flush()
        before = ctx.redis.used_memory()
        sample_keys = asyncio.run(_create_sessions(ctx.redis.url, count))
        after = ctx.redis.used_memory()
        per = (after - before) / count
        usage = {k: int(ctx.redis.cli("MEMORY", "USAGE", k) or 0) for k in sample_keys}
        row = Row("memory", scenario, "gatepass", "redis", status="ok")
        row.extra = {
            "bytes_per_session": round(per),
            "sessions": count,
            "used_memory_delta": after - before,
            "memory_usage_sample": usage,
        }
        row.note = f"{per:.0f} B/session (INFO used_memory delta); " + ", ".join(
            f"MEMORY USAGE {k.split(':')[1] if ':' in k else k}: {v} B" for k, v in usage.items()
        )
        ctx.rows.append(row)
        log(f"  {scenario}: {row.note}")
        ctx.redis.flush()
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        ctx.add(failed("memory", scenario, "gatepass", "redis", exc))


async def _create_sessions(url: str, count: int) -> list[str]:
    from gatepass.sessions.manager import SessionManager
    from gatepass.stores.urls import open_session_store

    store = await open_session_store(url)
    try:
        manager = SessionManager(store)
        t0 = time.monotonic()
        for i in range(count):
            await manager.create(f"user-{i}", ("user",), ip="127.0.0.1", user_agent="bench/1.0")
        log(f"  created {count} sessions in {time.monotonic() - t0:.1f} s")
        client: Any = getattr(store, "client", None) or getattr(store, "_client", None)
        if client is None:
            return []
        keys = [
            k.decode() if isinstance(k, bytes) else k async for k in client.scan_iter(count=100)
        ]
        # One session key and one per-user index key, whatever the layout is.
        keys.sort()
        picks: list[str] = []
        for k in keys:
            kind = k.split(":")[1] if ":" in k else k
            if all((p.split(":")[1] if ":" in p else p) != kind for p in picks):
                picks.append(k)
        return picks[:4]
    finally:
        await store.close()


def run_all(ctx: Context, only: set[str] | None) -> None:
    if only is None or "login" in only:
        log("login & refresh (gatepass serve)")
        throughput(ctx)
    if only is None or "verify" in only:
        log("forward auth (gatepass serve)")
        forward_auth(ctx)
    if only is None or "workers" in only:
        log("gatepass serve --workers (SQLite)")
        multi_worker(ctx)
    if only is None or "eventloop" in only:
        log("event-loop health (gatepass serve)")
        event_loop(ctx)
    if only is None or "memory" in only:
        log("memory per session (Redis)")
        session_memory(ctx)
