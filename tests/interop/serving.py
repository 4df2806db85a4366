"""A real ``gatepass serve`` subprocess for token tests, and its admin CLI.

Shared by the Node ``jose`` interop tests and ``tests/server/test_tokens_e2e.py``.
Unlike ``tests/server/test_serve_e2e.serve`` a server here can be stopped and
started again on the same data dir, store and port (SECURITY 14), and every
request says exactly which credential it carries (no cookies, no CSRF).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

PASSWORD = "correct horse battery staple"
#: ``iss`` and ``aud`` of the access tokens: fixed, so that a restart on another
#: port would not change them either.
PUBLIC_URL = "https://auth.gatepass.test"


class GatepassServer:
    def __init__(self, base: Path, **settings: str) -> None:
        self.base = base
        self.data_dir = base / "data"
        self.log_path = base / "server.log"
        base.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
        self.env["GATEPASS_DATA_DIR"] = str(self.data_dir)
        self.env["GATEPASS_REGISTRATION_LIMIT"] = "0"  # many users, one address
        self.env["GATEPASS_PUBLIC_URL"] = PUBLIC_URL
        self.env.update(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=15, follow_redirects=False)

    # -- process ------------------------------------------------------------

    def start(self) -> GatepassServer:
        assert self.process is None, "already running"
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gatepass", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning"],
                env=self.env, cwd=self.base, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                pytest.fail(f"gatepass serve exited with {code}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"gatepass serve did not become healthy:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        """Stop the server and check its log for what must never be there."""
        self.stop()
        self.http.close()
        text = self.log()
        assert "Traceback" not in text, text
        assert PASSWORD not in text

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- admin CLI ------------------------------------------------------------

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "gatepass", *args],
            input=stdin, capture_output=True, text=True, env=self.env, cwd=self.base, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def add_user(self, email: str, password: str = PASSWORD) -> None:
        self.cli("users", "add", email, "--password-stdin", stdin=password + "\n")

    # -- token API ------------------------------------------------------------

    def token(self, email: str, password: str = PASSWORD) -> dict[str, object]:
        r = self.http.post("/auth/token", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        assert body["token_type"] == "Bearer"
        assert isinstance(body["access_token"], str) and isinstance(body["refresh_token"], str)
        assert r.headers["cache-control"] == "no-store"
        return body

    def refresh(self, refresh_token: object) -> httpx.Response:
        return self.http.post("/auth/refresh", json={"refresh_token": refresh_token})

    def me(self, access_token: object) -> httpx.Response:
        return self.http.get("/auth/me", headers={"authorization": f"Bearer {access_token}"})

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        r = self.http.get("/.well-known/jwks.json")
        assert r.status_code == 200, r.text
        keys: dict[str, list[dict[str, str]]] = r.json()
        return keys

    def jwks_kids(self) -> set[str]:
        return {k["kid"] for k in self.jwks()["keys"]}

    def wait_for_jwks(self, predicate: object, timeout: float = 15) -> set[str]:
        """Poll the JWKS until ``predicate(kids)`` holds (key reloads are by mtime, ~5 s)."""
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while True:
            kids = self.jwks_kids()
            if predicate(kids):
                return kids
            if time.monotonic() > deadline:
                pytest.fail(f"JWKS never reached the expected state; kids now {kids}")
            time.sleep(0.25)
