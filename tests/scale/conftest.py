"""Real ``gatepass serve`` processes for the scale-out, fault and soak tests.

Every server, Redis and PostgreSQL here is a real process bound to 127.0.0.1 on
a free port and stopped by the test (or fixture) that started it.  Clients
carry no cookie jar: each request says exactly which cookie or Bearer token it
sends, so a request to instance B proves that B (not a jar) accepted it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx

# The throw-away PostgreSQL cluster of the outage tests, for the fault tests.
from tests.server.test_outage import PostgresServer, private_postgres  # noqa: F401
from tests.serving import ServeProcess

PASSWORD = "correct horse battery staple"
COOKIE = "__Host-gatepass"
CSRF_COOKIE = "__Host-gatepass-csrf"
#: iss/aud of every token: the one origin users see behind the load balancer.
PUBLIC_URL = "https://auth.gatepass.test"


def rss_kib(pid: int) -> int:
    """The resident set size of a process, from /proc (kB as the kernel says)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class Instance(ServeProcess):
    """One ``gatepass serve`` process: start, stop, SIGKILL; a cookie-less client."""

    def __init__(self, name: str, base: Path, env: dict[str, str]) -> None:
        super().__init__(base, name=name)
        self.env = env
        self.http = httpx.Client(base_url=self.url, timeout=20, follow_redirects=False)

    def start(self) -> Instance:
        super().start()
        return self

    # -- requests ---------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        session: str | None = None,
        bearer: str | None = None,
        json: object = None,
        csrf: bool | None = None,
    ) -> httpx.Response:
        """A request with only the given credential.  State-changing cookie
        requests (and anonymous logins) first fetch a CSRF token from this same
        instance, as an SPA would, and echo it (header and cookie)."""
        cookies: list[str] = []
        headers: dict[str, str] = {}
        if session is not None:
            cookies.append(f"{COOKIE}={session}")
        if bearer is not None:
            headers["authorization"] = f"Bearer {bearer}"
        if csrf is None:
            csrf = method not in ("GET", "HEAD") and bearer is None
        if csrf:
            fetched = self.request("GET", "/auth/csrf", session=session, csrf=False)
            if fetched.status_code != 200:
                return fetched  # e.g. a store outage: the caller sees it
            token = fetched.json()["csrf_token"]
            headers["x-csrf-token"] = token
            cookies.append(f"{CSRF_COOKIE}={token}")
        if cookies:
            headers["cookie"] = "; ".join(cookies)
        self.http.cookies.clear()
        response = self.http.request(method, path, headers=headers, json=json)
        self.http.cookies.clear()
        return response

    def register(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return self.request("POST", "/auth/register", json={"email": email, "password": password})

    def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return self.request("POST", "/auth/login", json={"email": email, "password": password})

    def me(self, *, session: str | None = None, bearer: str | None = None) -> httpx.Response:
        return self.request("GET", "/auth/me", session=session, bearer=bearer)

    def token(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return self.request("POST", "/auth/token", json={"email": email, "password": password})

    def refresh(self, refresh_token: str) -> httpx.Response:
        return self.request("POST", "/auth/refresh", json={"refresh_token": refresh_token})


def session_of(response: httpx.Response) -> str:
    """The session id a login response set."""
    assert response.status_code == 200, (response.status_code, response.text)
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(COOKIE + "="):
            return value.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no session cookie in {response.headers.get_list('set-cookie')}")


def shared_env(base: Path, **settings: str) -> dict[str, str]:
    """What instances behind one load balancer share: data dir (keys), secret,
    public URL, and the given store URLs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    env["GATEPASS_DATA_DIR"] = str(base / "data")
    env["GATEPASS_REGISTRATION_LIMIT"] = "0"  # many users, one address
    env["GATEPASS_PUBLIC_URL"] = PUBLIC_URL
    env["GATEPASS_SECRET_KEY"] = secrets.token_urlsafe(48)
    env.update(settings)
    return env


@contextlib.contextmanager
def cluster(base: Path, names: tuple[str, ...], **settings: str) -> Iterator[list[Instance]]:
    """Start one instance per name, one after the other (the first creates the
    shared key file), all on the same settings; stop them all on exit and check
    their logs for tracebacks and passwords."""
    base.mkdir(parents=True, exist_ok=True)
    env = shared_env(base, **settings)
    instances = [Instance(name, base, env) for name in names]
    try:
        for instance in instances:
            instance.start()
        yield instances
    finally:
        for instance in instances:
            instance.stop()
            instance.http.close()
    for instance in instances:
        assert_clean_log(instance)


#: asyncpg's pool logs a traceback each time it fails to reconnect its minimum
#: number of connections while PostgreSQL is down: noise, not a failed request.
_POOL_FLOOR = "Failed to restore the pool connection floor; retrying"


def assert_clean_log(instance: Instance) -> None:
    text = instance.log()
    assert "Exception in ASGI application" not in text, f"{instance.name}:\n{text}"
    tracebacks = text.count("Traceback (most recent call last)")
    assert tracebacks <= text.count(_POOL_FLOOR), f"{instance.name}:\n{text}"
    assert PASSWORD not in text, f"{instance.name} logged a password"


def unique_redis_url(url: str) -> str:
    return f"{url}?prefix=gpscale:{secrets.token_hex(6)}:"
