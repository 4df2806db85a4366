"""The pieces every scenario shares: processes, services, wrk, the load generator.

Servers run pinned to CPU 0, load generators (wrk, ``bench/loadgen.py``) and
the backing services (Redis) to CPU 1, so the server under test has a core to
itself.  Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENV = BENCH / ".venv"
NODE_DIR = BENCH / "node"
SERVER_CPU = 0
LOAD_CPU = 1
CONNECTIONS = 32


class BenchError(Exception):
    """A scenario could not run; reported in the table, never silently dropped."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def pinned(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > cpu:
        return ["taskset", "-c", str(cpu)]
    return []


def apt_install(package: str, binary: str) -> str:
    """``apt-get install`` with retries: the dpkg lock may be held by another installer."""
    path = shutil.which(binary)
    if path:
        return path
    log(f"installing {package} with apt …")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in range(12):
        done = subprocess.run(
            ["apt-get", "install", "-y", "-q", package], env=env, capture_output=True
        )
        if done.returncode == 0:
            break
        if attempt == 0 or b"Unable to locate" in done.stderr:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        time.sleep(5)  # most likely the dpkg lock: wait and retry
    path = shutil.which(binary)
    if not path:
        raise SystemExit(f"{binary} is required: apt-get install {package}")
    return path


# --------------------------------------------------------------------------- processes


class Process:
    """A server process on a free loopback port, stopped on exit."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready_url: str | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
        cpu: int | None = SERVER_CPU,
        timeout: float = 30.0,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.process = subprocess.Popen(
            [*(pinned(cpu) if cpu is not None else []), *argv],
            env={
                **os.environ,
                **{k: v.replace("{port}", str(self.port)) for k, v in (env or {}).items()},
            },
            cwd=cwd,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                message = f"{name} exited at start-up: {self.output()}"
                self.stop()
                raise BenchError(message)
            try:
                if ready_url is not None:
                    urllib.request.urlopen(self.base + ready_url, timeout=1).read()
                else:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers: good enough
            except OSError as exc:
                if time.monotonic() > deadline:
                    message = f"{name} did not start in {timeout:.0f} s: {self.output()}"
                    self.stop()
                    raise BenchError(message) from exc
                time.sleep(0.1)

    def output(self, limit: int = 600) -> str:
        self.log_file.seek(0)
        text = self.log_file.read().decode(errors="replace").strip()
        return text[-limit:] or "(no output)"

    def stop(self) -> None:
        if self.log_file.closed:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, list[str]], bytes]:
    """One request; returns status, headers (lower-cased, multi-valued) and body."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw, data = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, raw, data = exc.code, exc.headers, exc.read()
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        out.setdefault(key.lower(), []).append(value)
    return status, out, data


def cookie_header(headers: dict[str, list[str]]) -> str:
    """``name=value; …`` of every Set-Cookie in a response."""
    pairs = [c.split(";", 1)[0].strip() for c in headers.get("set-cookie", [])]
    return "; ".join(p for p in pairs if p.split("=", 1)[1:] != [""])


# --------------------------------------------------------------------------- services


class Redis:
    """A private redis-server (no persistence) on a free port, pinned to the load CPU."""

    def __init__(self) -> None:
        binary = apt_install("redis-server", "redis-server")
        self.process = Process(
            "redis-server",
            [
                binary,
                "--port",
                "{port}",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            cpu=LOAD_CPU,
        )
        self.port = self.process.port
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            input=stdin,
            capture_output=True,
            check=True,
        )
        return done.stdout.decode().strip()

    def flush(self) -> None:
        self.cli("FLUSHALL")

    def used_memory(self) -> int:
        info = self.cli("INFO", "memory")
        return int(re.search(r"used_memory:(\d+)", info).group(1))  # type: ignore[union-attr]

    def stop(self) -> None:
        self.process.stop()


class Postgres:
    """A database of its own on the local PostgreSQL (started like .ci/run does)."""

    DB = "gatepass_bench"

    def __init__(self) -> None:
        host = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
        if subprocess.run(["pg_isready", *host[:4]], capture_output=True).returncode != 0:
            clusters = (
                sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
            )
            if not clusters:
                raise BenchError("PostgreSQL is not installed (apt-get install postgresql)")
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1], "main", "start"],
                capture_output=True,
            )
            for _ in range(30):
                if subprocess.run(["pg_isready", *host[:4]], capture_output=True).returncode == 0:
                    break
                time.sleep(1)
            else:
                raise BenchError("PostgreSQL did not start on 127.0.0.1:5432")
        psql = ["psql", *host, "-v", "ON_ERROR_STOP=1", "-q", "-d", "postgres", "-c"]
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {self.DB}"], capture_output=True)
        done = subprocess.run([*psql, f"CREATE DATABASE {self.DB}"], capture_output=True)
        if done.returncode != 0:
            raise BenchError(f"cannot create database {self.DB}: {done.stderr.decode()[-300:]}")
        self.url = f"postgresql://postgres@127.0.0.1:5432/{self.DB}"


