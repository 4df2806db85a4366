"""A real OpenID Provider (npm ``oidc-provider`` v9) and ``gatepass serve``.

The provider is installed with npm into ``tests/oauth/.node/`` (ignored by
git) on first use.  Locally these tests skip with the reason when Node or
npm is missing or the install fails; with ``CI=true`` that is a failure.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI, free_port

NODE_DIR = Path(os.environ.get("GATEPASS_TEST_OAUTH_NODE_DIR", Path(__file__).parent / ".node"))
PACKAGES = {"oidc-provider": 9, "jose": 6}
CLIENT_SECRET = "a-test-client-secret-of-some-length-0123456789"
#: Names under which gatepass servers register the provider; every one gets
#: a redirect URI at the OP for every port of the pool.
PROVIDER_NAMES = ("node", "nodepub", "nodetrust")
PORT_POOL = 8


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the OpenID provider tests must run, not skip)")
    pytest.skip(reason)


def _installed(name: str) -> int | None:
    try:
        meta = json.loads((NODE_DIR / "node_modules" / name / "package.json").read_text())
        return int(str(meta["version"]).split(".")[0])
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="session")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed to run the oidc-provider tests")
    assert node is not None and npm is not None
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    (NODE_DIR / "package.json").write_text('{"type": "module", "private": true}\n')
    if any(_installed(n) != major for n, major in PACKAGES.items()):
        specs = [f"{n}@{major}" for n, major in PACKAGES.items()]
        try:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-save", *specs],
                capture_output=True, text=True, cwd=NODE_DIR, timeout=180,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            _unavailable("npm install oidc-provider timed out")
        else:
            if done.returncode != 0 or any(_installed(n) != m for n, m in PACKAGES.items()):
                _unavailable(f"npm install {specs} failed:\n{done.stdout}\n{done.stderr}")
    # ESM resolves packages from the script's folder: the script lives beside them.
    shutil.copy(Path(__file__).parent / "provider.mjs", NODE_DIR / "provider.mjs")
    return node


@dataclass
class OpenIDProvider:
    issuer: str
    ports: list[int]
    log: Path
    _free: list[int] = field(default_factory=list)

    def take_port(self) -> int:
        """A port whose callback URLs are registered at the provider."""
        return self._free.pop()


def wait_until(url: str, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not come up:\n{log.read_text()}")
        time.sleep(0.05)


@contextmanager
def running(
    cmd: list[str], env: dict[str, str] | None, cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def op(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIDProvider]:
    port = free_port()
    # On "localhost": a different site from gatepass on 127.0.0.1, as a real
    # provider would be (the browser test depends on it).
    issuer = f"http://localhost:{port}"
    ports = [free_port() for _ in range(PORT_POOL)]
    uris = [
        f"http://127.0.0.1:{q}/auth/oauth/{name}/callback" for q in ports for name in PROVIDER_NAMES
    ]
    clients = [
        {"client_id": "confidential", "client_secret": CLIENT_SECRET, "redirect_uris": uris,
         "token_endpoint_auth_method": "client_secret_basic"},
        {"client_id": "public", "redirect_uris": uris, "token_endpoint_auth_method": "none"},
    ]  # fmt: skip
    config = json.dumps({"issuer": issuer, "port": port, "clients": clients})
    log = tmp_path_factory.mktemp("op") / "op.log"
    with running([node, "provider.mjs", config], None, NODE_DIR, log) as proc:
        wait_until(
            f"http://127.0.0.1:{port}/.well-known/openid-configuration", "oidc-provider", proc, log
        )
        yield OpenIDProvider(issuer, ports, log, _free=list(ports))


@dataclass
class Gatepass:
    url: str
    log: Path
    env: dict[str, str]

    def log_text(self) -> str:
        return self.log.read_text()


@contextmanager
def gatepass(tmp: Path, port: int, **settings: str) -> Iterator[Gatepass]:
    """``gatepass serve`` on 127.0.0.1:port with ``GATEPASS_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    url = f"http://127.0.0.1:{port}"
    env.update(GATEPASS_DATA_DIR=str(tmp / "data"), GATEPASS_PUBLIC_URL=url, **settings)
    log = tmp / "server.log"
    cmd = [sys.executable, "-m", "gatepass", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "info"]  # fmt: skip
    with running(cmd, env, tmp, log) as proc:
        wait_until(f"{url}/healthz", "gatepass serve", proc, log)
        yield Gatepass(url, log, env)
    text = log.read_text()
    assert "Traceback" not in text, text


def node_provider_env(op: OpenIDProvider) -> dict[str, str]:
    return {
        "GATEPASS_OAUTH_PROVIDERS": "node,nodepub,nodetrust",
        "GATEPASS_OAUTH_NODE_ISSUER": op.issuer,
        "GATEPASS_OAUTH_NODE_CLIENT_ID": "confidential",
        "GATEPASS_OAUTH_NODE_CLIENT_SECRET": CLIENT_SECRET,
        "GATEPASS_OAUTH_NODE_TITLE": "Node OP",
        "GATEPASS_OAUTH_NODEPUB_ISSUER": op.issuer,
        "GATEPASS_OAUTH_NODEPUB_CLIENT_ID": "public",
        "GATEPASS_OAUTH_NODETRUST_ISSUER": op.issuer,
        "GATEPASS_OAUTH_NODETRUST_CLIENT_ID": "confidential",
        "GATEPASS_OAUTH_NODETRUST_CLIENT_SECRET": CLIENT_SECRET,
        "GATEPASS_OAUTH_NODETRUST_TRUST_EMAIL": "true",
    }


@pytest.fixture(scope="module")
def server(op: OpenIDProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gatepass]:
    tmp = tmp_path_factory.mktemp("gatepass")
    with gatepass(tmp, op.take_port(), **node_provider_env(op)) as served:
        yield served


@pytest.fixture(autouse=True)
def quiet_test_client() -> Iterator[None]:
    """The tests' own HTTP client logs every URL it visits, and the protocol
    puts the code and state in the callback URL: that is the test playing
    the browser, not gatepass logging.  gatepass's own output (``server.log``)
    is what must stay clean, and the tests check it."""
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)
