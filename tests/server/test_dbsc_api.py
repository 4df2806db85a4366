"""Device-bound sessions (W3C DBSC) at the API level (SPEC "Device-bound
sessions", SECURITY 47).

A Python client plays the browser (keys from ``cryptography``, proofs signed
by hand in tests/server/dbsc_helpers.py) and then attacks: copied cookies
without the bound cookie, forged and stale bound cookies, wrong keys, wrong
and replayed challenges, ``alg`` tricks, garbled headers, another user's
challenge.  Both browser modes; the real Chromium flow is in
tests/browser/test_dbsc_chromium.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gatepass.dbsc import BoundCookies
from gatepass.server.components import Components
from tests.conftest import RedisServer
from tests.server.conftest import PASSWORD, make_client, register
from tests.server.dbsc_helpers import (
    BOUND,
    REFRESH,
    REGISTER,
    DeviceKey,
    b64,
    b64json,
    challenge_of,
    offer_of,
)

SESSION = "__Host-gatepass"
ACCESS = "__Host-gatepass-at"
REFRESH_COOKIE = "__Host-gatepass-rt"
DBSC = {"public_url": "https://testserver", "device_bound_sessions": "on"}


def dbsc_client(tmp_path: Path, **overrides: Any) -> TestClient:
    return make_client(tmp_path, **{**DBSC, **overrides})


@pytest.fixture(params=["session", "jwt"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    with dbsc_client(tmp_path, browser_mode=request.param) as c:
        register(c)
        yield c


def mode(client: TestClient) -> str:
    return parts_of(client).settings.browser_mode


def parts_of(client: TestClient) -> Components:
    parts: Components = client.app.state.gatepass.components  # type: ignore[attr-defined]
    return parts


def fresh_login(client: TestClient, email: str = "ada@example.com") -> httpx.Response:
    client.cookies = httpx.Cookies()
    r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r


def credentials(client: TestClient) -> dict[str, str]:
    """The login's long-lived cookies (what a cookie thief copies)."""
    names = (ACCESS, REFRESH_COOKIE) if mode(client) == "jwt" else (SESSION,)
    return {n: client.cookies[n] for n in names}


def as_cookies(client: TestClient, cookies: dict[str, str], path: str = "/auth/me") -> int:
    """Status of a GET with exactly these cookies (the jar set aside)."""
    saved = client.cookies
    client.cookies = httpx.Cookies()
    try:
        header = "; ".join(f"{k}={v}" for k, v in cookies.items())
        return client.get(path, headers={"cookie": header}).status_code
    finally:
        client.cookies = saved


def bind(client: TestClient, key: DeviceKey | None = None) -> tuple[DeviceKey, str]:
    """Sign in and register a key; returns it and the DBSC session id."""
    key = key or DeviceKey()
    offer = offer_of(fresh_login(client))
    r = key.register(client, offer)
    assert r.status_code == 200, r.text
    return key, r.json()["session_identifier"]


def secret_of(tmp_path: Path) -> bytes:
    return (tmp_path / "data" / "secret.key").read_bytes().strip()


# -- settings ------------------------------------------------------------------


def test_on_needs_https(tmp_path: Path) -> None:
    from gatepass.errors import ConfigurationError
    from gatepass.server.settings import Settings

    with pytest.raises(ConfigurationError, match="https"):
        Settings(data_dir=tmp_path, device_bound_sessions="on", public_url="http://127.0.0.1:8000")
    with pytest.raises(ConfigurationError, match="on"):
        Settings(data_dir=tmp_path, device_bound_sessions="yes", public_url="https://a.test")
    with pytest.raises(ConfigurationError, match="DBSC_COOKIE_TTL"):
        Settings(data_dir=tmp_path, **DBSC, dbsc_cookie_ttl=60)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="COOKIE_SECURE"):
        Settings(data_dir=tmp_path, **DBSC, cookie_secure=False)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="COOKIE_DOMAIN"):
        Settings(data_dir=tmp_path, **{**DBSC, "public_url": "https://a.example.test"},
                 cookie_domain="example.test")  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(ConfigurationError, match="REQUIRED_ROLES"):
        Settings(data_dir=tmp_path, dbsc_required_roles=("admin",))
    env = {
        "GATEPASS_DEVICE_BOUND_SESSIONS": "on",
        "GATEPASS_PUBLIC_URL": "https://a.test",
        "GATEPASS_DBSC_COOKIE_TTL": "900",
        "GATEPASS_DBSC_REQUIRED_ROLES": "admin, ops",
    }
    settings = Settings.load(environ={**env, "GATEPASS_DATA_DIR": str(tmp_path)})
    assert settings.dbsc and settings.dbsc_cookie_ttl == 900
    assert settings.dbsc_required_roles == ("admin", "ops")


