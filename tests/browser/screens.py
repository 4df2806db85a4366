"""Screenshots of the pages, for docs/screenshots/.

Every browser page test takes its screenshot (so a page that cannot be
captured fails); the files under ``docs/screenshots/`` are rewritten only
with ``GATEPASS_UPDATE_SCREENSHOTS=1``, so a test run never dirties the tree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 800, "height": 640}


def shoot(page: Page, name: str) -> bytes:
    png = page.screenshot(full_page=True, type="png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000, name
    if os.environ.get("GATEPASS_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"{name}.png").write_bytes(png)
    return png
