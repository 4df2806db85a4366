"""Opaque refresh tokens in rotating families (RFC 9700 §4.14).

A token reads ``<family_id>.<secret>``.  The family id (16 random bytes) only
routes the lookup: everything about a family lives under one key or row.  The
secret is 32 bytes in two halves:

* the *body* (16 bytes, 128 bits): random in the family's first token; every
  later token's body is *derived* from the token it replaces
  (:func:`successor`), so a store that keeps only SHA-256 hashes can still
  answer a retry of the previous token with the very same successor during
  the grace window, instead of minting a second live token;
* the *tag* (16 bytes): an HMAC of the family id and the body under the
  server key.  It proves the token was issued by this server for this family
  (:func:`is_authentic`), so only a token that really existed can trigger
  reuse detection: a made-up secret naming a live family (the family id is
  visible in every access token's ``fid``) is refused before any store is
  touched, and cannot log anyone out (SECURITY 39).

Only hashes of whole tokens are stored; the tag key never is.

Rotation rules (one atomic step in every store, see :class:`RefreshStore`):

* the current token rotates: it becomes ``previous``, its successor current;
* the previous token, within ``grace`` seconds of that rotation and while its
  successor is still current, gets that same successor again (lost response,
  two tabs refreshing at once) and changes nothing;
* any other token of the family (an older one, the previous one too late or
  after its successor was used) is a replay: the family is revoked.

This module is pure: no I/O, no clock; the stores and the service add those.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from gatepass.errors import ConfigurationError, InvalidGrant

FAMILY_ID_BYTES = 16
SECRET_BYTES = 32
# Unpadded base64url lengths of the two parts; every secret is a 16-byte body
# (random or derived) and a 16-byte tag, so every token has one shape.
FAMILY_ID_LENGTH = 22
SECRET_LENGTH = 43
TOKEN_LENGTH = FAMILY_ID_LENGTH + 1 + SECRET_LENGTH
MIN_SERVER_KEY_BYTES = 32

_DERIVATION_LABEL = b"gatepass-refresh\0"
_TAG_LABEL = b"gatepass-refresh-tag\0"
BODY_BYTES = 16
TAG_BYTES = SECRET_BYTES - BODY_BYTES
# ASCII only: \w and [:alnum:] would admit Unicode digits and letters.
_FAMILY_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_TOKEN = re.compile(r"([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _canonical(part: str) -> bool:
    # Unpadded base64 has spare low bits in its last character; several
    # spellings decode to the same bytes.  Only ours is accepted, so a token
    # has exactly one string form (and one hash).
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return False
    return _b64(raw) == part


def is_family_id(value: object) -> bool:
    """Whether ``value`` is shaped like a family id (any input, never raises)."""
    return isinstance(value, str) and _FAMILY_ID.fullmatch(value) is not None and _canonical(value)


def parse(token: object) -> tuple[str, str] | None:
    """``(family_id, secret)`` of a well-formed token, else None; never raises.

    Checked before any store lookup, so garbage costs one regex and never
    reaches a key name or a query.
    """
    # The length test first: a megabyte of input is dismissed without a scan.
    if not isinstance(token, str) or len(token) != TOKEN_LENGTH:
        return None
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    family_id, secret = match.groups()
    if not (_canonical(family_id) and _canonical(secret)):
        return None
    return family_id, secret


def is_well_formed(token: object) -> bool:
    return parse(token) is not None


def _check_key(server_key: object) -> None:
    if not isinstance(server_key, bytes) or len(server_key) < MIN_SERVER_KEY_BYTES:
        raise ConfigurationError(
            f"The refresh-token key must be at least {MIN_SERVER_KEY_BYTES} bytes."
        )


def _tag(family_id: str, body: bytes, server_key: bytes) -> bytes:
    mac = hmac.new(server_key, _TAG_LABEL + family_id.encode("ascii") + body, hashlib.sha256)
    return mac.digest()[:TAG_BYTES]


def _token(family_id: str, body: bytes, server_key: bytes) -> str:
    return f"{family_id}.{_b64(body + _tag(family_id, body, server_key))}"


def new_token(server_key: bytes) -> str:
    """The first token of a new family: fresh family id, random body, its tag."""
    _check_key(server_key)
    family_id = _b64(secrets.token_bytes(FAMILY_ID_BYTES))
    return _token(family_id, secrets.token_bytes(BODY_BYTES), server_key)


def is_authentic(token: object, server_key: bytes) -> bool:
    """Whether ``token`` is well formed and carries this server's tag for its
    family (any input, never raises; constant-time comparison).

    Says nothing about whether the token is still current: only that it was
    minted here, so that a replay of it can be told from a guess.
    """
    _check_key(server_key)
    parsed = parse(token)
    if parsed is None:
        return False
    family_id, secret = parsed
    raw = base64.urlsafe_b64decode(secret + "=")
    body, tag = raw[:BODY_BYTES], raw[BODY_BYTES:]
    return hmac.compare_digest(tag, _tag(family_id, body, server_key))


def family_id_of(token: object) -> str | None:
    parsed = parse(token)
    return None if parsed is None else parsed[0]


def token_hash(token: str) -> str:
    """What stores keep instead of the token: SHA-256 hex of the whole string."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def successor(token: str, server_key: bytes) -> str:
    """The token that replaces ``token`` in its family; the same every time.

    Determinism is the point: within the grace window a retry of the previous
    token is answered with this same value, re-derived, so two concurrent
    refreshes never hold two different live tokens.  Unpredictable without
    ``server_key`` (HMAC-SHA256), so knowing a hash or the family id gives
    nothing.  The successor carries its own tag, so it is authentic whether
    or not ``token`` was.  A malformed ``token`` raises InvalidGrant, never
    anything else.
    """
    _check_key(server_key)
    parsed = parse(token)
    if parsed is None:
        raise InvalidGrant(reason="malformed")
    digest = hmac.new(server_key, _DERIVATION_LABEL + token.encode("ascii"), hashlib.sha256)
    return _token(parsed[0], digest.digest()[:BODY_BYTES], server_key)


