"""gatepass benchmarks: every scenario and peer, side by side, in one run.

    python3 bench/run.py [--quick] [--only gatepass,peers,login,verify,workers,eventloop,memory]
                         [--servers uvicorn,granian] [--duration S] [--rounds N]

One command does everything, on loopback only:

1. makes ``bench/.venv`` (its own environment: the servers, the peers, matplotlib,
   pinned in ``bench/requirements.txt``, and gatepass with ``pip install -e .``)
   and re-runs itself there; installs ``wrk`` with apt when missing, and the
   Node peers from npm into ``bench/node/`` (``bench/package.json``);
2. starts a private redis-server on a free port and a database of its own on
   the local PostgreSQL;
3. runs every scenario, each app on CPU 0 and the load generator on CPU 1
   (``wrk -t1 -c32 --latency``; login, refresh and the login burst with
   ``bench/loadgen.py``, an asyncio client, since wrk cannot chain responses);
   each authenticated route is measured against the same app's unauthenticated
   route, in turn, for N rounds, and medians are reported;
4. writes ``bench/results/results.json``, ``results.md`` and ``results.png``.

A peer that fails to install or start is a "failed" row in the table, with the
reason; nothing is dropped silently.  The default run takes about 15 minutes
(after the first install); ``--quick`` about 4.  Absolute numbers depend on
the machine: compare ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
GROUPS = ("gatepass", "peers", "login", "verify", "workers", "eventloop", "memory")
#: gatepass as installed into bench/.venv: every store the bench measures
#: needs its driver (without asyncpg the PostgreSQL rows cannot start).
GATEPASS_SPEC = f"{ROOT}[redis,postgres,mongodb]"


def _stamp(*files: Path) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()


def bootstrap_venv(script: str = __file__) -> None:
    """Create/refresh bench/.venv, then re-exec ``script`` (this one by default)
    with its Python."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not VENV_PYTHON.exists():
        print("creating bench/.venv …", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    stamp_file = VENV / ".bench-stamp"
    stamp = _stamp(BENCH / "requirements.txt", ROOT / "pyproject.toml") + GATEPASS_SPEC
    if not stamp_file.exists() or stamp_file.read_text() != stamp:
        print(
            "installing bench/requirements.txt and gatepass into bench/.venv …",
            file=sys.stderr,
            flush=True,
        )
        pip = [str(VENV_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "--upgrade", "pip"], check=False)
        subprocess.run(
            [*pip, "-r", str(BENCH / "requirements.txt"), "-e", GATEPASS_SPEC], check=True
        )
        stamp_file.write_text(stamp)
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(script).resolve()), *sys.argv[1:]])


def argon2_cost() -> dict[str, float | int]:
    """One Argon2id hash at gatepass's parameters (median of 7), and the hash
    pool's size on this machine: the login target is 0.9 x pool / hash time."""
    import asyncio
    import statistics

    from gatepass.users.passwords import PasswordHasher

    hasher = PasswordHasher()
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        asyncio.run(hasher.hash("correct horse battery staple"))
        times.append(time.perf_counter() - t0)
    return {
        "argon2_ms": round(statistics.median(times) * 1000, 1),
        "spare_cores": hasher.max_workers,
    }


def install_node() -> str | None:
    """npm install bench/package.json into bench/node/; the reason when it fails."""
    from harness import NODE_DIR, apt_install, log

    try:
        apt_install("nodejs", "node")
        apt_install("npm", "npm")
    except SystemExit as exc:
        return f"Node.js unavailable: {exc}"
    NODE_DIR.mkdir(exist_ok=True)
    stamp = _stamp(BENCH / "package.json")
    stamp_file = NODE_DIR / ".bench-stamp"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return None
    log("installing the Node peers into bench/node/ …")
    shutil.copy(BENCH / "package.json", NODE_DIR / "package.json")
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"npm install failed: {done.stderr.strip()[-300:]}"
    stamp_file.write_text(stamp)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 round of 2 s, a 100k denylist instead of 1M"
    )
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 4)")
    parser.add_argument("--rounds", type=int, help="rounds per measurement (default 3)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(GROUPS)}")
    parser.add_argument("--servers", default="uvicorn,granian")
    parser.add_argument("--big-denylist", type=int, help="entries of the large denylist")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite results.md and results.png from results.json, measuring nothing",
    )
    args = parser.parse_args()
    bootstrap_venv()

    import report
    import scenarios_server
    import scenarios_wrk
    from harness import RESULTS, BenchError, Postgres, Redis, apt_install, log

    if args.report_only:
        from harness import RESULTS, Row

        saved = json.loads((RESULTS / "results.json").read_text())
        meta = saved["meta"]
        if "argon2_ms" not in meta:
            meta.update(argon2_cost())
        fields = set(Row.__dataclass_fields__)
        rows = [Row(**{k: v for k, v in row.items() if k in fields}) for row in saved["rows"]]
        report.write(rows, meta, RESULTS)
        print((RESULTS / "results.md").read_text())
        return

    only = set(args.only.split(",")) if args.only else None
    if only and not only <= set(GROUPS):
        parser.error(f"--only takes {', '.join(GROUPS)}")
    duration = args.duration or (2.0 if args.quick else 4.0)
    rounds = args.rounds or (1 if args.quick else 3)
    big = args.big_denylist or (100_000 if args.quick else 1_000_000)
    servers = [s for s in args.servers.split(",") if s]

    started = time.monotonic()
    apt_install("wrk", "wrk")
    node_error = install_node() if only is None or "peers" in only else None
    tmp = RESULTS / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    redis = Redis()
    postgres: Postgres | str
    try:
        postgres = Postgres()
    except BenchError as exc:
        postgres = str(exc)
    ctx = scenarios_wrk.Context(duration, rounds, servers, redis, postgres, tmp, big)
    try:
        scenarios_wrk.run_all(ctx, only, node_error)
        scenarios_server.run_all(ctx, only)
    finally:
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load": "wrk -t1 -c32; server on CPU 0, load generator and Redis on CPU 1",
        "duration_s": duration,
        "rounds": rounds,
        "quick": args.quick,
        "elapsed_s": round(time.monotonic() - started),
        "notes": [
            "gatepass rows run bench/app.py (AuthMiddleware; the browser rows add "
            "CSRFMiddleware) with HS256 access tokens, like the JWT peers.",
            "granian runs a subset (gatepass memory and Redis, the Python peers).",
            "login and refresh run the real `gatepass serve` (users in SQLite, sessions "
            "and tokens in Redis) driven by bench/loadgen.py (asyncio); its baseline is "
            "a cheap POST by the same generator, which caps near a few thousand req/s.",
            "revocation rows fill the Redis denylist with random jtis (redis-cli --pipe), "
            "then measure the same Bearer GET; the note compares with an empty denylist.",
        ],
    }
    meta.update(argon2_cost())
    report.write(ctx.rows, meta, RESULTS)
    ok = sum(1 for r in ctx.rows if r.status == "ok")
    log(
        f"\n{ok} of {len(ctx.rows)} rows ok in {meta['elapsed_s']} s; "
        f"see {RESULTS / 'results.md'} and results.png"
    )
    print((RESULTS / "results.md").read_text())


if __name__ == "__main__":
    main()
