"""npm ``jose`` v6, installed once into ``tests/interop/.node/`` (ignored by git).

Locally the interop tests skip with the reason when Node or npm is missing or
the install fails; under CI (``CI=true``) that is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI

NODE_DIR = Path(os.environ.get("GATEPASS_TEST_NODE_DIR", Path(__file__).parent / ".node"))
JOSE_SPEC = "jose@6"

#: Verifies one token against a remote JWKS exactly as a Node resource server
#: would, and prints one JSON line: the verified payload and header, or the
#: error's code.  argv: jwksUrl token issuer audience algorithms(comma-separated)
#: at (the Unix time to check ``exp``/``nbf`` against: jose's ``currentDate``).
VERIFY_SCRIPT = """\
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, token, issuer, audience, algorithms, at] = process.argv.slice(2);
const JWKS = createRemoteJWKSet(new URL(jwksUrl));
try {
  const { payload, protectedHeader } = await jwtVerify(token, JWKS, {
    issuer, audience, typ: 'at+jwt', algorithms: algorithms.split(','),
    currentDate: new Date(Number(at) * 1000),
  });
  console.log(JSON.stringify({ ok: true, payload, protectedHeader }));
} catch (err) {
  const { code = null, name, message } = err;
  console.log(JSON.stringify({ ok: false, code, name, message }));
}
"""


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the Node interop tests must run, not skip)")
    pytest.skip(reason)


def _installed_major() -> int | None:
    try:
        meta = json.loads((NODE_DIR / "node_modules" / "jose" / "package.json").read_text())
        return int(str(meta["version"]).split(".")[0])
    except (OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class NodeJose:
    node: str
    directory: Path

    def verify(
        self,
        jwks_url: str,
        token: str,
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        at: float,
    ) -> dict[str, object]:
        """Verify as a Node resource server would at Unix time ``at`` (the
        clock its ``exp`` check uses; signature, key and claims as always)."""
        done = subprocess.run(
            [self.node, str(self.directory / "verify.mjs"), jwks_url, token, issuer, audience,
             ",".join(algorithms), str(at)],
            capture_output=True, text=True, cwd=self.directory, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


@pytest.fixture(scope="session")
def node_jose() -> NodeJose:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed for the npm jose interop tests")
    assert node is not None and npm is not None
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    (NODE_DIR / "package.json").write_text('{"type": "module", "private": true}\n')
    if _installed_major() != 6:
        try:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-save", JOSE_SPEC],
                capture_output=True, text=True, cwd=NODE_DIR, timeout=180,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            _unavailable(f"npm install {JOSE_SPEC} timed out")
        else:
            if done.returncode != 0 or _installed_major() != 6:
                _unavailable(f"npm install {JOSE_SPEC} failed:\n{done.stdout}\n{done.stderr}")
    (NODE_DIR / "verify.mjs").write_text(VERIFY_SCRIPT)
    return NodeJose(node, NODE_DIR)