@dataclass(frozen=True)
class Family:
    family_id: str
    user_id: str
    created_at: float
    #: End of the family's life; rotation never moves it (SECURITY 15).
    absolute_expires_at: float
    current_hash: str
    previous_hash: str | None = None
    rotated_at: float | None = None
    #: The user's revocation generation when the family was issued; a family
    #: older than the user's current generation is dead ("log out everywhere").
    generation: int = 0
    revoked: bool = False
    #: The caller's own values (roles, scopes, client id); JSON-serialisable.
    data: dict[str, object] = field(default_factory=dict)


class RotateOutcome(Enum):
    ROTATED = "rotated"
    GRACE = "grace"
    REUSED = "reused"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"


def decide(
    family: Family | None, presented_hash: str, successor_hash: str, *, now: float, grace: float
) -> tuple[RotateOutcome, Family | None, bool]:
    """The rotation rules as one pure function: ``(outcome, family, changed)``.

    In order: no family is UNKNOWN; past the absolute deadline, any token is
    EXPIRED; the current token ROTATES (or is REVOKED when the family is);
    the previous one gets GRACE under the conditions in the module docstring;
    anything else is REUSED and revokes the family.

    ``family`` is the state to answer with, and to write back when ``changed``.
    The SQL and memory stores run it under their lock; the Redis Lua script
    is a line-by-line copy, kept in step by the shared contract suite.
    """
    if family is None:
        return RotateOutcome.UNKNOWN, None, False
    if now >= family.absolute_expires_at:
        return RotateOutcome.EXPIRED, family, False
    if hmac.compare_digest(presented_hash, family.current_hash):
        if family.revoked:
            return RotateOutcome.REVOKED, family, False
        rotated = replace(
            family, previous_hash=presented_hash, current_hash=successor_hash, rotated_at=now
        )
        return RotateOutcome.ROTATED, rotated, True
    if (
        not family.revoked
        and family.previous_hash is not None
        and family.rotated_at is not None
        and hmac.compare_digest(presented_hash, family.previous_hash)
        # The successor must still be current: once it has been used, this
        # retry can no longer be an honest client that lost a response.
        and hmac.compare_digest(successor_hash, family.current_hash)
        and now - family.rotated_at < grace
    ):
        return RotateOutcome.GRACE, family, False
    # A token of this family that is no longer good: replay of a stolen token,
    # or a client that lost track.  Either way nobody can be trusted with the
    # family any more.  Reported as REUSED even when the family is already
    # revoked, so every replay is logged as one.
    return RotateOutcome.REUSED, replace(family, revoked=True), not family.revoked


class RefreshStore(Protocol):
    """Refresh-token families, keyed by family id, with a per-user index.

    Every method raises :class:`~gatepass.errors.StoreUnavailable` when the
    backend cannot be reached.  Families are kept (revoked ones too, so a
    replay after a restart still reads as revoked) until their absolute
    expiry: by TTL on Redis, by :meth:`purge_expired` elsewhere.
    """

    async def create(self, family: Family) -> None:
        """Store a new family; an existing id raises ``ValueError``."""

    async def rotate(
        self,
        family_id: str,
        presented_hash: str,
        successor_hash: str,
        *,
        now: float,
        grace: float,
    ) -> tuple[RotateOutcome, Family | None]:
        """Apply :func:`decide` atomically: concurrent calls are serialised.

        Returns the family as it stands afterwards (revoked for REUSED),
        or None for UNKNOWN.
        """
        ...

    async def get(self, family_id: str) -> Family | None: ...

    async def revoke(self, family_id: str) -> Family | None:
        """Mark the family revoked; returns it, or None when absent."""

    async def set_data(self, family_id: str, data: dict[str, object]) -> bool:
        """Replace the family's data (nothing else); False when it is absent."""
        ...

    async def revoke_user(self, user_id: str) -> int:
        """Revoke every family of a user; returns how many were live."""
        ...

    async def list_user(self, user_id: str) -> list[Family]:
        """The user's stored families, revoked ones included, oldest first.

        Past-deadline families may linger until purged: filter with your clock.
        """
        ...

    async def purge_expired(self, now: float) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
