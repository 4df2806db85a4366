"""The CLI's first minutes: --version, serve --help, no hidden data directory,
no traceback without a terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gatepass
from gatepass.server.settings import Settings
from tests.server.test_cli import (
    EMAIL,
    PASSWORD,
    USING,
    add_user,
    assert_clean_failure,
    cli_env,
    run_cli,
)


def test_version(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"gatepass {gatepass.__version__}"


def test_serve_help_lists_every_setting(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "serve", "--help")
    assert result.returncode == 0
    assert "Run the auth server" in result.stdout
    for name in Settings.__dataclass_fields__:
        if name != "extra":
            assert f"GATEPASS_{name.upper()}" in result.stdout, name
    assert not (tmp_path / "data").exists()


def test_read_only_commands_create_no_data_directory(tmp_path: Path) -> None:
    missing = tmp_path / ".gatepass"  # run from tmp_path, as from the wrong directory
    for args in (["users", "list"], ["sessions", "list", EMAIL], ["keys", "list"]):
        result = run_cli(missing, *args, env=cli_env(missing))
        assert_clean_failure(result, "No data directory", str(missing))
        assert not missing.exists()


def test_every_command_names_its_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = run_cli(data_dir, "users", "add", EMAIL, "--password-stdin", stdin=PASSWORD)
    assert created.returncode == 0, created.stderr
    assert f"{USING}{data_dir.resolve()}" in created.stderr.splitlines()
    listed = run_cli(data_dir, "users", "list")
    assert f"{USING}{data_dir.resolve()}" in listed.stderr.splitlines()
    assert EMAIL in listed.stdout


def test_set_password_without_a_terminal_is_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    add_user(data_dir)
    # stdin is a pipe, not a terminal, and --password-stdin is not given.
    result = run_cli(data_dir, "users", "set-password", EMAIL, stdin="")
    assert_clean_failure(result, "--password-stdin")
    assert "EOFError" not in result.stderr
    # Same with no stdin at all.
    closed = subprocess.run(
        [sys.executable, "-m", "gatepass", "users", "set-password", EMAIL],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=cli_env(data_dir),
    )  # fmt: skip
    assert_clean_failure(closed, "--password-stdin")
