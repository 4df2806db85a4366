"""Logins: one model for every credential a sign-in produced.

A *login* is one act of signing in and everything it produced:

* ``"session"``: a cookie session (its store record);
* ``"browser"``: a browser login in JWT mode (an access cookie and a refresh
  family);
* ``"api"``: an API client's token pair (a refresh family).

Each login is carried by exactly one record that already has to exist for
its credential to work: the session record, or the refresh family.  Both
hold the login's kind, device, address and times, and the login's id is
that record's public id, so there is no third record that could drift out
of step with the credentials it describes (a login listed but already dead,
or alive but not listed).  Ending a login ends its record, and with a
family, every access token it issued: they carry its id (``fid``) and the
revocation check refuses them from the next request on, on every instance.

Ids are told apart by shape: a session's public id is 32 hex digits, a
family id 22 base64url characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gatepass.errors import NotFound
from gatepass.identity import Identity
from gatepass.sessions.manager import SessionManager
from gatepass.sessions.record import SessionRecord
from gatepass.tokens.refresh import Family, is_family_id
from gatepass.tokens.service import TokenService

LoginKind = Literal["session", "browser", "api"]


@dataclass(frozen=True, slots=True)
class Login:
    id: str
    kind: LoginKind
    user_id: str
    created_at: float
    #: Sessions: the last renewal (activity, written at most every quarter
    #: idle timeout).  Token logins: the last refresh.
    last_seen_at: float
    ip: str | None
    user_agent: str | None
    #: Whether the login is bound to a key its browser keeps (DBSC).
    device_bound: bool = False

    def as_json(self, *, current: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "created_at": iso(self.created_at),
            "last_seen_at": iso(self.last_seen_at),
            "ip": self.ip,
            "user_agent": self.user_agent,
            "current": current,
            "device_bound": self.device_bound,
        }


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def of_session(record: SessionRecord) -> Login:
    return Login(
        id=record.public_id,
        kind="session",
        user_id=record.user_id,
        created_at=record.created_at,
        last_seen_at=record.last_seen_at,
        ip=record.ip,
        user_agent=record.user_agent,
        device_bound=_bound(record.data),
    )


def of_family(family: Family) -> Login:
    data = family.data
    kind: LoginKind = "browser" if data.get("kind") == "browser" else "api"
    ip, ua = data.get("ip"), data.get("ua")
    return Login(
        id=family.family_id,
        kind=kind,
        user_id=family.user_id,
        created_at=family.created_at,
        last_seen_at=family.rotated_at or family.created_at,
        ip=ip if isinstance(ip, str) else None,
        user_agent=ua if isinstance(ua, str) else None,
        device_bound=_bound(data),
    )


def _bound(data: dict[str, Any]) -> bool:
    binding = data.get("dbsc")
    return isinstance(binding, dict) and isinstance(binding.get("sid"), str)


def current_login_id(identity: Identity | None) -> str | None:
    """The login that authenticated a request, if any."""
    if identity is None:
        return None
    if identity.session is not None:
        return identity.session.public_id
    if identity.claims is not None:
        return identity.claims.fid
    return None


class Logins:
    """Lists and ends a user's logins, whatever their kind.

    Every way to end access (the API, ``/account``, the CLI, a password
    change, disabling the user) goes through here, so none of them can miss
    a kind of credential.
    """

    def __init__(self, sessions: SessionManager, tokens: TokenService | None = None) -> None:
        self.sessions = sessions
        self.tokens = tokens

    async def list(self, user_id: str) -> list[Login]:
        """The user's live logins, oldest first."""
        logins = [of_session(r) for r in await self.sessions.list_user(user_id)]
        if self.tokens is not None:
            logins += [of_family(f) for f in await self.tokens.live_families(user_id)]
        logins.sort(key=lambda login: login.created_at)
        return logins

    async def end(self, user_id: str, login_id: str) -> None:
        """End one of the user's logins.

        Raises NotFound when the user has no such live login, so one user
        can never end (or probe for) another's.
        """
        if is_family_id(login_id):
            if self.tokens is not None and await self.tokens.revoke_family(login_id, owner=user_id):
                return
            raise NotFound("No such login.")
        try:
            await self.sessions.revoke(user_id, login_id)
        except NotFound:
            raise NotFound("No such login.") from None

    async def end_others(self, user_id: str, *, keep: str | None) -> int:
        """End every login of the user but ``keep`` (the caller's); returns how many."""
        ended = 0
        kept_session = None
        if keep is not None and not is_family_id(keep):
            for record in await self.sessions.list_user(user_id):
                if record.public_id == keep:
                    kept_session = record
        if kept_session is None:
            ended += await self.sessions.revoke_all(user_id)
        else:
            ended += await self.sessions.revoke_all(user_id, keep=kept_session)
        if self.tokens is not None:
            for family in await self.tokens.live_families(user_id):
                if family.family_id != keep and await self.tokens.revoke_family(
                    family.family_id, owner=user_id
                ):
                    ended += 1
        return ended

    async def end_all(self, user_id: str) -> int:
        """End every login of the user ("log out everywhere"); returns how many.

        Token logins end by a generation bump (one write that refuses every
        access token issued before it) plus their families.
        """
        ended = await self.sessions.revoke_all(user_id)
        if self.tokens is not None:
            ended += await self.tokens.revoke_user(user_id)
        return ended