def test_off_means_no_offer_and_no_endpoints(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        register(client)
        r = fresh_login(client)
        assert "secure-session-registration" not in r.headers
        assert client.post(REGISTER).status_code == 404
        assert client.post(REFRESH).status_code == 404


# -- registration and enforcement ------------------------------------------------


def test_sign_in_offers_a_fresh_challenge_each_time(client: TestClient) -> None:
    first, second = offer_of(fresh_login(client)), offer_of(fresh_login(client))
    assert first.path == REGISTER
    assert first.challenge != second.challenge
    assert first.authorization != second.authorization


def test_registration_binds_the_login(client: TestClient) -> None:
    key = DeviceKey()
    offer = offer_of(fresh_login(client))
    # Unbound: the login works alone, as for any browser without DBSC.
    stolen_before = credentials(client)
    assert as_cookies(client, stolen_before) == 200
    r = key.register(client, offer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refresh_url"] == REFRESH
    assert body["scope"]["origin"] == "https://testserver"
    assert body["scope"]["include_site"] is False
    assert body["credentials"] == [{
        "type": "cookie", "name": BOUND, "attributes": "Path=/; Secure; HttpOnly; SameSite=Lax",
    }]  # fmt: skip
    assert r.headers["cache-control"] == "no-store"
    assert BOUND in client.cookies
    # The browser, with the bound cookie: fine.
    assert client.get("/auth/me").status_code == 200
    sessions = client.get("/auth/sessions").json()
    [current] = [s for s in sessions if s["current"]]
    assert current["device_bound"] is True
    # The long-lived cookies alone: refused (anonymous), in both modes.
    assert as_cookies(client, credentials(client)) == 401
    # The token or session cookie copied before the binding is dead too.
    assert as_cookies(client, stolen_before) == 401
    # With the bound cookie: fine again (positive control).
    assert as_cookies(client, {**credentials(client), BOUND: client.cookies[BOUND]}) == 200


def test_unbound_logins_show_device_bound_false(client: TestClient) -> None:
    fresh_login(client)
    [login] = client.get("/auth/sessions").json()
    assert login["device_bound"] is False


def test_forged_stale_and_foreign_bound_cookies_are_refused(
    client: TestClient, tmp_path: Path
) -> None:
    _key, sid = bind(client)
    stolen = credentials(client)
    real = client.cookies[BOUND]
    expires, mac = real.split(".")
    bad_mac = b64(bytes(32))
    # A fresh expiry with the old MAC, a made-up MAC, garbage: all refused.
    for forged in (f"{int(expires) + 60}.{mac}", f"{expires}.{bad_mac}", "x", f"{expires}.{mac}x"):
        assert as_cookies(client, {**stolen, BOUND: forged}) == 401, forged
    secret = secret_of(tmp_path)
    # Minted with the real secret: accepted while live, refused once expired.
    assert as_cookies(client, {**stolen, BOUND: BoundCookies([secret]).value(sid)}) == 200
    stale = BoundCookies([secret], clock=lambda: time.time() - 3600).value(sid)
    assert as_cookies(client, {**stolen, BOUND: stale}) == 401
    # Another login's valid bound cookie does not bind this one.
    assert as_cookies(client, {**stolen, BOUND: BoundCookies([secret]).value("A" * 22)}) == 401
    # The same MAC under another server secret: refused.
    other = BoundCookies([b"another secret of at least 32 bytes!"]).value(sid)
    assert as_cookies(client, {**stolen, BOUND: other}) == 401


def test_the_bound_cookie_of_my_other_login_does_not_unlock_a_stolen_one(
    client: TestClient,
) -> None:
    bind(client)
    victim = credentials(client)
    bind(client)  # the thief's own login (same account, his own device)
    assert as_cookies(client, {**victim, BOUND: client.cookies[BOUND]}) == 401


def test_forward_auth_enforces_the_binding(client: TestClient) -> None:
    bind(client)
    cookies = {**credentials(client), BOUND: client.cookies[BOUND]}
    assert as_cookies(client, cookies, "/auth/verify") == 200
    cookies.pop(BOUND)
    assert as_cookies(client, cookies, "/auth/verify") == 401


def test_bound_jwt_access_token_as_bearer_is_refused(tmp_path: Path) -> None:
    with dbsc_client(tmp_path, browser_mode="jwt") as client:
        register(client)
        bind(client)
        token = client.cookies[ACCESS]
        saved, client.cookies = client.cookies, httpx.Cookies()
        r = client.get("/auth/me", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"
        r = client.get(
            "/auth/me",
            headers={"authorization": f"Bearer {token}", "cookie": f"{BOUND}={saved[BOUND]}"},
        )
        assert r.status_code == 200


def test_bound_jwt_refresh_needs_the_bound_cookie(tmp_path: Path) -> None:
    with dbsc_client(tmp_path, browser_mode="jwt") as client:
        register(client)
        bind(client)
        refresh_token = client.cookies[REFRESH_COOKIE]
        saved, client.cookies = client.cookies, httpx.Cookies()
        # Copied into a body (no cookies at all): refused, nothing rotated.
        r = client.post("/auth/refresh", json={"refresh_token": refresh_token})
        assert r.status_code == 401 and r.json()["error"] == "invalid_grant"
        # With the bound cookie: the very same token still refreshes.
        r = client.post(
            "/auth/refresh",
            json={"refresh_token": refresh_token},
            headers={"cookie": f"{BOUND}={saved[BOUND]}"},
        )
        assert r.status_code == 200, r.text
        # The new access token carries the binding too.
        assert as_cookies(client, {ACCESS: r.json()["access_token"]}) == 401


# -- refresh -------------------------------------------------------------------------


def test_refresh_challenge_then_proof_gives_a_fresh_cookie(client: TestClient) -> None:
    key, sid = bind(client)
    stolen = credentials(client)
    client.cookies.delete(BOUND)
    assert client.get("/auth/me").status_code == 401
    r = key.refresh(client, sid)
    assert r.status_code == 200, r.text
    assert r.json()["session_identifier"] == sid
    assert client.get("/auth/me").status_code == 200
    assert as_cookies(client, {**stolen, BOUND: client.cookies[BOUND]}) == 200


def test_refresh_headers_in_structured_field_form(client: TestClient) -> None:
    key, sid = bind(client)
    first = client.post(REFRESH, headers={"sec-secure-session-id": f'"{sid}"'})
    challenge, _ = challenge_of(first)
    proof = key.proof(challenge, embed=False)
    r = client.post(REFRESH, headers={
        "sec-secure-session-id": f'"{sid}";x=1', "secure-session-response": f'"{proof}"',
    })  # fmt: skip
    assert r.status_code == 200, r.text


def test_registration_header_in_structured_field_form(client: TestClient) -> None:
    key = DeviceKey()
    offer = offer_of(fresh_login(client))
    proof = key.proof(offer.challenge, offer.authorization)
    r = client.post(REGISTER, headers={"secure-session-response": f'"{proof}"'})
    assert r.status_code == 200, r.text


def refused(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["error"]
    return code


def test_refresh_with_the_wrong_key_is_refused(client: TestClient) -> None:
    _key, sid = bind(client)
    client.cookies.delete(BOUND)
    assert refused(DeviceKey().refresh(client, sid)) == "invalid_dbsc_proof"
    assert BOUND not in client.cookies


def test_refresh_with_a_wrong_or_replayed_challenge_is_refused(client: TestClient) -> None:
    key, sid = bind(client)
    client.cookies.delete(BOUND)
    challenge, _ = challenge_of(client.post(REFRESH, headers={"sec-secure-session-id": sid}))

    def answer(jti: str) -> httpx.Response:
        return client.post(REFRESH, headers={
            "sec-secure-session-id": sid, "secure-session-response": key.proof(jti, embed=False),
        })  # fmt: skip

    assert refused(answer("made-up")) == "invalid_dbsc_proof"
    good = answer(challenge)
    assert good.status_code == 200, good.text
    client.cookies.delete(BOUND)
    assert refused(answer(challenge)) == "invalid_dbsc_proof"  # single use
    assert BOUND not in client.cookies


def test_registration_challenge_is_not_a_refresh_challenge(client: TestClient) -> None:
    key = DeviceKey()
    offer = offer_of(fresh_login(client))
    r = key.register(client, offer)
    sid = r.json()["session_identifier"]
    # The registration offer's challenge (already used) and a fresh one of
    # another login: neither is a refresh challenge.
    other = offer_of(fresh_login(client))
    client.cookies = httpx.Cookies()
    for jti in (offer.challenge, other.challenge):
        r = client.post(REFRESH, headers={
            "sec-secure-session-id": sid, "secure-session-response": key.proof(jti, embed=False),
        })  # fmt: skip
        # (No cookies: the login is not found, so the browser is told to stop.)
        assert r.status_code == 200 and r.json() == {"session_identifier": sid, "continue": False}


def test_replayed_registration_is_refused(client: TestClient) -> None:
    key = DeviceKey()
    offer = offer_of(fresh_login(client))
    proof = key.proof(offer.challenge, offer.authorization)
    assert client.post(REGISTER, headers={"secure-session-response": proof}).status_code == 200
    # The same login again: already bound.
    r = client.post(REGISTER, headers={"secure-session-response": proof})
    assert refused(r, 409) == "conflict"


def test_registration_proof_checks(client: TestClient) -> None:
    offer = offer_of(fresh_login(client))
    key = DeviceKey()
    rsa_key = DeviceKey("RS256")

    def post(proof: str) -> httpx.Response:
        return client.post(REGISTER, headers={"secure-session-response": proof})

    cases: dict[str, str] = {
        # alg "none", unsigned.
        "none": f"{b64json({'alg': 'none', 'typ': 'dbsc+jwt', 'jwk': key.jwk})}."
        f"{b64json({'jti': offer.challenge, 'authorization': offer.authorization})}.AA",
        # The wrong typ, and none at all.
        "typ": key.proof(offer.challenge, offer.authorization, header={"typ": "JWT"}),
        # An RSA key under ES256 and an EC key under RS256.
        "kty-es": key.proof(offer.challenge, offer.authorization, header={"jwk": rsa_key.jwk}),
        "kty-rs": rsa_key.proof(offer.challenge, offer.authorization, header={"jwk": key.jwk}),
        # Signed by another key than the embedded one.
        "other-key": key.proof(
            offer.challenge, offer.authorization, header={"jwk": DeviceKey().jwk}
        ),
        # A challenge we never issued, the wrong authorization, none.
        "jti": key.proof("made-up", offer.authorization),
        "authorization": key.proof(offer.challenge, "made-up"),
        "no-authorization": key.proof(offer.challenge),
        # No key at all; a private key.
        "no-jwk": key.proof(offer.challenge, offer.authorization, embed=False),
        "private": key.proof(
            offer.challenge, offer.authorization, header={"jwk": {**key.jwk, "d": "AAAA"}}
        ),
    }
    # HS256 with the public key's JSON as the HMAC secret (the classic confusion).
    head = b64json({"alg": "HS256", "typ": "dbsc+jwt", "jwk": key.jwk})
    body = b64json({"jti": offer.challenge, "authorization": offer.authorization})
    mac = hmac.new(str(key.jwk).encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    cases["hs256"] = f"{head}.{body}.{b64(mac)}"
    for name, proof in cases.items():
        assert refused(post(proof)) == "invalid_dbsc_proof", name
    # Nothing above spent the challenge or bound the login: the real proof works.
    assert key.register(client, offer).status_code == 200


def test_refresh_alg_is_pinned_to_the_registered_key(client: TestClient) -> None:
    rsa_key = DeviceKey("RS256")
    _, sid = bind(client, rsa_key)
    client.cookies.delete(BOUND)
    challenge, _ = challenge_of(client.post(REFRESH, headers={"sec-secure-session-id": sid}))
    ec_key = DeviceKey()
    # An ES256 proof by another key, even embedding it, is refused: the key
    # comes from the login, never from the token.
    proof = ec_key.proof(challenge)
    r = client.post(
        REFRESH, headers={"sec-secure-session-id": sid, "secure-session-response": proof}
    )
    assert refused(r) == "invalid_dbsc_proof"
    # HS256 keyed with the registered RSA public key: refused.
    head = b64json({"alg": "HS256", "typ": "dbsc+jwt"})
    body = b64json({"jti": challenge})
    mac = hmac.new(rsa_key.jwk["n"].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    r = client.post(REFRESH, headers={
        "sec-secure-session-id": sid, "secure-session-response": f"{head}.{body}.{b64(mac)}",
    })  # fmt: skip
    assert refused(r) == "invalid_dbsc_proof"
    # The real key still works: the challenge was not spent by the failures.
    r = client.post(REFRESH, headers={
        "sec-secure-session-id": sid,
        "secure-session-response": rsa_key.proof(challenge, embed=False),
    })  # fmt: skip
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "value",
    ['"unterminated', '"a\\x"', "a b c", "", "   ", '"x" junk', "x.y.z", "é"],
)
def test_garbled_headers_are_clear_400s(client: TestClient, value: str) -> None:
    _key, sid = bind(client)
    for path, headers in (
        (REGISTER, {"secure-session-response": value}),
        (REFRESH, {"sec-secure-session-id": value}),
        (REFRESH, {"sec-secure-session-id": sid, "secure-session-response": value}),
    ):
        r = client.post(path, headers={k: v.encode("utf-8") for k, v in headers.items()})
        assert refused(r) == "invalid_dbsc_proof", (path, value)
    assert client.get("/auth/me").status_code == 200


def test_missing_headers(client: TestClient) -> None:
    bind(client)
    assert refused(client.post(REGISTER)) == "invalid_dbsc_proof"
    assert refused(client.post(REFRESH)) == "invalid_dbsc_proof"


def test_registration_with_another_users_challenge_is_refused(client: TestClient) -> None:
    register(client, "eve@example.com")
    eve_offer = offer_of(fresh_login(client, "eve@example.com"))
    ada_offer = offer_of(fresh_login(client))  # the jar is ada's from here on
    key = DeviceKey()
    r = key.register(client, eve_offer)
    assert refused(r) == "invalid_dbsc_proof"
    # Ada's login is not bound by it; her own offer still works.
    assert client.get("/auth/sessions").json()[0]["device_bound"] is False
    assert key.register(client, ada_offer).status_code == 200


def test_registration_with_my_other_logins_challenge_is_refused(client: TestClient) -> None:
    first = offer_of(fresh_login(client))
    offer_of(fresh_login(client))
    assert refused(DeviceKey().register(client, first)) == "invalid_dbsc_proof"


def test_registration_with_a_bearer_token_is_refused(tmp_path: Path) -> None:
    """The browser's access token copied into an Authorization header is not
    a browser login: it cannot bind (nor be bound by) a key."""
    with dbsc_client(tmp_path, browser_mode="jwt") as client:
        register(client)
        offer = offer_of(fresh_login(client))
        token = client.cookies[ACCESS]
        client.cookies = httpx.Cookies()
        r = DeviceKey().register(client, offer, headers={"authorization": f"Bearer {token}"})
        assert refused(r, 401) == "not_authenticated"


def test_a_refresh_challenge_is_for_one_dbsc_session(client: TestClient) -> None:
    key_a, sid_a = bind(client)
    jar_a = client.cookies
    key_b, sid_b = bind(client)  # another login of the same user, another device
    jar_b = client.cookies
    client.cookies = jar_a
    challenge_a, _ = challenge_of(client.post(REFRESH, headers={"sec-secure-session-id": sid_a}))
    # Device B signs A's challenge and presents it for its own session.
    client.cookies = jar_b
    client.cookies.delete(BOUND)
    r = client.post(REFRESH, headers={
        "sec-secure-session-id": sid_b,
        "secure-session-response": key_b.proof(challenge_a, embed=False),
    })  # fmt: skip
    assert refused(r) == "invalid_dbsc_proof"
    assert BOUND not in client.cookies
    del key_a


def test_registration_needs_a_login(client: TestClient) -> None:
    offer = offer_of(fresh_login(client))
    client.cookies = httpx.Cookies()
    assert refused(DeviceKey().register(client, offer), 401) == "not_authenticated"


# -- termination ------------------------------------------------------------------------


def test_logout_ends_the_dbsc_session(client: TestClient) -> None:
    _key, sid = bind(client)
    kept = dict(client.cookies)
    r = client.post("/auth/logout")
    assert r.status_code == 204
    assert any(c.startswith(f"{BOUND}=;") for c in r.headers.get_list("set-cookie"))
    client.cookies = httpx.Cookies(kept)  # a browser that kept them anyway
    r = client.post(REFRESH, headers={"sec-secure-session-id": sid})
    assert r.status_code == 200 and r.json() == {"session_identifier": sid, "continue": False}


def test_a_login_ended_elsewhere_ends_the_dbsc_session(client: TestClient) -> None:
    _key, sid = bind(client)
    victim = dict(client.cookies)
    fresh_login(client)
    assert client.post("/auth/sessions/revoke-others").status_code == 204
    client.cookies = httpx.Cookies(victim)
    r = client.post(REFRESH, headers={"sec-secure-session-id": sid})
    assert r.status_code == 200 and r.json() == {"session_identifier": sid, "continue": False}


def test_refresh_of_another_sid_is_told_to_stop(client: TestClient) -> None:
    bind(client)
    r = client.post(REFRESH, headers={"sec-secure-session-id": "B" * 22})
    assert r.json() == {"session_identifier": "B" * 22, "continue": False}


def test_refresh_is_throttled(tmp_path: Path) -> None:
    with dbsc_client(tmp_path, dbsc_refresh_limit=3) as client:
        register(client)
        _key, sid = bind(client)
        for _ in range(3):
            assert client.post(REFRESH, headers={"sec-secure-session-id": sid}).status_code == 403
        r = client.post(REFRESH, headers={"sec-secure-session-id": sid})
        assert refused(r, 429) == "rate_limited"


# -- policy: roles that must bind -----------------------------------------------------------


@pytest.mark.parametrize("browser_mode", ["session", "jwt"])
def test_required_roles_refuse_unbound_logins_after_the_window(
    tmp_path: Path, browser_mode: str
) -> None:
    with dbsc_client(tmp_path, browser_mode=browser_mode, dbsc_required_roles=("admin",)) as client:
        register(client)
        register(client, "bob@example.com")
        parts = parts_of(client)
        assert client.portal is not None

        async def grant() -> None:
            await parts.accounts.grant_role(await parts.accounts.get("ada@example.com"), "admin")

        client.portal.call(grant)
        assert parts.dbsc is not None
        later = lambda: time.time() + 301  # noqa: E731
        # An admin who binds: fine, also after the window.
        bind(client)
        bound_jar = client.cookies
        # An admin whose browser does not bind: fine within the window...
        fresh_login(client)
        unbound = credentials(client)
        assert as_cookies(client, unbound) == 200
        # ...refused after it; bob (no such role) is not affected.
        fresh_login(client, "bob@example.com")
        bob = credentials(client)
        parts.dbsc.cookies.clock = later
        try:
            assert as_cookies(client, unbound) == 401
            assert as_cookies(client, bob) == 200
            client.cookies = bound_jar
            assert client.get("/auth/me").status_code == 200
        finally:
            parts.dbsc.cookies.clock = time.time


def test_bound_cookie_value_shape() -> None:
    cookies = BoundCookies([b"x" * 32], ttl=600)
    value = cookies.value("A" * 22)
    expires, mac = value.split(".")
    assert int(expires) > time.time() + 590
    assert len(base64.urlsafe_b64decode(mac + "=")) == 32
    assert cookies.valid(value, "A" * 22)
    assert not cookies.valid(value, "B" * 22)
    header = cookies.header("A" * 22)
    assert header.startswith(f"{BOUND}=") and "Max-Age=600" in header and "HttpOnly" in header


# -- scale-out ---------------------------------------------------------------------------


@pytest.mark.parametrize("shared", ["redis", "postgres"])
def test_a_second_instance_refreshes_with_the_key_in_the_shared_store(
    tmp_path: Path, request: pytest.FixtureRequest, shared: str
) -> None:
    """Two instances share the database (PostgreSQL: users and challenges)
    and the session store (Redis or PostgreSQL) and the secret, nothing else:
    a login bound on one refreshes on the other."""
    database = request.getfixturevalue("postgres_url")
    store = request.getfixturevalue("isolated_redis_url") if shared == "redis" else database
    common = {
        **DBSC,
        "database_url": database,
        "session_store_url": store,
        "secret_key": "one secret shared by every instance of the server",
    }
    with (
        make_client(tmp_path / "a", **common) as a,
        make_client(tmp_path / "b", **common) as b,
    ):
        register(a)
        key, sid = bind(a)
        b.cookies = httpx.Cookies({SESSION: a.cookies[SESSION]})
        assert b.get("/auth/me").status_code == 401  # bound: the session cookie alone fails
        r = key.refresh(b, sid)
        assert r.status_code == 200, r.text
        assert b.get("/auth/me").status_code == 200
        # A's challenge is not B's to take twice: one store, single use.
        first = b.post(REFRESH, headers={"sec-secure-session-id": sid})
        challenge, _ = challenge_of(first)
        proof = key.proof(challenge, embed=False)
        headers = {"sec-secure-session-id": sid, "secure-session-response": proof}
        assert a.post(REFRESH, headers=headers).status_code == 200
        assert refused(b.post(REFRESH, headers=headers)) == "invalid_dbsc_proof"
        # Ended on A: B tells the browser to stop.
        assert a.post("/auth/logout").status_code == 204
        r = b.post(REFRESH, headers={"sec-secure-session-id": sid})
        assert r.json() == {"session_identifier": sid, "continue": False}


# -- every backend ---------------------------------------------------------------------------


@pytest.mark.parametrize("browser_mode", ["session", "jwt"])
@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis", "postgres", "mongodb"])
def test_bind_refresh_and_end_on_every_store(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str, browser_mode: str
) -> None:
    """The binding lives on the login's own record (session data, or refresh
    family data through RefreshStore.set_data) in every session store; the
    challenges in the database's one-time token store (MongoDB runs against
    the nx-27017 emulator, with users and challenges in SQLite)."""
    overrides: dict[str, object] = {"browser_mode": browser_mode}
    if backend == "memory":
        overrides["session_store_url"] = "memory://"
    elif backend == "redis":
        overrides["session_store_url"] = request.getfixturevalue("isolated_redis_url")
    elif backend == "postgres":
        dsn = request.getfixturevalue("postgres_url")
        overrides.update(database_url=dsn, session_store_url=dsn)
    elif backend == "mongodb":
        overrides["session_store_url"] = request.getfixturevalue("mongodb_url")
    with dbsc_client(tmp_path, **overrides) as client:
        register(client)
        key, sid = bind(client)
        assert [s["device_bound"] for s in client.get("/auth/sessions").json()] == [True]
        assert as_cookies(client, credentials(client)) == 401
        client.cookies.delete(BOUND)
        assert key.refresh(client, sid).status_code == 200
        assert client.get("/auth/me").status_code == 200
        assert client.post("/auth/logout").status_code == 204
        r = client.post(REFRESH, headers={"sec-secure-session-id": sid})
        assert r.json() == {"session_identifier": sid, "continue": False}


# -- store outage ----------------------------------------------------------------------------


def test_store_outage_is_a_503_never_an_end_of_the_session(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    """With the session store down, neither endpoint tells the browser to
    drop its DBSC session, nor lets a request through: 503 store_unavailable."""
    with dbsc_client(tmp_path, session_store_url=private_redis.url) as client:
        register(client)
        offer = offer_of(fresh_login(client))
        key = DeviceKey()
        private_redis.stop()
        r = key.register(client, offer)
        assert refused(r, 503) == "store_unavailable"
        r = client.post(REFRESH, headers={"sec-secure-session-id": "A" * 22})
        assert refused(r, 503) == "store_unavailable"
        private_redis.start()  # empty again: the login is gone
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the store did not come back"
            time.sleep(0.1)
        r = client.post(REFRESH, headers={"sec-secure-session-id": "A" * 22})
        assert r.json() == {"session_identifier": "A" * 22, "continue": False}