# --------------------------------------------------------------------------- wrk


@dataclass(frozen=True)
class Request:
    """What wrk sends: a method, a path, headers and a body."""

    path: str
    method: str = "GET"
    headers: tuple[str, ...] = ()
    body: str = ""


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float


def _lua(request: Request, directory: Path) -> Path:
    def q(s: str) -> str:
        return json.dumps(s)  # a JSON string is a valid Lua string literal here

    lines = [f"wrk.method = {q(request.method)}", f"wrk.body = {q(request.body)}"]
    for h in request.headers:
        name, _, value = h.partition(":")
        lines.append(f"wrk.headers[{q(name.strip())}] = {q(value.strip())}")
    path = directory / f"req-{abs(hash(request))}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_SCALE = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency(out: str, pct: str) -> float:
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    return float(m.group(1)) * _SCALE[m.group(2)] if m else float("nan")


def wrk(base: str, request: Request, duration: float, *, allow_errors: bool = False) -> Sample:
    """``wrk -t1 -c32 --latency`` on CPU 1; any non-2xx/3xx response is an error."""
    binary = apt_install("wrk", "wrk")
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            *pinned(LOAD_CPU),
            binary,
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(_lua(request, Path(tmp))),
        ]
        done = subprocess.run([*args, base + request.path], capture_output=True, text=True)
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done.returncode != 0 or not rps:
        raise BenchError(f"wrk failed: {(done.stderr or out)[-300:]}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(r"Socket errors:.*", out)
    if errors and not allow_errors:
        raise BenchError(f"{request.method} {request.path}: {errors.group(1)} non-2xx responses")
    if sockets and not allow_errors:
        raise BenchError(f"{request.method} {request.path}: {sockets.group(0)}")
    return Sample(float(rps.group(1)), _latency(out, "50"), _latency(out, "99"))


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the results table: a measurement against its baseline."""

    group: str  # e.g. "session cookie", "peers"
    scenario: str  # e.g. "session / redis"
    implementation: str  # "gatepass", "starsessions", …
    server: str  # "uvicorn", "granian", "node", …
    rps: float | None = None
    baseline_rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    baseline_p99_ms: float | None = None
    status: str = "ok"  # or "failed: …" / "skipped: …"
    note: str = ""
    runs: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.rps is None or not self.baseline_rps:
            return None
        return self.rps / self.baseline_rps


def failed(group: str, scenario: str, implementation: str, server: str, error: object) -> Row:
    text = " ".join(str(error).split())[:240]
    return Row(group, scenario, implementation, server, status=f"failed: {text}")


@dataclass
class Measure:
    """A labelled request measured against the label of its baseline (None: is one)."""

    label: str
    request: Request
    baseline: str | None = None
    row: Callable[[], Row] | None = None
    #: Another process's base URL (the honest baseline runs in its own app).
    base: str | None = None


def interleave(
    base: str,
    measures: Sequence[Measure],
    duration: float,
    rounds: int,
) -> dict[str, list[Sample]]:
    """Warm up each request, then run them in turn for ``rounds`` rounds."""
    for m in measures:
        wrk(m.base or base, m.request, 1)
    samples: dict[str, list[Sample]] = {m.label: [] for m in measures}
    for _ in range(rounds):
        for m in measures:
            samples[m.label].append(wrk(m.base or base, m.request, duration))
    return samples


def summarize(samples: list[Sample]) -> tuple[float, float, float]:
    return (
        statistics.median(s.rps for s in samples),
        statistics.median(s.p50_ms for s in samples),
        statistics.median(s.p99_ms for s in samples),
    )


def fill_row(row: Row, samples: list[Sample], baseline: list[Sample] | None) -> Row:
    row.rps, row.p50_ms, row.p99_ms = summarize(samples)
    row.runs["rps"] = [round(s.rps) for s in samples]
    if baseline:
        row.baseline_rps, _, row.baseline_p99_ms = summarize(baseline)
        row.runs["baseline_rps"] = [round(s.rps) for s in baseline]
    return row


# --------------------------------------------------------------------------- load generator


def loadgen(args: Sequence[str], timeout: float = 300) -> dict[str, Any]:
    """Run ``bench/loadgen.py`` on the load CPU; it prints one JSON object."""
    done = subprocess.run(
        [*pinned(LOAD_CPU), sys.executable, str(BENCH / "loadgen.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise BenchError(f"loadgen {' '.join(args[:1])} failed: {done.stderr.strip()[-300:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
