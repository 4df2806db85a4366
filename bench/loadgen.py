"""A small asyncio load generator for what wrk cannot do.

wrk replays one fixed request; a refresh token is single-use (each refresh
must present the token the previous response returned) and a login needs a
CSRF cookie first.  So login and refresh throughput are driven from here:
raw ``asyncio`` streams, HTTP/1.1 keep-alive, one connection per worker, a
fixed duration, and per-request latencies.  It is slower than wrk (it tops out
at a few thousand requests/s on one core), which does not matter for logins
(tens per second) or refreshes (hundreds to a few thousand) but does cap the
plain POST baseline: that ratio is a lower bound.

    python bench/loadgen.py post    URL --body '{"token": "x"}' [--duration 5] [--connections 32]
    python bench/loadgen.py login   URL --email E --password P
    python bench/loadgen.py refresh URL --email E --password P
    python bench/loadgen.py burst   URL --email E --password P --count 20 --delay 0.5

``URL`` is the server's base (``http://127.0.0.1:PORT``).  Prints one JSON
object: requests, errors, rps, p50_ms, p99_ms (and for ``burst`` the login
latencies).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [
            f"{method} {path} HTTP/1.1",
            f"host: {self.host}:{self.port}",
            f"content-length: {len(body)}",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *raw = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        response_headers = []
        length = 0
        close = False
        for line in raw:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            response_headers.append((name, value))
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                raise RuntimeError("chunked responses are not supported")
            elif name == "connection" and value.lower() == "close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, response_headers, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def cookies_of(headers: list[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for name, value in headers:
        if name == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            out[key.strip()] = val.strip()
    return out


Step = Callable[[Connection], Awaitable[bool]]


async def drive(
    make_step: Callable[[Connection], Awaitable[Step]],
    host: str,
    port: int,
    connections: int,
    duration: float,
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    ready = 0
    all_ready = asyncio.Event()
    start = asyncio.Event()
    deadline = 0.0

    async def worker() -> None:
        nonlocal errors, ready
        conn = Connection(host, port)
        try:
            step = await make_step(conn)  # per-worker set-up (a token, a CSRF cookie)
        finally:
            ready += 1
            if ready == connections:
                all_ready.set()
        await start.wait()
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                ok = await step(conn)
            except (OSError, asyncio.IncompleteReadError, RuntimeError):
                ok = False
                await conn.close()
            latencies.append(time.perf_counter() - t0)
            if not ok:
                errors += 1
        await conn.close()

    tasks = [asyncio.create_task(worker()) for _ in range(connections)]
    await all_ready.wait()  # every worker set up (it may have logged in): now the timed window
    for t in tasks:
        if t.done() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]
    began = time.perf_counter()
    deadline = began + duration
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    return summary(latencies, errors, elapsed)


def summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(p / 100 * len(ms)))] if ms else float("nan")

    ok = len(ms) - errors
    return {
        "requests": len(ms),
        "errors": errors,
        "rps": ok / elapsed if elapsed else 0.0,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }


JSON = {"content-type": "application/json"}


async def csrf_pair(conn: Connection) -> tuple[str, str]:
    """The anonymous CSRF cookie and token (signed double-submit before login)."""
    status, headers, body = await conn.request("GET", "/auth/csrf", {})
    if status != 200:
        raise RuntimeError(f"GET /auth/csrf answered {status}")
    cookie = "; ".join(f"{k}={v}" for k, v in cookies_of(headers).items())
    return cookie, json.loads(body)["csrf_token"]


def login_step_factory(email: str, password: str) -> Callable[[Connection], Awaitable[Step]]:
    body = json.dumps({"email": email, "password": password}).encode()

    async def make(conn: Connection) -> Step:
        cookie, token = await csrf_pair(conn)
        headers = {**JSON, "cookie": cookie, "x-csrf-token": token}

        async def step(c: Connection) -> bool:
            status, _, _ = await c.request("POST", "/auth/login", headers, body)
            return status == 200

        return step

    return make


def refresh_step_factory(email: str, password: str) -> Callable[[Connection], Awaitable[Step]]:
    creds = json.dumps({"email": email, "password": password}).encode()

    async def make(conn: Connection) -> Step:
        status, _, body = await conn.request("POST", "/auth/token", JSON, creds)
        if status != 200:
            raise RuntimeError(f"POST /auth/token answered {status}: {body[:200]!r}")
        current = json.loads(body)["refresh_token"]

        async def step(c: Connection) -> bool:
            nonlocal current
            payload = json.dumps({"refresh_token": current}).encode()
            status, _, data = await c.request("POST", "/auth/refresh", JSON, payload)
            if status != 200:
                return False
            current = json.loads(data)["refresh_token"]  # the next request uses the successor
            return True

        return step

    return make


def post_step_factory(path: str, body: bytes) -> Callable[[Connection], Awaitable[Step]]:
    async def make(conn: Connection) -> Step:
        async def step(c: Connection) -> bool:
            status, _, _ = await c.request("POST", path, JSON, body)
            return status < 400

        return step

    return make


async def burst(
    host: str, port: int, email: str, password: str, count: int, delay: float
) -> dict[str, Any]:
    """``count`` concurrent logins, ``delay`` seconds from now, each on its own connection."""
    make = login_step_factory(email, password)
    conns = [Connection(host, port) for _ in range(count)]
    steps = [await make(c) for c in conns]
    await asyncio.sleep(delay)

    async def one(conn: Connection, step: Step) -> tuple[float, bool]:
        t0 = time.perf_counter()
        ok = await step(conn)
        return time.perf_counter() - t0, ok

    began = time.perf_counter()
    results = await asyncio.gather(*(one(c, s) for c, s in zip(conns, steps, strict=True)))
    elapsed = time.perf_counter() - began
    for c in conns:
        await c.close()
    ms = sorted(t * 1000 for t, _ in results)
    return {
        "logins": count,
        "errors": sum(1 for _, ok in results if not ok),
        "burst_s": elapsed,
        "login_p50_ms": ms[len(ms) // 2],
        "login_max_ms": ms[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["post", "login", "refresh", "burst"])
    parser.add_argument("url")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--path", default="/auth/revoke")
    parser.add_argument("--body", default='{"token": "x"}')
    parser.add_argument("--email", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.5)
    args = parser.parse_args()
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if args.mode == "burst":
        result: dict[str, Any] = asyncio.run(
            burst(host, port, args.email, args.password, args.count, args.delay)
        )
    else:
        factory = {
            "post": lambda: post_step_factory(args.path, args.body.encode()),
            "login": lambda: login_step_factory(args.email, args.password),
            "refresh": lambda: refresh_step_factory(args.email, args.password),
        }[args.mode]()
        result = asyncio.run(drive(factory, host, port, args.connections, args.duration))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
