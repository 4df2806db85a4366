"""The settings page names every setting the code has."""

from __future__ import annotations

import re
from pathlib import Path

from gatepass.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented() -> None:
    page = (ROOT / "docs" / "settings.md").read_text()
    # "GATEPASS_COOKIE_NAME`, `_SECURE`" style rows name siblings by suffix.
    named = set(re.findall(r"GATEPASS_([A-Z_]+)", page))
    for row in re.findall(r"^\|(.+?)\|", page, flags=re.M):
        first = re.search(r"GATEPASS_([A-Z]+)_", row)
        if first:
            named |= {f"{first.group(1)}{s}" for s in re.findall(r"`(_[A-Z_]+)`", row)}
    missing = [f for f in Settings.__dataclass_fields__ if f != "extra" and f.upper() not in named]
    assert missing == []
