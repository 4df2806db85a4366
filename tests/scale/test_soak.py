"""Soak: a bounded mixed load against one ``gatepass serve`` on Redis + PostgreSQL.

For ``GATEPASS_SOAK_SECONDS`` (default 60) a fixed number of workers cycle
through what real clients do: browser login, authenticated GETs, logout (and
check the old cookie is refused), and the API flow: token, Bearer GETs,
refresh, revoke (and check the token is refused).  Every answer must be one
the design allows for that step; anything else (a 500, a 503, a 401 before
logout, a 200 after it) counts as an unexpected error, and there must be none.

Meanwhile the server's resident memory (``VmRSS`` from /proc) is sampled every
few seconds.  The first third is warm-up (caches, pools, allocator arenas
filling); the last third may not grow more than 10 % over the second.  The
figures are printed so they can be quoted.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import RedisServer
from tests.scale.conftest import (
    COOKIE,
    CSRF_COOKIE,
    PASSWORD,
    Instance,
    cluster,
    rss_kib,
    session_of,
    unique_redis_url,
)

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

SECONDS = float(os.environ.get("GATEPASS_SOAK_SECONDS", "60"))
WORKERS = 8
#: The last third's peak RSS may exceed the second third's by at most this.
GROWTH_BOUND = 0.10


class Tally:
    def __init__(self) -> None:
        self.ok: Counter[tuple[str, int]] = Counter()
        self.unexpected: Counter[tuple[str, int, str]] = Counter()

    def check(self, step: str, response: httpx.Response, *allowed: int) -> bool:
        if response.status_code in allowed:
            self.ok[(step, response.status_code)] += 1
            return True
        try:
            error = str(response.json().get("error"))
        except ValueError:
            error = response.text[:60]
        self.unexpected[(step, response.status_code, error)] += 1
        return False


async def _cookie_cycle(http: httpx.AsyncClient, email: str, tally: Tally) -> None:
    csrf = await http.get("/auth/csrf")
    if not tally.check("csrf", csrf, 200):
        return
    token = csrf.json()["csrf_token"]
    r = await http.post(
        "/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"x-csrf-token": token, "cookie": f"{CSRF_COOKIE}={token}"},
    )
    # 429 only if the throttle ever stepped in (it must not: no password is wrong).
    if not tally.check("login", r, 200, 429) or r.status_code != 200:
        return
    session = session_of(r)
    cookie = {"cookie": f"{COOKIE}={session}"}
    for _ in range(5):
        tally.check("me (session)", await http.get("/auth/me", headers=cookie), 200)
    tally.check("sessions", await http.get("/auth/sessions", headers=cookie), 200)
    bound = await http.get("/auth/csrf", headers=cookie)
    if not tally.check("csrf (session)", bound, 200):
        return
    token = bound.json()["csrf_token"]
    out = await http.post(
        "/auth/logout",
        headers={"x-csrf-token": token, "cookie": f"{COOKIE}={session}; {CSRF_COOKIE}={token}"},
    )
    tally.check("logout", out, 204)
    tally.check("me after logout", await http.get("/auth/me", headers=cookie), 401)


async def _token_cycle(http: httpx.AsyncClient, email: str, tally: Tally) -> None:
    r = await http.post("/auth/token", json={"email": email, "password": PASSWORD})
    if not tally.check("token", r, 200, 429) or r.status_code != 200:
        return
    pair = r.json()
    for _ in range(2):
        bearer = {"authorization": f"Bearer {pair['access_token']}"}
        for _ in range(3):
            tally.check("me (bearer)", await http.get("/auth/me", headers=bearer), 200)
        r = await http.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        if not tally.check("refresh", r, 200):
            return
        pair = r.json()
    bearer = {"authorization": f"Bearer {pair['access_token']}"}
    tally.check("logout (bearer)", await http.post("/auth/logout", headers=bearer), 204)
    tally.check("me after logout (bearer)", await http.get("/auth/me", headers=bearer), 401)
    again = await http.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    tally.check("refresh after logout", again, 401)


async def _soak(server: Instance, emails: list[str], tally: Tally, rss: list[tuple[float, int]]
                ) -> int:  # fmt: skip
    interval = max(1.0, SECONDS / 30)
    start = time.monotonic()
    deadline = start + SECONDS
    cycles = 0

    async def worker(w: int) -> None:
        nonlocal cycles
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            k = 0
            while time.monotonic() < deadline:
                if (w + k) % 2:
                    await _cookie_cycle(http, emails[w], tally)
                else:
                    await _token_cycle(http, emails[w], tally)
                http.cookies.clear()
                k += 1
                cycles += 1

    async def sampler() -> None:
        while time.monotonic() < deadline:
            rss.append((time.monotonic() - start, rss_kib(server.pid)))
            await asyncio.sleep(interval)
        rss.append((time.monotonic() - start, rss_kib(server.pid)))

    await asyncio.gather(sampler(), *(worker(w) for w in range(WORKERS)))
    return cycles


def test_soak_mixed_load(tmp_path: Path, private_redis: RedisServer, postgres_url: str) -> None:
    with cluster(
        tmp_path,
        ("soak",),
        GATEPASS_DATABASE_URL=postgres_url,
        GATEPASS_SESSION_STORE_URL=unique_redis_url(private_redis.url),
    ) as (server,):
        tag = secrets.token_hex(4)
        emails = [f"soak{w}-{tag}@example.com" for w in range(WORKERS)]
        for email in emails:
            assert server.register(email).status_code == 201
        tally = Tally()
        rss: list[tuple[float, int]] = []
        began = time.monotonic()
        cycles = asyncio.run(_soak(server, emails, tally, rss))
        elapsed = time.monotonic() - began
        # The server still answers, and readiness is fine, after the soak.
        assert server.request("GET", "/readyz").status_code == 200

    requests = sum(tally.ok.values()) + sum(tally.unexpected.values())
    third = len(rss) // 3
    second = [kib for _, kib in rss[third : 2 * third]]
    last = [kib for _, kib in rss[2 * third :]]
    growth = max(last) / max(second) - 1
    print(f"\nsoak: {elapsed:.1f} s, {WORKERS} workers, {cycles} cycles, {requests} requests "
          f"({requests / elapsed:.0f}/s)")  # fmt: skip
    print(f"  answers as designed: {dict(sorted(tally.ok.items()))}")
    print(f"  unexpected: {dict(tally.unexpected)}")
    print("  RSS MiB: " + " ".join(f"{t:.0f}s:{kib / 1024:.1f}" for t, kib in rss))
    print(f"  peak RSS second third {max(second) / 1024:.1f} MiB, last third "
          f"{max(last) / 1024:.1f} MiB: {growth:+.1%}")  # fmt: skip
    assert not tally.unexpected, dict(tally.unexpected)
    assert cycles >= WORKERS, "the load generator hardly ran"
    assert len(rss) >= 6, rss
    assert growth < GROWTH_BOUND, f"RSS still growing: {growth:+.1%} in the last third"
