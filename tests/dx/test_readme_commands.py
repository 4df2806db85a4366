"""The README's two commands: self-contained (their own virtual environment)
and the very test command CI runs, so the README cannot drift from CI."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)[:2]


def test_both_commands_make_and_use_a_virtual_environment() -> None:
    serve, test = readme_commands()
    for command in (serve, test):
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install -e ")
        # Nothing runs on the system interpreter after the venv exists (PEP 668).
        assert "python3 -m pip" not in command
    assert serve.endswith(".venv/bin/gatepass serve")
    assert test.endswith(".venv/bin/python -m pytest")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test = readme_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines
