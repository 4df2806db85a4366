"""A real ``gatepass serve`` subprocess for token tests, and its admin CLI.

Shared by the Node ``jose`` interop tests and ``tests/server/test_tokens_e2e.py``.
Unlike ``tests/server/test_serve_e2e.serve`` a server here can be stopped and
started again on the same data dir, store and port (SECURITY 14), and every
request says exactly which credential it carries (no cookies, no CSRF).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.serving import ServeProcess

PASSWORD = "correct horse battery staple"
#: ``iss`` and ``aud`` of the access tokens: fixed, so that a restart on another
#: port would not change them either.
PUBLIC_URL = "https://auth.gatepass.test"


class GatepassServer(ServeProcess):
    def __init__(self, base: Path, **settings: str) -> None:
        super().__init__(
            base,
            never_logged=[PASSWORD],
            GATEPASS_REGISTRATION_LIMIT="0",  # many users, one address
            GATEPASS_PUBLIC_URL=PUBLIC_URL,
            **settings,
        )
        self.http = httpx.Client(base_url=self.url, timeout=15, follow_redirects=False)

    def start(self) -> GatepassServer:
        super().start()
        return self

    def close(self) -> None:
        """Stop the server and check its log for what must never be there."""
        self.stop()
        self.http.close()
        self.check_log()

    # -- admin CLI ------------------------------------------------------------

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
