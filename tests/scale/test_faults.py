"""Faults under load: a store that goes away and comes back, a server killed mid-burst.

The load is real and bounded: asyncio workers with httpx against two
``gatepass serve`` processes, authenticated GETs and some logins, a few
seconds long.  A controller thread stops the private Redis (or PostgreSQL)
in the middle and starts it again; every request is recorded with its start
and end time so it can be judged against what the store was doing then:

* requests wholly before the stop: 200;
* requests wholly inside the outage: 503 ``store_unavailable``, never 200
  (a session that cannot be checked is never let through) and never 401;
* never a 500, whenever;
* after the store is back, the same server processes serve again (no restart).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
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
    session_of,
    unique_redis_url,
)
from tests.server.test_outage import PostgresServer

WORKERS = 16
#: Seconds of load before the outage, of outage, and after recovery.
BEFORE, DURING, AFTER = 1.5, 2.0, 1.5
#: After recovery each worker goes on until it got a 200 again, at most this
#: long: 16 workers logging in again at once queue for Argon2 on 2 cores.
AFTER_MAX = 20.0


@dataclass
class Call:
    worker: int
    kind: str  # "me" (authenticated GET) or "login"
    start: float
    end: float
    status: int  # 0: transport error
    error: str | None
    #: Whether the session was made before the outage began (for "me").
    old_session: bool = False


@dataclass
class Timeline:
    """When the store went down and came back (monotonic clock)."""

    stop_begin: float = 0.0
    stop_done: float = 0.0
    start_begin: float = 0.0
    start_done: float = 0.0
    ready: float = 0.0
    calls: list[Call] = field(default_factory=list)

    def before(self, c: Call) -> bool:
        return c.end < self.stop_begin

    def during(self, c: Call) -> bool:
        return c.start > self.stop_done and c.end < self.start_begin

    def after(self, c: Call) -> bool:
        return c.start > self.ready


def _error_of(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        return str(response.json().get("error"))
    except ValueError:
        return response.text[:80]


async def _login(client: httpx.AsyncClient, email: str) -> httpx.Response:
    csrf = await client.get("/auth/csrf")
    if csrf.status_code != 200:
        return csrf
    token = csrf.json()["csrf_token"]
    return await client.post(
        "/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"x-csrf-token": token, "cookie": f"{CSRF_COOKIE}={token}"},
    )


async def _load(
    instances: list[Instance],
    emails: list[str],
    sessions: list[str],
    timeline: Timeline,
    control: Callable[[], None],
) -> None:
    """WORKERS workers until the controller (run in a thread) is done, plus AFTER."""
    clients = [httpx.AsyncClient(base_url=i.url, timeout=30) for i in instances]
    done = threading.Event()

    def controller() -> None:
        try:
            control()
        finally:
            done.set()

    async def worker(w: int) -> None:
        session, old = sessions[w], True
        rng = random.Random(w)
        k = 0
        recovered = False
        while (
            not done.is_set()
            or time.monotonic() < timeline.ready + AFTER
            or (not recovered and time.monotonic() < timeline.ready + AFTER_MAX)
        ):
            if time.monotonic() > timeline.stop_begin + 60:  # a hard bound, whatever happens
                break
            client = clients[(w + k) % len(clients)]
            k += 1
            kind = "login" if rng.random() < 0.05 else "me"
            t0 = time.monotonic()
            try:
                if kind == "login":
                    r = await _login(client, emails[w])
                else:
                    r = await client.get("/auth/me", headers={"cookie": f"{COOKIE}={session}"})
                status, error = r.status_code, _error_of(r)
            except httpx.TransportError as exc:
                r, status, error = None, 0, type(exc).__name__
            t1 = time.monotonic()
            timeline.calls.append(Call(w, kind, t0, t1, status, error, kind == "me" and old))
            if kind == "me" and status == 200 and done.is_set() and t0 > timeline.ready:
                recovered = True
            if r is not None and status == 200 and kind == "login":
                session, old = session_of(r), t0 < timeline.stop_begin
            elif kind == "me" and status == 401:
                # The session is gone (an empty Redis after its restart): log in again.
                fresh = await _login(client, emails[w])
                timeline.calls.append(
                    Call(w, "login", t1, time.monotonic(), fresh.status_code, _error_of(fresh))
                )
                if fresh.status_code == 200:
                    session, old = session_of(fresh), False
            await asyncio.sleep(0.005)

    try:
        await asyncio.gather(*(cl.get("/healthz") for cl in clients))
        timeline.stop_begin = time.monotonic() + 3600  # not yet
        thread = threading.Thread(target=controller, name="store-controller")
        thread.start()
        try:
            await asyncio.gather(*(worker(w) for w in range(WORKERS)))
        finally:
            await asyncio.to_thread(thread.join, 120)
    finally:
        for cl in clients:
            await cl.aclose()


def _wait_ready(instances: list[Instance], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    for instance in instances:
        while instance.request("GET", "/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"{instance.name} not ready {timeout} s after the restart")
            time.sleep(0.05)


def _summary(timeline: Timeline) -> dict[str, Counter[tuple[str, int, str | None]]]:
    phases: dict[str, Counter[tuple[str, int, str | None]]] = {
        "before": Counter(), "during": Counter(), "transition": Counter(), "after": Counter(),
    }  # fmt: skip
    for c in timeline.calls:
        phase = (
            "before" if timeline.before(c)
            else "during" if timeline.during(c)
            else "after" if timeline.after(c)
            else "transition"
        )  # fmt: skip
        phases[phase][(c.kind, c.status, c.error)] += 1
    return phases


def _common_assertions(timeline: Timeline) -> dict[str, Counter[tuple[str, int, str | None]]]:
    phases = _summary(timeline)
    print(f"\n{len(timeline.calls)} requests; outage "
          f"{timeline.start_begin - timeline.stop_done:.2f} s; ready again "
          f"{timeline.ready - timeline.start_done:.2f} s after the restart")  # fmt: skip
    for name, counts in phases.items():
        print(f"  {name:10} {dict(sorted(counts.items(), key=str))}")
    # Never a 500 (or any 5xx but 503 store_unavailable), never a dropped connection.
    bad = [c for c in timeline.calls if c.status == 0 or (c.status >= 500 and c.status != 503)]
    assert not bad, bad[:5]
    wrong_503 = [c for c in timeline.calls if c.status == 503 and c.error != "store_unavailable"]
    assert not wrong_503, wrong_503[:5]
    # Before: everything worked.
    assert phases["before"], "no request finished before the outage"
    assert set(phases["before"]) <= {("me", 200, None), ("login", 200, None)}, phases["before"]
    # During: only 503 store_unavailable; in particular no 200 on /auth/me at all,
    # and no 401 (which would make a client drop its session).
    during = phases["during"]
    assert sum(during.values()) >= WORKERS, f"too few requests inside the outage: {during}"
    assert set(during) <= {("me", 503, "store_unavailable"), ("login", 503, "store_unavailable")}, (
        during
    )
    # After: every worker got through again, on the same server processes.
    for w in range(WORKERS):
        mine = [c for c in timeline.calls if c.worker == w]
        t = timeline.start_begin  # times below are relative to the store's restart
        late = [(c.kind, round(c.start - t, 2), round(c.end - t, 2), c.status, c.error)
                for c in mine if c.end > t - 0.5]  # fmt: skip
        assert any(c.kind == "me" and c.status == 200 and timeline.after(c) for c in mine), (
            f"worker {w} never got a 200 after recovery (ready at {timeline.ready - t:.2f})",
            late[:20],
        )
    return phases


def _register_users(instance: Instance, n: int) -> tuple[list[str], list[str]]:
    tag = secrets.token_hex(4)
    emails = [f"load{w}-{tag}@example.com" for w in range(n)]
    sessions = []
    for email in emails:
        assert instance.register(email).status_code == 201
        sessions.append(session_of(instance.login(email)))
    return emails, sessions


def _outage_registration(instances: list[Instance], timeline: Timeline) -> tuple[str, int]:
    """Register a user while the store is down (called by the controller)."""
    email = f"during-{secrets.token_hex(4)}@example.com"
    r = instances[1].register(email)
    return email, r.status_code


def _whole_or_nothing(instance: Instance, email: str) -> str:
    """After recovery: the user registered during the outage fully exists
    (can log in) or does not exist at all (can be registered now)."""
    login = instance.login(email)
    if login.status_code == 200:
        return "exists"
    assert login.status_code == 401, login.text
    again = instance.register(email)
    assert again.status_code == 201, (
        f"half-made account: login says 401, register says {again.status_code} {again.text}"
    )
    assert instance.login(email).status_code == 200
    return "absent"


@pytest.mark.redis
@pytest.mark.postgres
def test_redis_outage_under_load(
    tmp_path: Path, private_redis: RedisServer, postgres_url: str
) -> None:
    timeline = Timeline()
    registered: dict[str, int] = {}
    with cluster(
        tmp_path,
        ("A", "B"),
        GATEPASS_DATABASE_URL=postgres_url,
        GATEPASS_SESSION_STORE_URL=unique_redis_url(private_redis.url),
    ) as instances:
        emails, sessions = _register_users(instances[0], WORKERS)

        def control() -> None:
            time.sleep(BEFORE)
            timeline.stop_begin = time.monotonic()
            private_redis.stop()
            timeline.stop_done = time.monotonic()
            email, status = _outage_registration(instances, timeline)
            registered[email] = status
            time.sleep(DURING)
            timeline.start_begin = time.monotonic()
            private_redis.start()  # same port, empty: this Redis keeps nothing on disk
            timeline.start_done = time.monotonic()
            _wait_ready(instances)
            timeline.ready = time.monotonic()

        asyncio.run(_load(instances, emails, sessions, timeline, control))
        _common_assertions(timeline)
        # Redis came back empty: a session made before the outage is gone, and
        # no instance may still serve it from its local cache.
        stale = [c for c in timeline.calls if c.kind == "me" and c.old_session
                 and timeline.after(c) and c.status == 200]  # fmt: skip
        assert not stale, (
            f"{len(stale)} pre-outage sessions answered 200 after the restart",
            timeline,
            stale[:5],
        )
        gone = [c for c in timeline.calls if c.kind == "me" and c.status == 401]
        assert gone and all(c.end > timeline.start_begin for c in gone), gone[:5]
        [(email, status)] = registered.items()
        # Users live in PostgreSQL (up): registering needs no session store.
        assert status in (201, 503), status
        print(f"  register during the Redis outage: {status}; afterwards the user is "
              f"{_whole_or_nothing(instances[0], email)}")  # fmt: skip


@pytest.mark.postgres
def test_postgres_outage_under_load(tmp_path: Path, private_postgres: PostgresServer) -> None:
    timeline = Timeline()
    registered: dict[str, int] = {}
    url = private_postgres.url
    with cluster(
        tmp_path, ("A", "B"), GATEPASS_DATABASE_URL=url, GATEPASS_SESSION_STORE_URL=url
    ) as instances:
        emails, sessions = _register_users(instances[0], WORKERS)

        def control() -> None:
            time.sleep(BEFORE)
            timeline.stop_begin = time.monotonic()
            private_postgres.stop()
            timeline.stop_done = time.monotonic()
            email, status = _outage_registration(instances, timeline)
            registered[email] = status
            time.sleep(DURING)
            timeline.start_begin = time.monotonic()
            private_postgres.start()
            timeline.start_done = time.monotonic()
            _wait_ready(instances)
            timeline.ready = time.monotonic()

        asyncio.run(_load(instances, emails, sessions, timeline, control))
        phases = _common_assertions(timeline)
        # The sessions are on disk: the cookies from before work again, and
        # nothing ever told a client its session was gone.
        assert not any(c.status == 401 for c in timeline.calls), phases
        revived = [c for c in timeline.calls if c.kind == "me" and c.old_session
                   and timeline.after(c) and c.status == 200]  # fmt: skip
        assert revived, "no session from before the outage was used after it"
        [(email, status)] = registered.items()
        assert status == 503, status  # the user store is down: 503, not 500/201
        state = _whole_or_nothing(instances[0], email)
        print(f"  register during the PostgreSQL outage: {status}; afterwards the user is {state}")
        assert state == "absent"


# --- SIGKILL during a burst of refreshes ---------------------------------------------

FAMILIES = 12
GRACE = 2  # seconds: GATEPASS_REFRESH_GRACE for this test


@dataclass
class Chain:
    """Every refresh token of one family that the client has seen, in order."""

    tokens: list[str]
    access: str
    lost: int = 0  # requests to A whose answer the kill swallowed
    anomalies: list[str] = field(default_factory=list)


async def _refresh_burst(a: Instance, b: Instance, chains: list[Chain], kill_at: float,
                         stop_at: float) -> int:  # fmt: skip
    """Each family refreshes in a chain, two concurrent copies of each request
    (one to A, one to B: two tabs, two instances).  A is SIGKILLed at
    ``kill_at``; a request whose answer was lost is retried on B with the same
    token, as a client would.  Returns the number of rotations done."""
    ca = httpx.AsyncClient(base_url=a.url, timeout=30)
    cb = httpx.AsyncClient(base_url=b.url, timeout=30)
    rotations = 0

    a_alive = True

    async def post(client: httpx.AsyncClient, token: str) -> httpx.Response | None:
        try:
            return await client.post("/auth/refresh", json={"refresh_token": token})
        except httpx.TransportError:
            return None

    async def family(chain: Chain) -> None:
        nonlocal rotations
        while time.monotonic() < stop_at:
            current = chain.tokens[-1]
            # Once A is dead, both copies go to B (the load balancer noticed).
            answers = await asyncio.gather(post(ca if a_alive else cb, current), post(cb, current))
            if None in answers:
                chain.lost += 1  # sent to A before or while it died: the answer is lost
                retry = await post(cb, current)  # within the grace window
                answers = [r for r in answers if r is not None] + [retry]
            ok = [r for r in answers if r is not None and r.status_code == 200]
            others = [(r.status_code, r.text) for r in answers
                      if r is not None and r.status_code != 200]  # fmt: skip
            if others:
                chain.anomalies.append(f"refresh of a current token answered {others}")
                return
            successors = {r.json()["refresh_token"] for r in ok}
            if len(successors) != 1:
                chain.anomalies.append(f"{len(successors)} successors of one token")
                return
            chain.tokens.append(successors.pop())
            chain.access = ok[0].json()["access_token"]
            rotations += 1

    async def killer() -> None:
        await asyncio.sleep(max(0.0, kill_at - time.monotonic()))
        nonlocal a_alive
        await asyncio.to_thread(a.kill)
        a_alive = False

    try:
        await asyncio.gather(killer(), *(family(c) for c in chains))
    finally:
        await ca.aclose()
        await cb.aclose()
    return rotations


@pytest.mark.parametrize("store", ["redis", "postgres"])
def test_sigkill_during_refresh_burst_leaves_one_live_token_per_family(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    if store == "redis":
        redis: RedisServer = request.getfixturevalue("private_redis")
        users = request.getfixturevalue("postgres_url")
        sessions = unique_redis_url(redis.url)
    else:
        users = sessions = request.getfixturevalue("postgres_url")
    with cluster(
        tmp_path,
        ("A", "B"),
        GATEPASS_DATABASE_URL=users,
        GATEPASS_SESSION_STORE_URL=sessions,
        GATEPASS_REFRESH_GRACE=str(GRACE),
    ) as (a, b):
        email = f"burst-{secrets.token_hex(4)}@example.com"
        assert a.register(email).status_code == 201
        chains = []
        for _ in range(FAMILIES):
            pair = b.token(email).json()
            chains.append(Chain([pair["refresh_token"]], pair["access_token"]))
        start = time.monotonic()
        rotations = asyncio.run(_refresh_burst(a, b, chains, start + 1.0, start + 2.5))
        lost = sum(c.lost for c in chains)
        print(f"\n[{store}] {rotations} rotations over {FAMILIES} families; "
              f"{lost} requests to A lost to the kill (retried on B)")  # fmt: skip
        anomalies = [x for c in chains for x in c.anomalies]
        assert not anomalies, anomalies
        assert lost >= 1, "the kill hit no request in flight: the test proved nothing"
        assert all(len(c.tokens) >= 3 for c in chains), [len(c.tokens) for c in chains]

        # A comes back on the same port, data dir and store; probes go to both.
        a.start()
        time.sleep(GRACE + 0.5)  # past the grace window: a replay is a replay now
        worked: list[int] = []
        for f, chain in enumerate(chains):
            probe = (a, b)[f % 2]
            newest, older = chain.tokens[-1], chain.tokens[:-1]
            alive = 0
            if f % 2 == 0:
                # Newest first: it must be the one live token ...
                r = probe.refresh(newest)
                assert r.status_code == 200, (f, r.status_code, r.text)
                alive += 1
                nxt = r.json()["refresh_token"]
                # ... and no older token works (each replay revokes the family) ...
                for token in reversed(older[-3:]):
                    r = (b, a)[f % 2].refresh(token)
                    assert r.status_code == 401 and r.json()["error"] == "invalid_grant"
                # ... after which the family is dead, its newest token included.
                assert probe.refresh(nxt).status_code == 401
            else:
                # An older token first: a replay; then the newest is dead too.
                for token in (older[-1], older[0], newest):
                    r = probe.refresh(token)
                    if r.status_code == 200:
                        alive += 1
                    else:
                        assert r.status_code == 401 and r.json()["error"] == "invalid_grant"
                assert alive == 0, f"family {f}: a rotated token still worked after the kill"
                assert probe.me(bearer=chain.access).status_code == 401
            worked.append(alive)
        print(f"[{store}] live refresh tokens per family after the kill: {worked}")
        assert all(n <= 1 for n in worked)
