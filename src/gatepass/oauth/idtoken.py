"""ID token checks (OIDC Core §3.1.3.7) with keys from the issuer's JWKS.

Signature first, with an algorithm from our allow-list (asymmetric only:
never ``none``, never HS256 keyed by a public value), then ``iss``, ``aud``,
``azp``, ``exp``/``iat``/``nbf`` with leeway, and the transaction's
``nonce``.  Keys are cached by ``kid``; an unknown kid refetches the JWKS at
most once a minute, so a flood of forged kids cannot turn us into a
request amplifier against the provider.  Keys come only from ``jwks_uri`` of
the discovery document, never from token headers (``jku``, ``jwk``, ``x5u``).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from gatepass.errors import OAuthFailed

Key = RSAKey | ECKey | OKPKey
#: Asymmetric algorithms only.
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_ID_TOKEN = 16 * 1024
REFETCH_INTERVAL = 60.0
LEEWAY = 60.0


class JWKSCache:
    def __init__(
        self,
        uri: str,
        fetch: Callable[[str], Awaitable[Mapping[str, Any]]],
        clock: Callable[[], float],
    ) -> None:
        self.uri = uri
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, tuple[Key, str | None]] = {}
        self._fetched_at = -math.inf
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> tuple[Key, str | None] | None:
        """The key (and its pinned ``alg``, if the JWK names one) or None."""
        found = self._lookup(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self._lookup(kid)
            if found is None and self._clock() - self._fetched_at >= REFETCH_INTERVAL:
                self._fetched_at = self._clock()
                self._keys = _parse_jwks(await self._fetch(self.uri))
                found = self._lookup(kid)
        return found

    def _lookup(self, kid: str | None) -> tuple[Key, str | None] | None:
        if kid is not None:
            return self._keys.get(kid)
        # No kid: acceptable only when the set leaves no choice.
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None


def _parse_jwks(document: Mapping[str, Any]) -> dict[str, tuple[Key, str | None]]:
    keys: dict[str, tuple[Key, str | None]] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        return keys
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in ("RSA", "EC", "OKP") or any(
            member in entry for member in ("d", "p", "q", "k")
        ):
            continue  # symmetric or private material has no place in a JWKS
        try:
            key = import_key(entry)
        except (JoseError, ValueError, TypeError):
            continue
        if not isinstance(key, RSAKey | ECKey | OKPKey):
            continue
        alg, kid = entry.get("alg"), entry.get("kid")
        keys[kid if isinstance(kid, str) else f"#{index}"] = (
            key, alg if isinstance(alg, str) else None,
        )  # fmt: skip
    return keys


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read before any verification: only to pick the key."""
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:
        raise OAuthFailed(reason="id_token_format") from None
    if not isinstance(header, dict):
        raise OAuthFailed(reason="id_token_format")
    return header


async def verify_id_token(
    token: object,
    keys: JWKSCache,
    *,
    algorithms: frozenset[str],
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
) -> dict[str, Any]:
    """The verified claims; raises :class:`OAuthFailed` with a ``reason`` otherwise."""
    if not isinstance(token, str) or not token or len(token) > MAX_ID_TOKEN:
        raise OAuthFailed(reason="id_token_missing")
    if token.count(".") != 2:
        raise OAuthFailed(reason="id_token_format")
    header = _unverified_header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in ALLOWED_ALGORITHMS:
        raise OAuthFailed(reason="id_token_alg")
    if "crit" in header:
        raise OAuthFailed(reason="id_token_crit")
    kid = header.get("kid")
    found = await keys.key_for(kid if isinstance(kid, str) else None)
    if found is None:
        raise OAuthFailed(reason="id_token_unknown_kid")
    key, pinned = found
    if pinned is not None and pinned != alg:
        raise OAuthFailed(reason="id_token_alg")
    try:
        claims = dict(jwt.decode(token, key, algorithms=[alg]).claims)
    except (JoseError, ValueError, TypeError):
        raise OAuthFailed(reason="id_token_signature") from None
    check_claims(claims, issuer=issuer, client_id=client_id, nonce=nonce, now=now)
    return claims


def check_claims(
    claims: Mapping[str, Any], *, issuer: str, client_id: str, nonce: str, now: float
) -> None:
    if claims.get("iss") != issuer:
        raise OAuthFailed(reason="id_token_iss")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise OAuthFailed(reason="id_token_aud")
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise OAuthFailed(reason="id_token_azp")
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", 0)
    if not (_number(exp) and _number(iat) and _number(nbf)):
        raise OAuthFailed(reason="id_token_times")
    assert isinstance(exp, int | float) and isinstance(iat, int | float)
    assert isinstance(nbf, int | float)
    if exp <= now - LEEWAY:
        raise OAuthFailed(reason="id_token_expired")
    if iat > now + LEEWAY or nbf > now + LEEWAY:
        raise OAuthFailed(reason="id_token_not_yet_valid")
    presented = claims.get("nonce")
    if not isinstance(presented, str) or not hmac.compare_digest(
        presented.encode(), nonce.encode()
    ):
        raise OAuthFailed(reason="id_token_nonce")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= 255:
        raise OAuthFailed(reason="id_token_sub")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
