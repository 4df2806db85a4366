"""The documented Traefik and rules snippets hold up; ``gatepass serve``
refuses bad rules and TLS files before it listens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gatepass.forward_auth import parse_rules
from gatepass.forward_auth.headers import IDENTITY_HEADERS
from tests.forward_auth.harness import make_certificate, snippet


def test_the_documented_rules_parse_and_mean_what_the_docs_say() -> None:
    rules = parse_rules(snippet("rules"), "docs")
    assert [r.policy for r in rules.rules] == ["public", "deny", "signed_in", "mfa"]
    assert rules.match("app1.example.test", "/public/x", "GET") is rules.rules[0]
    assert rules.match("app1.example.test", "/privateer", "GET") is None


def test_the_traefik_snippet_asks_gatepass_what_it_answers() -> None:
    """Traefik is not packaged here: its snippet is checked against what
    gatepass expects and sends (the Caddy tests exercise the same
    X-Forwarded-* protocol that Traefik speaks)."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(snippet("traefik", "documented"))
    middleware = config["http"]["middlewares"]["gatepass"]["forwardAuth"]
    assert middleware["address"].endswith("/auth/verify?redirect=1")
    assert middleware["address"].startswith("https://")
    assert {h.lower() for h in middleware["authResponseHeaders"]} == set(IDENTITY_HEADERS)
    assert not middleware.get("trustForwardHeader", False)
    router = config["http"]["routers"]["app"]
    assert router["middlewares"] == ["gatepass"]
    assert router["service"] in config["http"]["services"]


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/bin:/bin", "GATEPASS_DATA_DIR": str(tmp_path / "data"), **env}
    return subprocess.run(
        [sys.executable, "-m", "gatepass", "serve", "--port", "1"], capture_output=True,
        text=True, env=environ, cwd=tmp_path, timeout=60,
    )  # fmt: skip


def test_serve_refuses_a_bad_rules_file_with_its_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\npolicy = "public"\n\n[[rules]]\npolicy = "everyone"\n')
    done = serve(tmp_path, GATEPASS_ACCESS_RULES=str(rules))
    assert done.returncode == 1
    assert "line 4" in done.stderr and "policy must be" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_key_that_is_not_the_certificates(tmp_path: Path) -> None:
    one, other = make_certificate(tmp_path / "one"), make_certificate(tmp_path / "two")
    done = serve(tmp_path, GATEPASS_TLS_CERT=str(one.cert), GATEPASS_TLS_KEY=str(other.key))
    assert done.returncode == 1
    assert "GATEPASS_TLS_CERT/GATEPASS_TLS_KEY cannot be used" in done.stderr
    assert "PRIVATE KEY" not in done.stderr and "Traceback" not in done.stderr
    done = serve(tmp_path, GATEPASS_TLS_CERT=str(one.cert))
    assert done.returncode == 1 and "go together" in done.stderr


@pytest.fixture(autouse=True)
def _dirs(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
