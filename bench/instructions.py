"""Instructions per request under the real server: a measure noise cannot move.

    python3 bench/instructions.py [--n 4000] [--stores memory,sqlite,redis]

wrk's requests/s on a shared 2-core machine swings with whatever else runs;
CPU instructions do not.  Each app runs under uvicorn (uvloop, httptools, one
worker, as ``bench/run.py`` starts it) inside ``valgrind --tool=callgrind``
with counting switched off; after a warm-up the counting is switched on, a
fixed number of keep-alive requests is sent over 8 connections, and the
count is divided by the requests.  The same run on the same build gives the
same figure to within a fraction of a percent, whatever the machine is doing.

Rows: the honest baseline (``bench/plain_app.py``: plain Starlette, no
gatepass, sent the same session cookie so both parse the same request), then
``bench/app.py``'s ``GET /me`` with a session cookie and with an HS256 Bearer
token, per store.  The ratio is baseline instructions ÷ the row's: what wrk's
ratio would be if every instruction cost the same.  It does not: kernel and
network code runs at a lower IPC than the interpreter, so wrk's ratios on a
quiet machine land close to, but not exactly on, these.

Needs valgrind (``apt-get install valgrind``) and ``bench/.venv`` (made by
``python3 bench/run.py``, or by this script the same way).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from harness import Redis  # noqa: E402
from run import bootstrap_venv  # noqa: E402
from scenarios_wrk import asgi_argv  # noqa: E402

CONNECTIONS = 8
WARM_UP = 400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def wait_ready(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/plain", timeout=5).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the server on port {port} never answered") from None
            time.sleep(0.2)


def post(port: int, path: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        body: bytes = answer.read()
    return body.decode()


def drive(port: int, path: str, headers: list[str], n: int) -> int:
    """Send ``n`` GETs (rounded up to the connection count), checking each answer."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        + "".join(h + "\r\n" for h in headers)
        + "\r\n"
    ).encode()
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
    done = 0
    try:
        while done < n:
            for s in sockets:
                s.sendall(request)
            for s in sockets:
                buffer = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise SystemExit("the server closed the connection")
                    buffer += chunk
                    head, sep, body = buffer.partition(b"\r\n\r\n")
                    if sep:
                        length = re.search(rb"content-length: (\d+)", head, re.I)
                        if length and len(body) >= int(length.group(1)):
                            break
                if not buffer.startswith(b"HTTP/1.1 200"):
                    raise SystemExit(f"GET {path} answered {buffer[:60]!r}")
            done += len(sockets)
    finally:
        for s in sockets:
            s.close()
    return done


def instructions(
    target: str, env: dict[str, str], credential: str, n: int, root: Path = ROOT
) -> float:
    """Instructions per request of ``GET`` on ``target`` (an ASGI app path)."""
    port = free_port()
    out = Path(tempfile.mkdtemp(prefix="gatepass-callgrind-")) / "callgrind.out"
    server = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            *(arg.replace("{port}", str(port)) for arg in asgi_argv("uvicorn", target)),
        ],  # the same uvicorn settings as every wrk row
        cwd=root,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(port)
        path, headers = "/plain", [f"Cookie: __Host-gatepass={'A' * 43}"]
        if credential == "session":
            path, headers = "/me", [f"Cookie: __Host-gatepass={post(port, '/_bench/login')}"]
        elif credential == "bearer":
            path, headers = "/me", [f"Authorization: Bearer {post(port, '/_bench/token')}"]
        drive(port, path, headers, WARM_UP)
        subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True,
                       capture_output=True)  # fmt: skip
        done = drive(port, path, headers, n)
        subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], check=True,
                       capture_output=True)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=60)
    total = 0
    for dump in out.parent.glob("callgrind.out*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    shutil.rmtree(out.parent, ignore_errors=True)
    if not total:
        raise SystemExit("callgrind wrote no totals")
    return total / done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="requests counted per row")
    parser.add_argument("--stores", default="memory,sqlite,redis")
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="measure another checkout (its src/ and bench/ apps), e.g. a git worktree "
        "of an older commit, for a before/after",
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    bootstrap_venv(__file__)

    tmp = Path(tempfile.mkdtemp(prefix="gatepass-instructions-"))
    redis: Redis | None = None
    urls = {"memory": "memory://", "sqlite": f"sqlite:///{tmp}/bench.db"}
    if "redis" in args.stores:
        redis = Redis()  # a private redis-server on a free port
        urls["redis"] = redis.url
    root = args.root.resolve()
    pythonpath = f"{root / 'src'}{os.pathsep}{root}"
    try:
        base = instructions("bench.plain_app:app", {"PYTHONPATH": pythonpath}, "none", args.n, root)
        print(f"{'plain Starlette, no gatepass':34} {base:>10,.0f} instructions/request")
        for store in args.stores.split(","):
            env = {"PYTHONPATH": pythonpath, "BENCH_STORE": urls[store], "BENCH_ALG": "HS256"}
            for credential in ("session", "bearer"):
                count = instructions("bench.app:app", env, credential, args.n, root)
                print(
                    f"{credential + ' / ' + store:34} {count:>10,.0f} instructions/request"
                    f"   ratio {base / count:.3f}",
                    flush=True,
                )
    finally:
        if redis is not None:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
