"""Access tokens: RFC 9068 JWTs issued and verified by one service.

Verification is signature first (:func:`gatepass.tokens.jws.decode`), then
every claim against this codec's settings.  A token string that passed once
is remembered, so a repeat costs a dict lookup plus the time checks (``exp``,
``nbf`` and the signing key's ``verify_until`` are re-checked on every call).
Revocation is the caller's job: it needs a store, and this module has no I/O.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gatepass.errors import ConfigurationError, InvalidToken
from gatepass.tokens import jws
from gatepass.tokens.keys import KeyRing

ACCESS_TYP = "at+jwt"
MAX_STRING_CLAIM = 256
MAX_AUDIENCES = 16
# Timestamps beyond year 9999 (or before 1970) are not dates but attacks on
# the arithmetic; 1e300 would make "now < exp" true forever.
MAX_TIMESTAMP = 253_402_300_799


@dataclass(frozen=True)
class AccessClaims:
    sub: str
    jti: str
    iat: float
    exp: float
    nbf: float | None
    iss: str
    aud: str | tuple[str, ...]
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    fid: str | None
    gen: int
    #: Every claim as signed; read-only because verified claims are shared.
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    #: How and when the user signed in (OIDC ``amr`` and ``auth_time``).
    amr: tuple[str, ...] = ()
    auth_time: float | None = None


# token -> (claims, not-after, not-before or None, key verify_until or None)
_Entry = tuple[AccessClaims, float, float | None, float | None]


class AccessTokenCodec:
    """Issues and verifies access tokens for one issuer and one audience."""

    def __init__(
        self,
        ring_provider: Callable[[], KeyRing] | KeyRing,
        *,
        issuer: str,
        audience: str,
        ttl: int = 300,
        leeway: int = 5,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        if not issuer or not audience:
            raise ConfigurationError("An access-token codec needs an issuer and an audience.")
        if ttl <= 0 or not 0 <= leeway < ttl or cache_size < 0:
            raise ConfigurationError("ttl must be positive, 0 <= leeway < ttl, cache_size >= 0.")
        if isinstance(ring_provider, KeyRing):
            fixed = ring_provider

            def ring_provider() -> KeyRing:
                return fixed

        self._ring: Callable[[], KeyRing] = ring_provider
        self.issuer, self.audience = issuer, audience
        self.ttl, self.leeway, self.clock = ttl, leeway, clock
        self._cache_size = cache_size
        self._cache: dict[str, _Entry] = {}
        self._cache_ring: KeyRing | None = None

    def issue(
        self,
        sub: str,
        *,
        roles: tuple[str, ...] = (),
        scopes: tuple[str, ...] = (),
        fid: str | None = None,
        gen: int = 0,
        amr: tuple[str, ...] = (),
        auth_time: float | None = None,
        email_verified: bool | None = None,
        dbsc: Mapping[str, Any] | None = None,
    ) -> tuple[str, AccessClaims]:
        if not isinstance(sub, str) or not 0 < len(sub) <= MAX_STRING_CLAIM:
            raise ValueError("sub must be a non-empty string")
        if any(not s or " " in s for s in scopes):
            raise ValueError("a scope is a non-empty string without spaces (RFC 6749 §3.3)")
        iat = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": iat,
            "nbf": iat,
            "exp": iat + self.ttl,
            "jti": secrets.token_urlsafe(16),  # 128 bits from the CSPRNG
            "roles": list(roles),
            "scope": " ".join(scopes),
            "gen": gen,
        }
        if fid is not None:
            claims["fid"] = fid
        if amr:
            claims["amr"] = list(amr)
        if auth_time is not None:
            claims["auth_time"] = int(auth_time)
        if email_verified is not None:
            # OIDC's claim name, so relying services read it without a mapping.
            claims["email_verified"] = email_verified
        if dbsc is not None:
            # The login's device binding, as the auth path needs it (see
            # gatepass.dbsc): a bound login's tokens need the bound cookie.
            claims["dbsc"] = dict(dbsc)
        token = jws.encode(claims, self._ring().active, typ=ACCESS_TYP)
        return token, self._claims(claims)

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid access token; InvalidToken otherwise."""
        if not isinstance(token, str):  # checked before it becomes a dict key
            raise InvalidToken(reason="size")
        now = self.clock()
        ring = self._ring()
        if ring is not self._cache_ring:
            # A new ring may have dropped a key (say, a compromised one):
            # nothing verified under the old ring is trusted any more.
            self._cache.clear()
            self._cache_ring = ring
        entry = self._cache.get(token)
        if entry is None:
            header, raw = jws.decode(token, ring, now=now)
            claims = self._check(header, raw, now)
            key = ring.get(header["kid"], now=now)
            until = key.verify_until if key is not None else None
            entry = (claims, claims.exp + self.leeway, claims.nbf, until)
            if self._cache_size:
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()  # O(1) amortised and cannot be gamed into O(n)
                self._cache[token] = entry
        claims, not_after, not_before, key_until = entry
        if now >= not_after:
            raise InvalidToken(reason="expired")
        if not_before is not None and now < not_before - self.leeway:
            raise InvalidToken(reason="not_yet_valid")
        if key_until is not None and now >= key_until:
            raise InvalidToken(reason="key_retired")
        return claims

    def _check(self, header: Mapping[str, Any], raw: dict[str, Any], now: float) -> AccessClaims:
        # Token type first: an ID token or a refresh JWT signed by the same
        # key must not pass as an access token (RFC 8725 §3.11).
        if header.get("typ") != ACCESS_TYP:
            raise InvalidToken(reason="typ")
        iss = raw.get("iss")
        if not isinstance(iss, str) or iss != self.issuer:
            raise InvalidToken(reason="iss")
        aud = raw.get("aud")
        if isinstance(aud, list):
            if not (0 < len(aud) <= MAX_AUDIENCES and all(isinstance(a, str) for a in aud)):
                raise InvalidToken(reason="aud")
            aud = tuple(aud)
            if self.audience not in aud:  # element equality, never substring
                raise InvalidToken(reason="aud")
        elif not isinstance(aud, str) or aud != self.audience:
            raise InvalidToken(reason="aud")
        exp = _timestamp(raw, "exp")
        iat = _timestamp(raw, "iat")
        nbf = _timestamp(raw, "nbf") if "nbf" in raw else None
        if now >= exp + self.leeway:
            raise InvalidToken(reason="expired")
        if nbf is not None and now < nbf - self.leeway:
            raise InvalidToken(reason="not_yet_valid")
        if iat > now + self.leeway:
            raise InvalidToken(reason="iat_future")
        for name in ("sub", "jti"):
            value = raw.get(name)
            if not isinstance(value, str) or not 0 < len(value) <= MAX_STRING_CLAIM:
                raise InvalidToken(reason=name)
        roles = raw.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidToken(reason="roles")
        if not isinstance(raw.get("scope"), str):
            raise InvalidToken(reason="scope")
        fid = raw.get("fid")
        if fid is not None and not (isinstance(fid, str) and 0 < len(fid) <= MAX_STRING_CLAIM):
            raise InvalidToken(reason="fid")
        gen = raw.get("gen")
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 0:
            raise InvalidToken(reason="gen")
        amr = raw.get("amr", [])
        if not (isinstance(amr, list) and len(amr) <= 8
                and all(isinstance(a, str) and 0 < len(a) <= 32 for a in amr)):  # fmt: skip
            raise InvalidToken(reason="amr")
        if "auth_time" in raw:
            auth_time = _timestamp(raw, "auth_time")
            if auth_time > now + self.leeway:
                raise InvalidToken(reason="auth_time")
        if "email_verified" in raw and not isinstance(raw["email_verified"], bool):
            raise InvalidToken(reason="email_verified")
        return self._claims(raw, aud=aud)

    @staticmethod
    def _claims(raw: dict[str, Any], aud: str | tuple[str, ...] | None = None) -> AccessClaims:
        return AccessClaims(
            sub=raw["sub"],
            jti=raw["jti"],
            iat=raw["iat"],
            exp=raw["exp"],
            nbf=raw.get("nbf"),
            iss=raw["iss"],
            aud=raw["aud"] if aud is None else aud,
            roles=tuple(raw["roles"]),
            scopes=tuple(s for s in raw["scope"].split(" ") if s),
            fid=raw.get("fid"),
            gen=raw["gen"],
            raw=MappingProxyType(raw),
            amr=tuple(raw.get("amr", ())),
            auth_time=raw.get("auth_time"),
        )


def _timestamp(raw: Mapping[str, Any], name: str) -> float:
    value = raw.get(name)
    # bool is an int in Python and "1" is not a number in JSON.
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidToken(reason=name)
    if not (math.isfinite(value) and 0 <= value <= MAX_TIMESTAMP):
        raise InvalidToken(reason=name)
    return value
