"""A cookie-keeping HTTP "browser" and helpers to play the user at the provider.

httpx's cookie jar (http.cookiejar) never sends ``Secure`` cookies over plain
http, while Chromium does on loopback; so this keeps cookies itself, per
host:port, as a browser on 127.0.0.1/localhost would.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

TX_COOKIE = "__Host-gatepass-oauth"
SESSION_COOKIE = "__Host-gatepass"


class Browser:
    def __init__(self) -> None:
        self.jar: dict[str, dict[str, str]] = {}
        self.http = httpx.Client(follow_redirects=False, timeout=15)

    def close(self) -> None:
        self.http.close()

    def cookies(self, url: str) -> dict[str, str]:
        return self.jar.setdefault(urlsplit(url).netloc, {})

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        jar = self.cookies(url)
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if jar:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        response = self.http.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]
        for line in response.headers.get_list("set-cookie"):
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in line.lower() or not value:
                jar.pop(name, None)
            else:
                jar[name] = value
        return response

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", url, **kwargs)


def location(response: httpx.Response) -> str:
    assert response.status_code in (301, 302, 303, 307, 308), (response.status_code, response.text)
    return urljoin(str(response.request.url), response.headers["location"])


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def _form(html: str, base: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]*action="([^"]+)"', html)
    assert action, html
    inputs = dict(
        re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html)
    )
    return urljoin(base, unescape(action.group(1))), inputs


def play_user(browser: Browser, authorize_url: str, login: str, callback_prefix: str) -> str:
    """Follow the provider's redirects and fill its dev login and consent forms
    as ``login``; return the URL of the redirect back to our callback, unvisited."""
    url = authorize_url
    for _ in range(20):
        if url.startswith(callback_prefix):
            return url
        response = browser.get(url)
        if response.is_redirect:
            url = location(response)
            continue
        assert response.status_code == 200, (response.status_code, response.text[:500])
        action, fields = _form(response.text, url)
        if fields.get("prompt") == "login":
            fields.update(login=login, password="anything")
        response = browser.request("POST", action, data=fields)
        url = location(response)
    raise AssertionError("the provider never redirected back")
