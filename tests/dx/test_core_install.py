"""``pip install gatepass`` without extras, in a fresh virtual environment:
it imports, serves the SQLite default, and names the extra a setting needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.serving import ServeProcess

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("redis", "asyncpg", "authlib", "httpx", "joserfc", "litestar", "fastapi")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("core") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # A real install of the project (not editable, not --no-deps); pip's
    # cache and the machine's wheel mirror make it quick.
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)],
        check=True, timeout=900, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return venv


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    env.pop("PYTHONPATH", None)
    return {**env, "GATEPASS_DATA_DIR": str(data_dir), **extra}


def test_the_core_install_has_no_optional_driver(core_venv: Path, tmp_path: Path) -> None:
    python = str(core_venv / "bin" / "python")
    probe = "import importlib.util as u, sys; print(*[m for m in sys.argv[1:] if u.find_spec(m)])"
    found = subprocess.run([python, "-c", probe, *OPTIONAL], capture_output=True, text=True,
                           check=True, cwd=tmp_path)  # fmt: skip
    assert found.stdout.strip() == ""
    imported = subprocess.run(
        [python, "-c", "import gatepass; print(gatepass.__version__, gatepass.install)"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    from gatepass import __version__

    assert imported.stdout.startswith(__version__)


def test_the_core_install_serves_the_sqlite_default(core_venv: Path, tmp_path: Path) -> None:
    server = ServeProcess(tmp_path, command=[str(core_venv / "bin" / "gatepass")], start_timeout=60)
    server.env.pop("PYTHONPATH", None)  # only what the core install brings
    with server:
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
        assert (server.data_dir / "gatepass.db").exists()


def test_a_provider_without_the_oauth_extra_names_it(core_venv: Path, tmp_path: Path) -> None:
    env = _env(
        tmp_path / "data",
        GATEPASS_OAUTH_PROVIDERS="google",
        GATEPASS_OAUTH_GOOGLE_KIND="google",
        GATEPASS_OAUTH_GOOGLE_CLIENT_ID="1234.apps.googleusercontent.com",
        GATEPASS_OAUTH_GOOGLE_CLIENT_SECRET="not-a-real-secret",
    )
    result = subprocess.run(
        [str(core_venv / "bin" / "gatepass"), "serve", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "pip install 'gatepass[oauth]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "not-a-real-secret" not in result.stderr


def test_a_redis_url_without_the_extra_names_it(core_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    env = _env(tmp_path / "data", GATEPASS_SESSION_STORE_URL="redis://:s3cret@127.0.0.1:6379/0")
    result = subprocess.run(
        [str(core_venv / "bin" / "gatepass"), "users", "list"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "gatepass[redis]" in result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
