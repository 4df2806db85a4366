"""Benchmark: authenticated GET vs the same app's unauthenticated GET.

    python bench/run.py [--duration 5] [--rounds 3] [--stores memory,sqlite,redis,postgres]
                        [--schemes session,bearer]

For each store it starts ``bench/app.py`` under uvicorn (one worker, uvloop,
httptools) on a free loopback port, pinned to CPU 0, and drives it with
``wrk -t1 -c32`` pinned to CPU 1, alternating the plain and the
authenticated route for several rounds.  It prints requests/s (medians) and
the ratio authenticated / plain, and writes ``bench/results/sessions.json``
and ``.md``.  Absolute numbers depend on the machine; the ratios are the
point.  wrk is installed with apt when it is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

STORES = {
    "memory": "memory://",
    "sqlite": "sqlite:///{tmp}/bench-sessions.db",
    "redis": "redis://127.0.0.1:6379/0",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
}


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    print("installing wrk with apt …", file=sys.stderr)
    for _ in range(10):
        done = subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
        )
        if done.returncode == 0:
            break
        subprocess.run(["apt-get", "update", "-q"], capture_output=True)
        time.sleep(3)
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk is required: apt-get install wrk")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() else []


class Server:
    def __init__(self, store_url: str) -> None:
        self.port = free_port()
        env = {**os.environ, "BENCH_STORE": store_url, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [*pinned(0), sys.executable, "-m", "uvicorn", "bench.app:app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
             "--no-access-log", "--loop", "uvloop", "--http", "httptools"],
            env=env,
            cwd=ROOT,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(self.base + "/plain", timeout=1).read()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"bench server for {store_url} did not start") from None
                time.sleep(0.1)

    def login(self, what: str = "login") -> str:
        request = urllib.request.Request(self.base + f"/_bench/{what}", method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            token: str = response.read().decode()
        return token

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wrk(url: str, duration: float, headers: list[str]) -> dict[str, float]:
    args = [*pinned(1), ensure_wrk(), "-t1", "-c32", f"-d{max(1, round(duration))}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} non-2xx responses; the benchmark is invalid")
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    return {"rps": rps, "p99_ms": p99_ms}


def bench_store(
    name: str, url: str, duration: float, rounds: int, scheme: str
) -> dict[str, object]:
    server = Server(url)
    try:
        if scheme == "session":
            credential = f"Cookie: __Host-gatepass={server.login()}"
        else:
            credential = f"Authorization: Bearer {server.login('token')}"
        wrk(server.base + "/me", 1, [credential])  # warm-up: caches, pools
        wrk(server.base + "/plain", 1, [])
        plain, auth = [], []
        for _ in range(rounds):
            plain.append(wrk(server.base + "/plain", duration, []))
            auth.append(wrk(server.base + "/me", duration, [credential]))
    finally:
        server.stop()
    plain_rps = statistics.median(r["rps"] for r in plain)
    auth_rps = statistics.median(r["rps"] for r in auth)
    return {
        "store": name,
        "scheme": scheme,
        "plain_rps": round(plain_rps),
        "auth_rps": round(auth_rps),
        "ratio": round(auth_rps / plain_rps, 3),
        "plain_p99_ms": round(statistics.median(r["p99_ms"] for r in plain), 2),
        "auth_p99_ms": round(statistics.median(r["p99_ms"] for r in auth), 2),
        "runs": {"plain": [r["rps"] for r in plain], "auth": [r["rps"] for r in auth]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--schemes", default="session,bearer")
    args = parser.parse_args()
    tmp = RESULTS / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    for scheme in args.schemes.split(","):
        for name in args.stores.split(","):
            url = STORES[name].format(tmp=tmp)
            row = bench_store(name, url, args.duration, args.rounds, scheme)
            rows.append(row)
            print(
                f"{scheme:8} {name:9} plain {row['plain_rps']:>7} req/s   "
                f"authenticated {row['auth_rps']:>7} req/s   ratio {row['ratio']:.2f}   "
                f"p99 {row['plain_p99_ms']} / {row['auth_p99_ms']} ms",
                flush=True,
            )
    shutil.rmtree(tmp, ignore_errors=True)
    meta = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load": "wrk -t1 -c32, server on CPU 0, wrk on CPU 1",
        "duration_s": args.duration,
        "rounds": args.rounds,
    }
    (RESULTS / "auth.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "| credential | store | plain req/s | authenticated req/s | ratio "
        "| p99 plain / auth (ms) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['scheme']} | {r['store']} | {r['plain_rps']} | {r['auth_rps']} "
            f"| {r['ratio']:.2f} "
            f"| {r['plain_p99_ms']} / {r['auth_p99_ms']} |"
            for r in rows
        ),
    ]
    (RESULTS / "auth.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
