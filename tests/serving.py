"""The one way tests start a real ``gatepass serve``: :class:`ServeProcess`.

A subprocess on 127.0.0.1 and a free port (or a given one), with an
environment of its own (the caller's ``GATEPASS_*`` variables dropped, a data
directory under the test's base directory), its output in a log file.
:meth:`ServeProcess.start` returns once ``/readyz`` answers 200 (every store
reachable), or fails the test with the log when the process exits or a
bounded deadline passes; :meth:`ServeProcess.stop` terminates and reaps it
(SIGKILL after 10 s). As a context manager it also checks the log for what
must never be there (a traceback, the given secrets).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from tests.conftest import free_port


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its ``GATEPASS_*``, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    env["GATEPASS_DATA_DIR"] = str(data_dir)
    env.update(settings)
    return env


class ServeProcess:
    """One ``gatepass serve`` process: start, stop, SIGKILL, its log and its CLI."""

    def __init__(
        self,
        base: Path,
        *,
        name: str = "server",
        port: int | None = None,
        log_level: str = "warning",
        command: Sequence[str] = (sys.executable, "-m", "gatepass"),
        ready: Callable[[ServeProcess], bool] | None = None,
        start_timeout: float = 40.0,
        never_logged: Sequence[str] = (),
        **settings: str,
    ) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.base = base
        self.data_dir = base / "data"
        self.log_path = base / f"{name}.log"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = server_env(self.data_dir, **settings)
        self.command = tuple(command)
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.never_logged = tuple(never_logged)
        self._ready = ready
        self.process: subprocess.Popen[bytes] | None = None

    # -- process --------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def start(self) -> ServeProcess:
        assert self.process is None, f"{self.name} is already running"
        argv = [*self.command, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", self.log_level]  # fmt: skip
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                argv, env=self.env, cwd=self.base, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                pytest.fail(f"{self.name}: gatepass serve exited with {code}:\n{self.log()}")
            if self.is_ready():
                return self
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{self.name}: gatepass serve did not become ready:\n{self.log()}")
            time.sleep(0.05)

    def is_ready(self) -> bool:
        if self._ready is not None:
            return self._ready(self)
        with suppress(httpx.TransportError):
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        return False

    def stop(self) -> None:
        """Terminate (SIGKILL if it lingers) and reap; nothing when not running."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, connections drop mid-request."""
        process, self.process = self.process, None
        assert process is not None and process.poll() is None, f"{self.name} is not running"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def signal(self, number: int) -> None:
        assert self.process is not None, f"{self.name} is not running"
        self.process.send_signal(number)

    # -- log and CLI ------------------------------------------------------------

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def check_log(self) -> None:
        """No traceback and no secret the test named in the server's output."""
        text = self.log()
        assert "Traceback" not in text, text
        for secret in self.never_logged:
            assert secret not in text, f"{self.name}: a secret appeared in the log"

    def cli(
        self, *args: str, stdin: str = "", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``gatepass <args>`` with the server's environment."""
        done = subprocess.run(
            [*self.command, *args],
            input=stdin, capture_output=True, text=True, env=self.env, cwd=self.base, timeout=60,
        )  # fmt: skip
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if kind is None:
            self.check_log()
