"""What the browser tests do from inside a page, as a single-page app would."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page


def api(page: Page, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A same-origin fetch from the page, with the CSRF header (as an SPA would):
    the status and the JSON answer (or the text, when it is not JSON)."""
    result: dict[str, Any] = page.evaluate(
        """async ([method, path, body]) => {
            const t = (await (await fetch('/auth/csrf')).json()).csrf_token;
            const init = {method, headers: {'x-csrf-token': t}};
            if (body !== null) {
                init.headers['content-type'] = 'application/json';
                init.body = JSON.stringify(body);
            }
            const r = await fetch(path, init);
            return {status: r.status, text: await r.text()};
        }""",
        [method, path, body],
    )
    text = result["text"]
    return result["status"], json.loads(text) if text.startswith("{") else text
