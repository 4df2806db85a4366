"""``gatepass serve --workers N``: N server processes, each with its own socket.

uvicorn's own ``--workers`` shares one listening socket between its workers,
and a busy worker wins the accept races: a client that opens its keep-alive
connections at once (a proxy's pool, wrk) can end up with all of them on one
worker.  Here each worker binds its own socket to the same port with
``SO_REUSEPORT``, so the kernel spreads new connections over the workers.

The supervisor (this process) starts the workers, starts again one that
dies, forwards ``SIGHUP`` (access rules reload) and stops them all on
``SIGINT``/``SIGTERM``.  A worker that keeps dying at start-up (the port is
taken, a bad setting) stops the whole server with exit status 1 instead of
a restart loop.  Every worker builds the app from the ``GATEPASS_*``
environment; their caches stay exact across them through the stores'
change signals.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from typing import Any

#: A worker that dies within this many seconds of starting counts as a
#: failed start; this many failed starts in a row stop the server.
EARLY_DEATH_SECONDS = 10.0
MAX_FAILED_STARTS = 3


def _listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    return sock


def _serve(options: dict[str, Any]) -> None:
    """One worker: its own socket on the shared port, the app from the environment."""
    import uvicorn

    sock = _listening_socket(options["host"], options["port"])
    config = uvicorn.Config("gatepass.server.app:create_app", factory=True, **options)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(count: int, options: dict[str, Any]) -> int:
    """Run ``count`` workers until SIGINT/SIGTERM; the exit status."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    def reload(signum: int, frame: object) -> None:
        for process, _ in workers:
            if process.is_alive():
                _signal(process, signal.SIGHUP)

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(target=_serve, args=(options,), name="gatepass-worker")
        process.start()
        return process, time.monotonic()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, reload)
    workers = [start() for _ in range(count)]
    failed_starts = 0
    status = 0
    while not stopping:
        time.sleep(0.2)
        for i, (process, started) in enumerate(workers):
            if stopping or process.is_alive():
                continue
            early = time.monotonic() - started < EARLY_DEATH_SECONDS
            failed_starts = failed_starts + 1 if early else 0
            if failed_starts >= MAX_FAILED_STARTS:
                print(
                    f"gatepass: workers keep failing at start-up (exit status "
                    f"{process.exitcode}); stopping. Their errors are above.",
                    file=sys.stderr,
                )
                stopping = True
                status = 1
                break
            workers[i] = start()
    for process, _ in workers:
        if process.is_alive():
            _signal(process, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for process, _ in workers:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    return status


def _signal(process: BaseProcess, signum: int) -> None:
    if process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)
