"""No sequence of sign-ins, refreshes and revocations leaves a credential
alive that the listing does not show, or shows one that is dead (issue 10).

A Hypothesis state machine drives the real SessionManager, TokenService and
Logins over the in-memory stores (a product feature, not a double) with a
frozen clock, and after every step compares two views:

* what works: each session token that still loads, each API login whose
  access token verifies (its refresh token is tried in the refresh rule);
* what is listed: ``Logins.list``.

They must be the same set of login ids, every time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gatepass.errors import InvalidGrant, InvalidToken, NotFound
from gatepass.logins import Logins
from gatepass.sessions.manager import SessionManager
from gatepass.stores.memory import MemorySessionStore
from gatepass.tokens.access import AccessTokenCodec
from gatepass.tokens.backends.memory import MemoryRefreshStore, MemoryRevocationStore
from gatepass.tokens.keys import KeyRing
from gatepass.tokens.service import TokenService

NOW = 1_900_000_000.0
RING = KeyRing.generate("HS256", now=NOW - 10)
USERS = ("ada", "bob")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Credential:
    user: str
    login_id: str
    session: str | None = None
    access: str | None = None
    refresh: str | None = None


class LoginsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = Clock()
        self.sessions = SessionManager(MemorySessionStore(), clock=self.clock)
        codec = AccessTokenCodec(
            RING,
            issuer="https://a.test",
            audience="https://a.test",
            # Longer than any run (30 steps of at most 2 minutes): an access
            # token that merely expired would "not work" while still listed.
            ttl=7200,
            clock=self.clock,
        )
        self.tokens = TokenService(
            codec=codec,
            refresh_store=MemoryRefreshStore(),
            revocation=MemoryRevocationStore(),
            server_key=b"s" * 32,
            grace=0,
            clock=self.clock,
        )
        self.logins = Logins(self.sessions, self.tokens)
        self.held: list[Credential] = []

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.loop.close()

    # -- sign-ins ---------------------------------------------------------

    @rule(user=st.sampled_from(USERS))
    def session_login(self, user: str) -> None:
        issued = self.run(self.sessions.create(user))
        self.held.append(Credential(user, issued.record.public_id, session=issued.token))

    @rule(user=st.sampled_from(USERS), kind=st.sampled_from(["api", "browser"]))
    def token_login(self, user: str, kind: str) -> None:
        pair = self.run(self.tokens.issue(user, kind=kind))  # type: ignore[arg-type]
        fid = pair.claims.fid
        assert fid is not None
        self.held.append(
            Credential(user, fid, access=pair.access_token, refresh=pair.refresh_token)
        )

    @rule(seconds=st.integers(min_value=1, max_value=120))
    def time_passes(self, seconds: int) -> None:
        self.clock.now += seconds

    # -- using and ending --------------------------------------------------

    @precondition(lambda self: any(c.refresh for c in self.held))
    @rule(data=st.data())
    def refresh(self, data: st.DataObject) -> None:
        cred = data.draw(st.sampled_from([c for c in self.held if c.refresh]))
        assert cred.refresh is not None
        try:
            pair = self.run(self.tokens.refresh(cred.refresh))
        except InvalidGrant:
            assert cred.login_id not in self._listed(cred.user)
            return
        assert cred.login_id in self._listed(cred.user)
        cred.access, cred.refresh = pair.access_token, pair.refresh_token

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def end_one(self, data: st.DataObject) -> None:
        cred = data.draw(st.sampled_from(self.held))
        listed = cred.login_id in self._listed(cred.user)
        try:
            self.run(self.logins.end(cred.user, cred.login_id))
        except NotFound:
            assert not listed
        else:
            assert listed

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def end_anothers(self, data: st.DataObject) -> None:
        """One user can never end another's login, whatever id they name."""
        cred = data.draw(st.sampled_from(self.held))
        other = next(u for u in USERS if u != cred.user)
        before = self._listed(cred.user)
        try:
            self.run(self.logins.end(other, cred.login_id))
        except NotFound:
            pass
        else:
            raise AssertionError("ended another user's login")
        assert self._listed(cred.user) == before

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def end_others(self, data: st.DataObject) -> None:
        cred = data.draw(st.sampled_from(self.held))
        kept = cred.login_id in self._listed(cred.user)
        self.run(self.logins.end_others(cred.user, keep=cred.login_id))
        assert self._listed(cred.user) == ({cred.login_id} if kept else set())

    @rule(user=st.sampled_from(USERS))
    def end_all(self, user: str) -> None:
        self.run(self.logins.end_all(user))
        assert self._listed(user) == set()

    # -- the invariant -----------------------------------------------------

    def _listed(self, user: str) -> set[str]:
        return {login.id for login in self.run(self.logins.list(user))}

    def _works(self, cred: Credential) -> bool:
        if cred.session is not None:
            return self.run(self.sessions.load(cred.session)) is not None
        assert cred.access is not None
        try:
            self.run(self.tokens.verify(cred.access))
        except InvalidToken:
            return False
        return True

    @invariant()
    def what_works_is_what_is_listed(self) -> None:
        for user in USERS:
            working = {c.login_id for c in self.held if c.user == user and self._works(c)}
            assert working == self._listed(user)


LoginsMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLogins = LoginsMachine.TestCase
