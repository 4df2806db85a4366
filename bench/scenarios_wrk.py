"""wrk scenarios: gatepass's ``bench/app.py`` and the peers, each against its own baseline.

Every app is started once per server; its baseline (the same app's
unauthenticated route) and its authenticated routes are measured in turn,
round after round, so drift hits them alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    BENCH,
    NODE_DIR,
    ROOT,
    BenchError,
    Measure,
    Postgres,
    Process,
    Redis,
    Request,
    Row,
    Sample,
    cookie_header,
    failed,
    fill_row,
    http,
    interleave,
    log,
)

PLAIN = Request("/plain")
PLAIN_POST = Request("/plain", "POST", ("Content-Type: application/json",), "{}")


@dataclass
class Context:
    duration: float
    rounds: int
    servers: list[str]
    redis: Redis
    postgres: Postgres | str  # a Postgres, or why there is none
    tmp: Path
    big_denylist: int = 1_000_000
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        if row.status == "ok":
            ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
            log(
                f"  {row.scenario:34} {row.implementation:22} {row.server:8} "
                f"{row.rps or 0:>8.0f} req/s  baseline {row.baseline_rps or 0:>8.0f}  ratio {ratio}"
            )
        else:
            log(f"  {row.scenario:34} {row.implementation:22} {row.server:8} {row.status}")


def asgi_argv(server: str, target: str) -> list[str]:
    """The same settings for every Python app: one worker, uvloop, no access log.

    ``--lifespan on``: an app whose start-up fails (a store it cannot open)
    exits with the reason, instead of uvicorn's default of going on without
    lifespan and answering every request with a 500.
    """
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--log-level",
            "warning",
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--lifespan",
            "on",
        ]
    if server == "granian":
        return [
            str(Path(sys.executable).parent / "granian"),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--log-level",
            "warning",
            "--no-access-log",
            "--no-ws",
            target,
        ]
    raise ValueError(server)


def python_env(ctx: Context, **extra: str) -> dict[str, str]:
    return {
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH / "peers")]),
        "BENCH_REDIS": ctx.redis.url,
        "BENCH_TMP": str(ctx.tmp),
        **extra,
    }


def credential_of(base: str, app: Process | None = None) -> str:
    """Sign in through the app's ``/_bench/login``: a header line or its cookies.

    ``app``: the server, whose log tail goes into the error when it fails.
    """
    status, headers, body = http(base + "/_bench/login", method="POST", body=b"")
    if status >= 400:
        log_tail = f"; server log: {app.output(1200)}" if app is not None else ""
        raise BenchError(f"/_bench/login answered {status}: {body[:200]!r}{log_tail}")
    text = body.decode().strip()
    if text.startswith(("Authorization:", "Cookie:")):
        return text
    cookies = cookie_header(headers)
    if not cookies:
        raise BenchError("/_bench/login set no cookie")
    return f"Cookie: {cookies}"


def check(base: str, request: Request) -> None:
    """Fail early, with the reason, when the authenticated request is not a 2xx."""
    headers = dict(h.split(":", 1) for h in request.headers)
    body = request.body.encode() if request.method != "GET" else None
    status, _, data = http(
        base + request.path,
        method=request.method,
        body=body,
        headers={k.strip(): v.strip() for k, v in headers.items()},
    )
    if status >= 300:
        raise BenchError(f"{request.method} {request.path} answered {status}: {data[:160]!r}")


def rows_from(
    ctx: Context,
    samples: dict[str, list[Sample]],
    specs: list[tuple[str, str, str, str]],
    implementation: str,
    server: str,
    in_stack: str | None = None,
) -> None:
    """specs: (label, baseline label, group, scenario).

    ``in_stack``: the label of the same app's own unauthenticated route,
    reported beside the honest ratio (``extra["in_stack_ratio"]``).
    """
    for label, baseline, group, scenario in specs:
        row = Row(group, scenario, implementation, server)
        ctx.add(fill_row(row, samples[label], samples[baseline]))
        source = in_stack or ("plain-post" if baseline == "bare-post" else "plain")
        if baseline.startswith("bare") and row.rps and source in samples:
            inner = statistics_median(samples[source])
            row.extra["in_stack_ratio"] = round(row.rps / inner, 3)
            row.note = (row.note + "; " if row.note else "") + (
                f"{row.rps / inner:.2f} of /plain inside the gatepass stack"
            )


def guarded(
    ctx: Context,
    names: list[tuple[str, str, str]],
    implementation: str,
    server: str,
    run: Callable[[], None],
) -> None:
    """Run one app's measurements; on failure, one failed row per expected scenario."""
    try:
        run()
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        log(f"  {implementation} ({server}) failed: {exc}")  # whole, the table cuts it
        for group, scenario, _ in names:
            ctx.add(failed(group, scenario, implementation, server, exc))


