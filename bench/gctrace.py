"""What the garbage collector does under load: collections and time per request.

    python3 bench/gctrace.py [--seconds 5] [--store memory://] [--root DIR]

Objects caught in a reference cycle outlive their request until a collector
pass finds them, and on a server with gatepass's imports those passes cost
more than the middleware's own work, in time more than in instructions (they
miss the CPU caches).  This runs ``bench/app.py`` (and the plain baseline)
under uvicorn as the wrk rows do, wrapped so that ``gc.callbacks`` counts
every collection, drives it with ``wrk -t1 -c32`` for a session cookie and
a Bearer token, and prints collections, objects freed and collector time
per 1,000 requests.  ``--root`` measures another checkout (e.g. a git
worktree of an older commit) for a before/after.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from instructions import free_port, post, wait_ready  # noqa: E402
from run import bootstrap_venv  # noqa: E402
from scenarios_wrk import asgi_argv  # noqa: E402

WRAPPER = """
import gc, importlib, os, time
_mod, _name = os.environ["GCTRACE_TARGET"].split(":")
_inner = getattr(importlib.import_module(_mod), _name)
_stats = {"requests": 0, "collections": [0, 0, 0], "collected": 0, "seconds": 0.0}
_started = [0.0]

def _callback(phase, info):
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _stats["collections"][info["generation"]] += 1
        _stats["collected"] += info["collected"]
        _stats["seconds"] += time.perf_counter() - _started[0]

gc.callbacks.append(_callback)

async def app(scope, receive, send):
    if scope["type"] == "http":
        if scope["path"] == "/_gctrace":
            body = repr(_stats).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        _stats["requests"] += 1
    await _inner(scope, receive, send)
"""


def stats(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_gctrace", timeout=10) as answer:
        value: dict[str, object] = ast.literal_eval(answer.read().decode())
    return value


def trace(target: str, credential: str, store: str, seconds: int, root: Path) -> str:
    port = free_port()
    wrapper_dir = Path(tempfile.mkdtemp(prefix="gatepass-gctrace-"))
    (wrapper_dir / "gctrace_app.py").write_text(WRAPPER)
    env = {
        **os.environ,
        "GCTRACE_TARGET": target,
        "BENCH_STORE": store,
        "BENCH_ALG": "HS256",
        "PYTHONPATH": os.pathsep.join([str(wrapper_dir), str(root / "src"), str(root)]),
    }
    argv = [a.replace("{port}", str(port)) for a in asgi_argv("uvicorn", "gctrace_app:app")]
    server = subprocess.Popen(["taskset", "-c", "0", *argv], cwd=root, env=env)
    try:
        wait_ready(port)
        headers: list[str] = []
        path = "/plain"
        if credential == "session":
            path, headers = "/me", ["-H", f"Cookie: __Host-gatepass={post(port, '/_bench/login')}"]
        elif credential == "bearer":
            path = "/me"
            headers = ["-H", f"Authorization: Bearer {post(port, '/_bench/token')}"]
        url = f"http://127.0.0.1:{port}{path}"
        wrk = ["taskset", "-c", "1", "wrk", "-t1", "-c32", *headers]
        subprocess.run([*wrk, "-d1s", url], capture_output=True, check=True)  # warm
        before = stats(port)
        out = subprocess.run([*wrk, f"-d{seconds}s", url], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
        after = stats(port)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if "Non-2xx" in out:
        raise SystemExit(f"{target} {path} answered errors under wrk")
    requests = int(after["requests"]) - int(before["requests"])  # type: ignore[call-overload]
    per_k = 1000 / max(requests, 1)
    gens = [
        int(a) - int(b)
        for a, b in zip(after["collections"], before["collections"], strict=True)  # type: ignore[call-overload]
    ]
    freed = int(after["collected"]) - int(before["collected"])  # type: ignore[call-overload]
    spent = float(after["seconds"]) - float(before["seconds"])  # type: ignore[arg-type]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return (
        f"{requests:>8,} requests ({float(rps.group(1)) if rps else 0:,.0f}/s); per 1,000: "
        f"collections {gens[0] * per_k:.1f}/{gens[1] * per_k:.1f}/{gens[2] * per_k:.2f} "
        f"(gen 0/1/2), objects freed {freed * per_k:,.0f}, "
        f"collector {spent * per_k * 1000:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--store", default="memory://")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    bootstrap_venv(__file__)
    root = args.root.resolve()
    rows = (
        ("plain Starlette, no gatepass", "bench.plain_app:app", "none"),
        ("session cookie", "bench.app:app", "session"),
        ("Bearer HS256", "bench.app:app", "bearer"),
    )
    for name, target, credential in rows:
        print(f"{name:30} {trace(target, credential, args.store, args.seconds, root)}", flush=True)


if __name__ == "__main__":
    main()
