"""Three ``gatepass serve`` instances behind an imaginary load balancer.

A, B and C are separate processes on separate loopback ports sharing one
private Redis (sessions, refresh families, revocation, throttling), one
PostgreSQL schema (users), one data dir (signing keys) and one secret: what
the SPEC's scale-out section promises.  No stickiness: every step of a flow
goes to another instance than the one before, and a logout or revocation on
one instance must be seen by the others on the very next request (each
instance caches sessions and revocation answers locally, kept exact by Redis
invalidation pushes; a stale cache would show up here as a 200).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import IN_CI, RedisServer, require_service
from tests.scale.conftest import PASSWORD, Instance, cluster, session_of

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

#: Logout/revoke rounds: each is a fresh chance for a stale cache to answer.
ROUNDS = 10


@pytest.fixture(scope="module")
def abc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Instance]]:
    import asyncpg

    from tests.conftest import POSTGRES_URL

    require_service("PostgreSQL", "127.0.0.1", 5432)
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    base = tmp_path_factory.mktemp("abc")
    redis = RedisServer(base)
    schema = f"gpscale_{secrets.token_hex(6)}"

    async def ddl(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(ddl(f'CREATE SCHEMA "{schema}"'))
    redis.start()
    try:
        with cluster(
            base / "servers",
            ("A", "B", "C"),
            GATEPASS_DATABASE_URL=f"{POSTGRES_URL}?search_path={schema}",
            GATEPASS_SESSION_STORE_URL=redis.url,
        ) as instances:
            yield instances
    finally:
        redis.stop()
        asyncio.run(ddl(f'DROP SCHEMA "{schema}" CASCADE'))


def _email(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.com"


def test_instances_share_keys_and_secret(abc: list[Instance]) -> None:
    """The precondition of everything below: one JWKS, one issuer."""
    kids = [{k["kid"] for k in i.request("GET", "/.well-known/jwks.json").json()["keys"]}
            for i in abc]  # fmt: skip
    assert kids[0] and kids[0] == kids[1] == kids[2], kids


def test_session_cookie_from_a_works_on_b_and_logout_on_c_ends_it_everywhere(
    abc: list[Instance],
) -> None:
    a, b, c = abc
    email = _email("cookie")
    assert c.register(email).status_code == 201
    for round_no in range(ROUNDS):
        session = session_of(a.login(email))
        # Warm every instance's session cache: each has now served this session.
        for instance in (a, b, c, b, a):
            r = instance.me(session=session)
            assert r.status_code == 200, (round_no, instance.name, r.status_code, r.text)
            assert r.json()["email"] == email
        # A state change on B with the cookie (CSRF token bound to the session,
        # fetched from B) works too.
        sessions = b.request("GET", "/auth/sessions", session=session)
        assert sessions.status_code == 200
        out = c.request("POST", "/auth/logout", session=session)
        assert out.status_code == 204, (round_no, out.status_code, out.text)
        # The very next request, on each other instance: no grace, no cache.
        first_a = a.me(session=session)
        first_b = b.me(session=session)
        assert (first_a.status_code, first_b.status_code) == (401, 401), (
            f"round {round_no}: after logout on C, A answered {first_a.status_code} and "
            f"B answered {first_b.status_code}"
        )
        assert first_a.headers["www-authenticate"]
        assert c.me(session=session).status_code == 401
        # A state change with the dead cookie is refused too (not 200/204).
        again = b.request("POST", "/auth/logout", session=session)
        assert again.status_code in (204, 401, 403), again.status_code
        assert b.request("GET", "/auth/sessions", session=session).status_code == 401


def test_bearer_token_from_a_works_on_b_and_revoke_on_c_ends_it_everywhere(
    abc: list[Instance],
) -> None:
    a, b, c = abc
    email = _email("bearer")
    assert b.register(email).status_code == 201
    for round_no in range(ROUNDS):
        pair = a.token(email)
        assert pair.status_code == 200, pair.text
        access = pair.json()["access_token"]
        # Warm every instance's revocation cache for this jti.
        for instance in (a, b, c, b, a):
            r = instance.me(bearer=access)
            assert r.status_code == 200, (round_no, instance.name, r.status_code, r.text)
        gone = c.request("POST", "/auth/revoke", json={"token": access})
        assert gone.status_code == 200, gone.text
        first_a = a.me(bearer=access)
        first_b = b.me(bearer=access)
        assert (first_a.status_code, first_b.status_code) == (401, 401), (
            f"round {round_no}: after revoke on C, A answered {first_a.status_code} and "
            f"B answered {first_b.status_code}"
        )
        assert first_b.headers["www-authenticate"].lower().startswith("bearer")
        # The family's refresh token is untouched by revoking one access token.
        fresh = b.refresh(pair.json()["refresh_token"])
        assert fresh.status_code == 200, fresh.text
        assert a.me(bearer=fresh.json()["access_token"]).status_code == 200
        # Revoking the refresh token on C ends the whole family on A and B.
        body = {"token": fresh.json()["refresh_token"]}
        assert c.request("POST", "/auth/revoke", json=body).status_code == 200
        assert a.me(bearer=fresh.json()["access_token"]).status_code == 401
        assert b.refresh(fresh.json()["refresh_token"]).status_code == 401


def test_ending_logins_on_one_instance_refuses_every_credential_on_the_others(
    abc: list[Instance],
) -> None:
    """SECURITY 38 across instances: a login ended on one instance (DELETE,
    revoke-others, "log out everywhere") is refused at the next request on
    every other, whatever kind of credential it produced."""
    a, b, c = abc
    email = _email("logins")
    assert a.register(email).status_code == 201
    for round_no in range(3):
        browser = session_of(a.login(email))
        other_browser = session_of(b.login(email))
        api = b.token(email).json()
        other_api = c.token(email).json()
        # Warm every cache with every credential.
        for instance in (a, b, c):
            for kwargs in ({"session": browser}, {"session": other_browser},
                           {"bearer": api["access_token"]}, {"bearer": other_api["access_token"]}):
                assert instance.me(**kwargs).status_code == 200, (round_no, instance.name)
        listed = a.request("GET", "/auth/sessions", session=browser).json()
        assert sorted(r["kind"] for r in listed) == ["api", "api", "session", "session"]
        [api_id] = [r["id"] for r in
                    b.request("GET", "/auth/sessions", bearer=api["access_token"]).json()
                    if r["current"]]  # fmt: skip

        # One API login, ended from a browser on C.
        ended = c.request("DELETE", f"/auth/sessions/{api_id}", session=browser)
        assert ended.status_code == 204, ended.text
        for instance in (a, b):
            assert instance.me(bearer=api["access_token"]).status_code == 401, round_no
            assert instance.me(bearer=other_api["access_token"]).status_code == 200
        assert a.refresh(api["refresh_token"]).status_code == 401

        # Every other login, ended by the API client on A.
        out = a.request("POST", "/auth/sessions/revoke-others", bearer=other_api["access_token"])
        assert out.status_code == 204, out.text
        for instance in (b, c):
            assert instance.me(session=browser).status_code == 401, round_no
            assert instance.me(session=other_browser).status_code == 401, round_no
            assert instance.me(bearer=other_api["access_token"]).status_code == 200

        # And the last one, by its own logout on B.
        refreshed = b.refresh(other_api["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        access = refreshed.json()["access_token"]
        assert b.request("POST", "/auth/logout", bearer=access).status_code == 204
        for instance in (a, c):
            assert instance.me(bearer=access).status_code == 401, round_no
        assert c.refresh(refreshed.json()["refresh_token"]).status_code == 401
        assert a.request("GET", "/auth/sessions", bearer=access).status_code == 401


def test_admin_ending_everything_reaches_every_instance(abc: list[Instance]) -> None:
    """`gatepass sessions revoke EMAIL --all`, `users set-password` and
    `users disable` from the CLI (its own process, on the shared stores)
    refuse every credential on every instance at the next request."""
    import subprocess
    import sys

    a, b, c = abc
    for command in (["sessions", "revoke", "{email}", "--all"],
                    ["users", "set-password", "{email}", "--password-stdin"],
                    ["users", "disable", "{email}"]):  # fmt: skip
        email = _email("admin")
        assert a.register(email).status_code == 201
        browser = session_of(a.login(email))
        api = b.token(email).json()
        for instance in (a, b, c):
            assert instance.me(session=browser).status_code == 200
            assert instance.me(bearer=api["access_token"]).status_code == 200
        result = subprocess.run(
            [sys.executable, "-m", "gatepass", *(p.format(email=email) for p in command)],
            env=a.env, cwd=a.base, input="another long passphrase\n", capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "2 logins ended" in result.stdout, result.stdout
        for instance in (a, b, c):
            assert instance.me(session=browser).status_code == 401, (command, instance.name)
            assert instance.me(bearer=api["access_token"]).status_code == 401, command
        assert c.refresh(api["refresh_token"]).status_code == 401


async def _refresh_race(instances: list[Instance], token: str, n: int) -> list[httpx.Response]:
    clients = [httpx.AsyncClient(base_url=i.url, timeout=30) for i in instances]
    try:
        # Connections first, so the 20 requests leave as close together as possible.
        await asyncio.gather(*(cl.get("/healthz") for cl in clients))
        start = asyncio.Event()

        async def one(k: int) -> httpx.Response:
            await start.wait()
            return await clients[k % len(clients)].post(
                "/auth/refresh", json={"refresh_token": token}
            )

        tasks = [asyncio.create_task(one(k)) for k in range(n)]
        await asyncio.sleep(0)
        start.set()
        return await asyncio.gather(*tasks)
    finally:
        for cl in clients:
            await cl.aclose()


def test_refresh_race_across_instances_yields_one_successor(abc: list[Instance]) -> None:
    a, b, c = abc
    email = _email("race")
    assert a.register(email).status_code == 201
    for round_no in range(3):
        pair = b.token(email)
        assert pair.status_code == 200
        original = pair.json()["refresh_token"]
        answers = asyncio.run(_refresh_race(abc, original, 20))
        statuses = [r.status_code for r in answers]
        successors = {r.json()["refresh_token"] for r in answers if r.status_code == 200}
        # Inside the grace window every concurrent retry gets the same successor.
        assert statuses == [200] * 20, (round_no, statuses, [r.text for r in answers])
        assert len(successors) == 1, (round_no, successors)
        [successor] = successors
        assert successor != original
        accesses = [r.json()["access_token"] for r in answers]
        for k, access in enumerate(accesses):
            assert abc[(k + 1) % 3].me(bearer=access).status_code == 200
        # The family stays usable: the successor rotates once more, on another instance.
        nxt = c.refresh(successor)
        assert nxt.status_code == 200, nxt.text
        third = nxt.json()["refresh_token"]
        assert third not in (original, successor)
        # The original is now two rotations old: a replay, which revokes the family
        # everywhere: the newest refresh token and every access token die with it.
        replay = a.refresh(original)
        assert replay.status_code == 401 and replay.json()["error"] == "invalid_grant"
        assert b.refresh(third).status_code == 401
        for instance in abc:
            assert instance.me(bearer=nxt.json()["access_token"]).status_code == 401
            assert instance.me(bearer=accesses[0]).status_code == 401


def _attempts_until_429(
    instances: list[Instance], email: str, limit: int = 40
) -> tuple[int, float]:
    """How many bad passwords until the first 429, and when the last failure was answered."""
    last_failure = 0.0
    for attempt in range(1, limit + 1):
        r = instances[(attempt - 1) % len(instances)].login(email, "wrong " + PASSWORD)
        if r.status_code == 429:
            assert r.json()["error"] == "rate_limited"
            assert int(r.headers["retry-after"]) >= 1
            return attempt, last_failure
        last_failure = time.monotonic()
        assert r.status_code == 401, (attempt, r.status_code, r.text)
        assert r.json()["error"] == "invalid_credentials"
    raise AssertionError(f"no 429 after {limit} bad passwords")


def test_login_throttling_counts_across_instances(abc: list[Instance]) -> None:
    a, b, c = abc
    one, spread = _email("throttle-one"), _email("throttle-spread")
    for email in (one, spread):
        assert a.register(email).status_code == 201
    alone, _ = _attempts_until_429([a], one)
    round_robin, last_failure = _attempts_until_429(abc, spread)
    print(f"\nthrottle: 429 after {alone} bad passwords on one instance, "
          f"{round_robin} round-robin over A/B/C")  # fmt: skip
    assert round_robin == alone, (alone, round_robin)
    # The back-off (1 s after the first failure past the free ones) holds on
    # every instance, even for the right password.
    refused = [i.login(spread).status_code for i in (a, b, c)]
    if time.monotonic() - last_failure < 1.0:  # a loaded machine may be slower
        assert refused == [429, 429, 429], refused