# --------------------------------------------------------------------------- gatepass


def gatepass_store(ctx: Context, server: str, store: str, url: str) -> None:
    """Session cookie and Bearer on one store; on Redis, the denylist sizes too."""
    expected = [
        ("session cookie", f"session / {store}", ""),
        ("bearer JWT", f"bearer / {store}", ""),
    ]
    if store == "redis":
        expected += [
            ("revocation", "bearer, denylist 1k / redis", ""),
            ("revocation", f"bearer, denylist {_size(ctx.big_denylist)} / redis", ""),
        ]

    def run() -> None:
        if store == "redis":
            ctx.redis.flush()
        env = python_env(ctx, BENCH_STORE=url, BENCH_ALG="HS256")
        with (
            bare_app(ctx, server) as bare,
            Process(
                f"gatepass {store} ({server})",
                asgi_argv(server, "bench.app:app"),
                ready_url="/plain",
                env=env,
            ) as app,
        ):
            session = Request("/me", headers=(credential_of(app.base, app),))
            token = http(app.base + "/_bench/token", method="POST", body=b"")[2].decode()
            bearer = Request("/me", headers=(f"Authorization: Bearer {token}",))
            for r in (session, bearer):
                check(app.base, r)
            measures = [
                Measure("bare", PLAIN, base=bare.base),
                Measure("plain", PLAIN),
                Measure("session", session),
                Measure("bearer", bearer),
            ]
            samples = interleave(app.base, measures, ctx.duration, ctx.rounds)
            rows_from(
                ctx,
                samples,
                [
                    ("session", "bare", "session cookie", f"session / {store}"),
                    ("bearer", "bare", "bearer JWT", f"bearer / {store}"),
                ],
                "gatepass",
                server,
                in_stack="plain",
            )
            if store != "redis":
                return
            base_bearer = statistics_median(samples["bearer"])
            base_bare = statistics_median(samples["bare"])
            for size, label in ((1000, "1k"), (ctx.big_denylist, _size(ctx.big_denylist))):
                t0 = time.monotonic()
                fill_denylist(ctx.redis, size)
                took = time.monotonic() - t0
                keys = int(ctx.redis.cli("DBSIZE"))
                log(f"  denylist filled to {size} entries in {took:.1f} s ({keys} keys in Redis)")
                check(app.base, bearer)
                s = interleave(
                    app.base,
                    [Measure("plain", PLAIN), Measure("bearer", bearer)],
                    ctx.duration,
                    ctx.rounds,
                )
                row = fill_row(
                    Row("revocation", f"bearer, denylist {label} / redis", "gatepass", server),
                    s["bearer"],
                    s["plain"],
                )
                # The in-stack /plain of this run, rescaled to the bare app.
                scale = base_bare / statistics_median(samples["plain"])
                row.baseline_rps = (row.baseline_rps or 0) * scale
                row.note = f"{row.rps / base_bearer:.2f} of bearer with an empty denylist"  # type: ignore[operator]
                row.extra = {"denylist": size, "fill_s": round(took, 1), "redis_keys": keys}
                ctx.add(row)

    guarded(ctx, expected, "gatepass", server, run)


def bare_app(ctx: Context, server: str) -> Process:
    """The honest baseline: the plain route with no gatepass, on the same server."""
    return Process(
        f"plain, no gatepass ({server})",
        asgi_argv(server, "bench.plain_app:app"),
        ready_url="/plain",
        env=python_env(ctx),
    )


