"""SECURITY 35 and issuer checks: a provider that misbehaves on purpose.

A Python issuer (``rogue.py``) answers a real flow of ``gatepass serve``
with ID tokens that are broken one way each; every one must be refused with
400 and no session, and the server log must name the check that caught it.
The "ok" mode is the control: the same harness does sign in.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import free_port
from tests.oauth.conftest import Gatepass, gatepass
from tests.oauth.harness import SESSION_COOKIE, TX_COOKIE, Browser, location, query
from tests.oauth.rogue import CLIENT_ID, Rogue, serve_rogue


@pytest.fixture(scope="module")
def rogue() -> Iterator[Rogue]:
    with serve_rogue() as r:
        yield r


@pytest.fixture(scope="module")
def server(rogue: Rogue, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gatepass]:
    env = {
        "GATEPASS_OAUTH_PROVIDERS": "rogue,mixup,down",
        "GATEPASS_OAUTH_ROGUE_ISSUER": rogue.issuer,
        "GATEPASS_OAUTH_ROGUE_CLIENT_ID": CLIENT_ID,
        "GATEPASS_OAUTH_ROGUE_CLIENT_SECRET": "rogue-secret-rogue-secret",
        "GATEPASS_OAUTH_MIXUP_ISSUER": rogue.issuer + "/mixup",
        "GATEPASS_OAUTH_MIXUP_CLIENT_ID": CLIENT_ID,
        "GATEPASS_OAUTH_DOWN_ISSUER": f"http://127.0.0.1:{free_port()}",
        "GATEPASS_OAUTH_DOWN_CLIENT_ID": CLIENT_ID,
    }
    with gatepass(tmp_path_factory.mktemp("rogue-gatepass"), free_port(), **env) as served:
        yield served


def run_flow(server: Gatepass, rogue: Rogue, mode: str) -> httpx.Response:
    rogue.mode = mode
    browser = Browser()
    try:
        start = browser.get(f"{server.url}/auth/oauth/rogue/start")
        assert start.status_code == 302, start.text
        authorize = location(start)
        assert query(authorize)["code_challenge_method"] == "S256"
        back = location(browser.get(authorize))
        assert back.startswith(f"{server.url}/auth/oauth/rogue/callback?")
        return browser.get(back, headers={"accept": "application/json"})
    finally:
        browser.close()


def test_the_control_flow_signs_in(server: Gatepass, rogue: Rogue) -> None:
    r = run_flow(server, rogue, "ok")
    assert r.status_code == 302, r.text
    assert any(c.startswith(SESSION_COOKIE + "=") for c in r.headers.get_list("set-cookie"))
    # The token request carried the verifier whose S256 matched the challenge.
    assert len(rogue.token_requests[-1]["code_verifier"]) >= 43


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("bad_signature", "id_token_signature"),
        ("alg_none", "id_token_alg"),
        ("hs256", "id_token_alg"),
        ("unknown_kid", "id_token_unknown_kid"),
        ("wrong_aud", "id_token_aud"),
        ("multi_aud_no_azp", "id_token_azp"),
        ("expired", "id_token_expired"),
        ("wrong_iss", "id_token_iss"),
        ("wrong_nonce", "id_token_nonce"),
        ("no_nonce", "id_token_nonce"),
        ("bad_iss_param", "iss_mismatch"),
    ],
)
def test_broken_answers_are_refused(server: Gatepass, rogue: Rogue, mode: str, reason: str) -> None:
    r = run_flow(server, rogue, mode)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "oauth_failed"
    cookies = r.headers.get_list("set-cookie")
    assert not any(c.startswith(SESSION_COOKIE + "=") for c in cookies)
    assert any(c.startswith(f"{TX_COOKIE}=;") for c in cookies)
    assert f"refused: {reason}" in server.log_text()


def test_token_endpoint_outage_is_503(server: Gatepass, rogue: Rogue) -> None:
    r = run_flow(server, rogue, "token_500")
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "provider_unavailable"


def test_discovery_problems_are_reported_not_fatal(server: Gatepass) -> None:
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200  # password sign-in still works
    assert ready.json()["providers"] == {
        "rogue": "ok", "mixup": "misconfigured", "down": "unavailable",
    }  # fmt: skip
    for name in ("mixup", "down"):
        r = httpx.get(f"{server.url}/auth/oauth/{name}/start")
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "provider_unavailable"
    log = server.log_text()
    assert "OAuth provider 'mixup': discovery refused: its issuer differs" in log
    assert "OAuth provider 'down': discovery failed" in log


def test_browser_jwt_mode_issues_a_token_family(
    rogue: Rogue, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {
        "GATEPASS_BROWSER_MODE": "jwt",
        "GATEPASS_OAUTH_PROVIDERS": "rogue",
        "GATEPASS_OAUTH_ROGUE_ISSUER": rogue.issuer,
        "GATEPASS_OAUTH_ROGUE_CLIENT_ID": CLIENT_ID,
        "GATEPASS_OAUTH_ROGUE_CLIENT_SECRET": "rogue-secret-rogue-secret",
    }
    with gatepass(tmp_path_factory.mktemp("jwt-gatepass"), free_port(), **env) as served:
        r = run_flow(served, rogue, "ok")
        assert r.status_code == 302, r.text
        names = {c.split("=", 1)[0] for c in r.headers.get_list("set-cookie")}
        assert {"__Host-gatepass-at", "__Host-gatepass-rt"} <= names, names
        assert SESSION_COOKIE not in names