def statistics_median(samples: list[Sample]) -> float:
    values = sorted(s.rps for s in samples)
    return values[len(values) // 2]


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def fill_denylist(redis: Redis, target: int) -> None:
    """Top the Redis denylist up to ``target`` random jtis: one ``redis-cli --pipe``.

    Keys are made by the store's own ``entry_key`` over 1000 users, each
    expiring in an hour, exactly what ``deny()`` writes.
    """
    import secrets

    from gatepass.drivers.redis import RedisConnection
    from gatepass.tokens.backends.redis import RedisRevocationStore

    # Only for entry_key: the client never connects.
    store = RedisRevocationStore(RedisConnection("redis://127.0.0.1:6379/0"))
    until = str(int((time.time() + 3600) * 1000)).encode()
    count = int(redis.cli("EVAL", "return #redis.call('KEYS', ARGV[1])", "0", "gatepass:deny:*"))
    chunks = []
    for i in range(max(0, target - count)):
        key = store.entry_key("deny", secrets.token_urlsafe(16), f"user-{i % 1000}").encode()
        chunks.append(
            b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n1\r\n$4\r\nPXAT\r\n$%d\r\n%s\r\n"
            % (len(key), key, len(until), until)
        )
    if chunks:
        redis.cli("--pipe", stdin=b"".join(chunks))


def gatepass_browser(ctx: Context, server: str) -> None:
    """The browser stack (Auth + CSRF): JWT cookie GET and a CSRF-checked POST."""
    expected = [
        ("browser", "JWT cookie GET / memory", ""),
        ("browser", "POST + CSRF token / memory", ""),
    ]

    def run() -> None:
        env = python_env(ctx, BENCH_STORE="memory://", BENCH_CSRF="1", BENCH_ALG="HS256")
        with (
            bare_app(ctx, server) as bare,
            Process(
                f"gatepass browser ({server})",
                asgi_argv(server, "bench.app:app"),
                ready_url="/plain",
                env=env,
            ) as app,
        ):
            session_cookie = credential_of(app.base).removeprefix("Cookie: ")
            csrf = http(app.base + "/_bench/csrf", headers={"Cookie": session_cookie})[2].decode()
            token = http(app.base + "/_bench/token", method="POST", body=b"")[2].decode()
            at_cookie = f"__Host-gatepass-at={token}"
            at_csrf = http(app.base + "/_bench/csrf", headers={"Cookie": at_cookie})[2].decode()
            jwt_get = Request(
                "/me", headers=(f"Cookie: {at_cookie}; __Host-gatepass-csrf={at_csrf}",)
            )
            post = Request(
                "/me",
                "POST",
                (
                    f"Cookie: {session_cookie}; __Host-gatepass-csrf={csrf}",
                    f"X-CSRF-Token: {csrf}",
                    "Sec-Fetch-Site: same-origin",
                    "Content-Type: application/json",
                ),
                "{}",
            )
            for r in (jwt_get, post):
                check(app.base, r)
            measures = [
                Measure("bare", PLAIN, base=bare.base),
                Measure("plain", PLAIN),
                Measure("jwt", jwt_get),
                Measure("bare-post", PLAIN_POST, base=bare.base),
                Measure("plain-post", PLAIN_POST),
                Measure("post", post),
            ]
            samples = interleave(app.base, measures, ctx.duration, ctx.rounds)
            rows_from(
                ctx,
                samples,
                [
                    ("jwt", "bare", "browser", "JWT cookie GET / memory"),
                    ("post", "bare-post", "browser", "POST + CSRF token / memory"),
                ],
                "gatepass",
                server,
            )

    guarded(ctx, expected, "gatepass", server, run)


# --------------------------------------------------------------------------- peers


@dataclass(frozen=True)
class Peer:
    implementation: str
    scenario: str  # comparable gatepass scenario
    group: str
    target: str  # module:app, or a .js file
    redis: bool = False
    note: str = ""

    @property
    def node(self) -> bool:
        return self.target.endswith(".js")


PEERS = [
    Peer(
        "Starlette SessionMiddleware", "session / signed cookie", "peers", "starlette_session:app"
    ),
    Peer("starsessions", "session / redis", "peers", "starsessions_redis:app", redis=True),
    Peer(
        "Litestar server-side",
        "session / redis",
        "peers",
        "litestar_redis:app",
        redis=True,
        note="its baseline also pays a Redis SET: every cookie-less request stores an "
        "empty session and sets a cookie",
    ),
    Peer(
        "FastAPI Users (JWT)",
        "bearer / sqlite user db",
        "peers",
        "fastapi_users_app:jwt_app",
        note="PyJWT HS256, then the user from SQLite (aiosqlite) on every request",
    ),
    Peer(
        "FastAPI Users (Redis)",
        "bearer / redis",
        "peers",
        "fastapi_users_app:redis_app",
        redis=True,
        note="token looked up in Redis, then the user from SQLite on every request",
    ),
    Peer(
        "express-session",
        "session / redis",
        "peers",
        "express_session.js",
        redis=True,
        note="cookie not Secure (express-session sets no Secure cookie over HTTP)",
    ),
    Peer(
        "Express + jsonwebtoken",
        "bearer / none",
        "peers",
        "express_jwt.js",
        note="HS256, key object built once; no revocation check",
    ),
]


def run_peer(ctx: Context, peer: Peer, server: str, node_error: str | None) -> None:
    expected = [(peer.group, peer.scenario, "")]

    def run() -> None:
        if node_error is not None and peer.node:
            raise BenchError(node_error)
        if peer.redis:
            ctx.redis.flush()
        if peer.node:
            argv = ["node", str(BENCH / "peers" / peer.target)]
            env = {
                "NODE_PATH": str(NODE_DIR / "node_modules"),
                "BENCH_REDIS": ctx.redis.url,
                "NODE_ENV": "production",
            }
        else:
            argv = asgi_argv(server, peer.target)
            env = python_env(ctx)
        env = {**env, "PORT": "{port}"}
        with Process(f"{peer.implementation} ({server})", argv, ready_url="/plain", env=env) as app:
            auth = Request("/me", headers=(credential_of(app.base),))
            check(app.base, auth)
            samples = interleave(
                app.base, [Measure("plain", PLAIN), Measure("auth", auth)], ctx.duration, ctx.rounds
            )
            rows_from(
                ctx,
                samples,
                [("auth", "plain", peer.group, peer.scenario)],
                peer.implementation,
                server,
            )
            ctx.rows[-1].note = peer.note

    guarded(ctx, expected, peer.implementation, server, run)


def gatepass_mongodb_emulator(ctx: Context, server: str) -> None:
    """The MongoDB stores against nx-27017, a MongoDB wire-protocol server in
    Python (no MongoDB server installs here): labelled as the emulator, since
    it measures the emulator at least as much as gatepass."""
    beside = Path(sys.executable).parent / "nx-27017"
    if not beside.exists():
        log("  mongodb (emulator): nx-27017 is not installed (pip install -e '.[test]'); skipped")
        return
    try:
        emulator = Process(
            "nx-27017",
            [str(beside), "--data-dir", "memory", "--host", "127.0.0.1", "-p", "{port}",
             "--log-file", str(ctx.tmp / "nx-27017.log"), "--pid-file", str(ctx.tmp / "nx.pid")],
            cpu=None,
        )  # fmt: skip
    except BenchError as exc:
        for g, sc in (("session cookie", "session / mongodb (emulator)"),
                      ("bearer JWT", "bearer / mongodb (emulator)")):  # fmt: skip
            ctx.add(failed(g, sc, "gatepass", server, exc))
        return
    with emulator:
        url = f"mongodb://127.0.0.1:{emulator.port}/gatepass_bench"
        gatepass_store(ctx, server, "mongodb (emulator)", url)


def run_all(ctx: Context, only: set[str] | None, node_error: str | None) -> None:
    def wanted(name: str) -> bool:
        return only is None or name in only

    for server in ctx.servers:
        stores = {
            "memory": "memory://",
            "sqlite": f"sqlite:///{ctx.tmp}/bench-sessions.db",
            "redis": ctx.redis.url,
            "postgres": "",
        }
        if isinstance(ctx.postgres, Postgres):
            stores["postgres"] = ctx.postgres.url
        # granian runs a subset: the cheapest store and Redis.
        names = list(stores) if server == "uvicorn" else ["memory", "redis"]
        if wanted("gatepass"):
            log(f"gatepass on {server}")
            for name in names:
                if name == "postgres" and not isinstance(ctx.postgres, Postgres):
                    for g, s in (
                        ("session cookie", "session / postgres"),
                        ("bearer JWT", "bearer / postgres"),
                    ):
                        ctx.add(failed(g, s, "gatepass", server, ctx.postgres))
                    continue
                gatepass_store(ctx, server, name, stores[name])
            if server == "uvicorn":
                gatepass_mongodb_emulator(ctx, server)
                gatepass_browser(ctx, server)
        if wanted("peers"):
            log(f"peers on {server}")
            for peer in PEERS:
                if peer.node and server != "uvicorn":
                    continue
                run_peer(ctx, peer, "node" if peer.node else server, node_error)
