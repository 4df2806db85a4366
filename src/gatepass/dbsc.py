"""Device Bound Session Credentials (W3C DBSC): the pure parts.

A browser that supports DBSC answers our registration offer with a *proof*:
a JWT it signs with a private key it keeps, carrying the public key as an
embedded JWK.  From then on the login is *bound*: besides its long-lived
credential (the session cookie, or the JWT cookies) every request needs a
short-lived *bound cookie*, which only the key holder can renew, by signing
a fresh challenge.  A copied session cookie stops working within the bound
cookie's lifetime.

This module has no I/O: header parsing (the spec's structured-field strings
and the bare tokens Chromium sends), proof verification, and the bound
cookie's value.  The server's routes (:mod:`gatepass.server.dbsc_routes`)
add the stores.

The bound cookie's value is ``<expiry>.<MAC>``: an HMAC-SHA256, under a key
derived from the server secret, over the login's DBSC session identifier
and the expiry.  Checking it costs one HMAC and no store round trip; it is
tied to one login (the identifier is random per registration and stored
only on that login's record, which the auth path loads anyway), cannot be
forged without the server secret, and cannot be stretched (the expiry is
inside the MAC).  Ending the login ends it too: the record is gone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gatepass.cookies import CookieSpec, read_cookie
from gatepass.errors import InvalidRequest, InvalidToken
from gatepass.onetime.store import OneTimeTokenStore
from gatepass.throttle.quota import Quota
from gatepass.tokens import jws

#: The bound cookie (SPEC "Device-bound sessions").
BOUND_COOKIE_NAME = "__Host-gatepass-bound"
BOUND_COOKIE = CookieSpec(name=BOUND_COOKIE_NAME, same_site="lax")
#: Pinned: the two algorithms the spec allows with a key ("none" never).
ALGORITHMS = ("ES256", "RS256")
PROOF_TYP = "dbsc+jwt"
#: Longest header value we parse (a proof with an RSA-4096 JWK is ~1.5 KiB).
MAX_HEADER = jws.MAX_TOKEN_LENGTH
MAX_JTI = 256
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
#: The key in a login's data (session record data / refresh family data).
DATA_KEY = "dbsc"

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{22}")
# What a bare header value may hold: a JWT or one of our ids (Chromium sends
# these without the sf-string quotes).
_BARE = re.compile(r"[A-Za-z0-9._~+/=-]+")
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class InvalidProof(InvalidRequest):
    """A DBSC proof or header that cannot be accepted.

    ``reason`` names the failed check for logs and tests; it never holds the
    proof or any part of it.
    """

    code = "invalid_dbsc_proof"
    default_detail = "The device-binding proof is invalid."

    def __init__(self, detail: str | None = None, *, reason: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


# -- headers -----------------------------------------------------------------


def header_string(value: str | None) -> str | None:
    """The string in a DBSC request header, sf-string or bare; None if absent.

    ``"abc";p=1`` and ``abc`` both give ``abc`` (parameters are ignored, as
    the spec asks).  Raises InvalidProof for anything else: an unterminated
    or badly escaped string, characters outside a token, an oversized value.
    """
    if value is None:
        return None
    value = value.strip(" \t")
    if not value:
        raise InvalidProof("The header is empty.", reason="header_empty")
    if len(value) > MAX_HEADER:
        raise InvalidProof("The header is too large.", reason="header_size")
    if value[0] == '"':
        out: list[str] = []
        i = 1
        while i < len(value):
            ch = value[i]
            if ch == "\\":
                if i + 1 >= len(value) or value[i + 1] not in '"\\':
                    raise InvalidProof("The header is not a valid string.", reason="header_escape")
                out.append(value[i + 1])
                i += 2
                continue
            if ch == '"':
                rest = value[i + 1 :]
                if rest and not rest.lstrip(" ").startswith(";"):
                    raise InvalidProof("The header is not a valid string.", reason="header_trail")
                text = "".join(out)
                if not text:
                    raise InvalidProof("The header is empty.", reason="header_empty")
                return text
            if not " " <= ch <= "~":
                raise InvalidProof("The header is not a valid string.", reason="header_char")
            out.append(ch)
            i += 1
        raise InvalidProof("The header is not a valid string.", reason="header_unterminated")
    bare = value.split(";", 1)[0].strip(" ")
    if not bare or _BARE.fullmatch(bare) is None:
        raise InvalidProof("The header is not a valid token.", reason="header_token")
    return bare


def sf_string(value: str) -> str:
    """``value`` as an RFC 9651 sf-string (our values never need escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def registration_header(path: str, challenge: str, authorization: str) -> str:
    """The ``Secure-Session-Registration`` offer (the spec's form, which
    Chromium 156 accepts)."""
    algs = " ".join(ALGORITHMS)
    return (
        f"({algs});path={sf_string(path)};challenge={sf_string(challenge)}"
        f";authorization={sf_string(authorization)}"
    )


def challenge_header(challenge: str, session_id: str) -> str:
    """The ``Secure-Session-Challenge`` of a refresh."""
    return f"{sf_string(challenge)};id={sf_string(session_id)}"


def is_session_id(value: object) -> bool:
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


# -- proofs ------------------------------------------------------------------


PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class Proof:
    """A verified proof: its challenge (``jti``), claims, and the key that signed it."""

    alg: str
    #: The public key as a minimal JWK (what a login stores).
    jwk: dict[str, str]
    jti: str
    claims: dict[str, Any]


def _b64(segment: str, what: str) -> bytes:
    try:
        return jws._b64decode(segment, what)
    except InvalidToken:
        raise InvalidProof(reason=f"{what}_base64") from None


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        return jws._parse_json(data, what)
    except InvalidToken:
        raise InvalidProof(reason=f"{what}_json") from None


def _int_member(jwk: dict[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise InvalidProof("The proof's key is invalid.", reason="jwk_member")
    if _COMPACT.fullmatch(f"{value}.a.a") is None:
        raise InvalidProof("The proof's key is invalid.", reason="jwk_member")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidProof("The proof's key is invalid.", reason="jwk_member") from None


def load_jwk(jwk: object, alg: str) -> tuple[PublicKey, dict[str, str]]:
    """The public key of a JWK, if its type is the one ``alg`` needs.

    ES256 needs ``kty: EC`` on P-256; RS256 needs ``kty: RSA`` of 2048 to
    8192 bits.  A JWK with private members is refused.  Returns the key and
    its minimal JWK (only the public members, in a fixed form).
    """
    if not isinstance(jwk, dict):
        raise InvalidProof("The proof carries no key.", reason="jwk_missing")
    if any(k in jwk for k in ("d", "p", "q", "dp", "dq", "qi", "k", "oth")):
        raise InvalidProof("The proof's key must be a public key.", reason="jwk_private")
    kty = jwk.get("kty")
    if alg == "ES256":
        if kty != "EC" or jwk.get("crv") != "P-256":
            raise InvalidProof("The proof's key does not match its alg.", reason="jwk_kty")
        x, y = _int_member(jwk, "x"), _int_member(jwk, "y")
        if len(x) != 32 or len(y) != 32:
            raise InvalidProof("The proof's key is invalid.", reason="jwk_member")
        try:
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            )
            key: PublicKey = numbers.public_key()
        except ValueError:  # not a point on the curve
            raise InvalidProof("The proof's key is invalid.", reason="jwk_point") from None
        return key, {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}
    if alg == "RS256":
        if kty != "RSA":
            raise InvalidProof("The proof's key does not match its alg.", reason="jwk_kty")
        n = int.from_bytes(_int_member(jwk, "n"), "big")
        e = int.from_bytes(_int_member(jwk, "e"), "big")
        if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS or e < 3 or e % 2 == 0:
            raise InvalidProof("The proof's key is too weak.", reason="jwk_size")
        try:
            key = rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError:
            raise InvalidProof("The proof's key is invalid.", reason="jwk_member") from None
        return key, {"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}
    raise InvalidProof("The proof's algorithm is not allowed.", reason="alg")


def _verify(key: PublicKey, alg: str, signature: bytes, message: bytes) -> bool:
    try:
        if alg == "ES256":
            if len(signature) != 64 or not isinstance(key, ec.EllipticCurvePublicKey):
                return False
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
            return True
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            return True
    except InvalidSignature:
        return False
    return False


def verify_proof(token: str, *, registered: tuple[str, dict[str, str]] | None = None) -> Proof:
    """Check a DBSC proof's form and signature; returns it.  InvalidProof otherwise.

    Registration (``registered`` None): the key is the proof's embedded
    ``jwk``, whose type must be the one its ``alg`` needs.  Refresh:
    ``registered`` is the login's ``(alg, jwk)``; the proof's ``alg`` must be
    that very one and the embedded ``jwk``, if any, is ignored: the key
    comes from the login, never from the token.

    The challenge (``jti``) is returned, not judged: the caller takes it from
    the store (single use).
    """
    if not isinstance(token, str) or len(token) > MAX_HEADER:
        raise InvalidProof(reason="size")
    if _COMPACT.fullmatch(token) is None:
        raise InvalidProof("The proof is not a JWT.", reason="format")
    head_seg, body_seg, sig_seg = token.split(".")
    header = _json(_b64(head_seg, "header"), "header")
    if header.get("typ") != PROOF_TYP:
        raise InvalidProof("The proof's typ must be dbsc+jwt.", reason="typ")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise InvalidProof("The proof's algorithm is not allowed.", reason="alg")
    if "crit" in header:
        raise InvalidProof(reason="crit")
    if registered is None:
        key, jwk = load_jwk(header.get("jwk"), alg)
    else:
        registered_alg, jwk = registered
        if alg != registered_alg:
            raise InvalidProof("The proof's algorithm is not the registered one.",
                               reason="alg_mismatch")  # fmt: skip
        key, jwk = load_jwk(jwk, alg)
    signature = _b64(sig_seg, "signature")
    if not _verify(key, alg, signature, f"{head_seg}.{body_seg}".encode("ascii")):
        raise InvalidProof("The proof's signature is invalid.", reason="signature")
    claims = _json(_b64(body_seg, "payload"), "payload")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise InvalidProof("The proof carries no challenge.", reason="jti")
    return Proof(alg=alg, jwk=jwk, jti=jti, claims=claims)


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url): a short, safe name for a key."""
    members = ("crv", "kty", "x", "y") if jwk.get("kty") == "EC" else ("e", "kty", "n")
    canonical = "{" + ",".join(f'"{m}":"{jwk[m]}"' for m in members) + "}"
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# -- the bound cookie ------------------------------------------------------------


_COOKIE_LABEL = b"gatepass-dbsc-bound-cookie\0"
_MAC_BYTES = 32
_COOKIE_VALUE = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


@dataclass
class BoundCookies:
    """Makes and checks bound cookie values (HMAC; no I/O).

    ``secrets`` are the server's secrets, newest first: the first signs,
    all verify (rotation, as for CSRF tokens).  A key of its own is derived
    from each, so no other HMAC of the server can be replayed as a cookie.
    """

    secrets: Sequence[bytes]
    ttl: int = 600
    clock: Callable[[], float] = field(default=time.time)
    spec: CookieSpec = BOUND_COOKIE
    _keys: list[bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ValueError("BoundCookies needs at least one secret")
        self._keys = [
            hmac.new(s, b"gatepass-dbsc-key", hashlib.sha256).digest() for s in self.secrets
        ]

    def _mac(self, key: bytes, session_id: str, expires: int) -> str:
        # hmac.digest: the one-shot C path (no HMAC object per request).
        message = b"%s%s\0%d" % (_COOKIE_LABEL, session_id.encode("ascii"), expires)
        digest = hmac.digest(key, message, "sha256")[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def value(self, session_id: str) -> str:
        expires = int(self.clock()) + self.ttl
        return f"{expires}.{self._mac(self._keys[0], session_id, expires)}"

    def header(self, session_id: str) -> str:
        """``Set-Cookie`` for a fresh bound cookie of this DBSC session."""
        return self.spec.header(self.value(session_id), max_age=self.ttl)

    def valid(self, value: str | None, session_id: str) -> bool:
        """Whether ``value`` is a live bound cookie of this DBSC session."""
        if value is None:
            return False
        match = _COOKIE_VALUE.fullmatch(value)
        if match is None:
            return False
        expires = int(match.group(1))
        now = self.clock()
        # Live, and not living longer than this server would ever grant.
        if not now < expires <= now + self.ttl + 5:
            return False
        mac = match.group(2)
        return any(
            hmac.compare_digest(mac, self._mac(key, session_id, expires)) for key in self._keys
        )

    def check(self, cookie_header: str | None, binding: object) -> bool:
        """The auth path's test for a login whose data holds ``binding``.

        ``binding`` is the login's ``data["dbsc"]``: a dict with ``sid`` once
        bound, or with ``by`` (a deadline) while a required binding is still
        awaited.  True when the request may be authenticated as that login.
        """
        # Only the two shapes this module writes authenticate; anything else
        # under the key is not ours to trust (fail closed).
        if not isinstance(binding, dict):
            return False
        if "sid" in binding:
            sid = binding["sid"]
            return isinstance(sid, str) and self.valid(
                read_cookie(cookie_header, self.spec.name), sid
            )
        by = binding.get("by")
        return isinstance(by, int | float) and not isinstance(by, bool) and self.clock() < by


# -- the server side's state -----------------------------------------------------


REGISTER_PATH = "/auth/dbsc/register"
REFRESH_PATH = "/auth/dbsc/refresh"
#: Seconds a registration offer's challenge works; also the window in which
#: a login of a role that must bind works unbound.
REGISTRATION_TTL = 300
#: Seconds a refresh challenge works (the browser answers at once).
REFRESH_CHALLENGE_TTL = 60
PURPOSE_REGISTER = "dbsc-register"
PURPOSE_REFRESH = "dbsc-refresh"
#: Paths left out of the DBSC scope: nothing there needs the login.
UNBOUND_PATHS = ("/static/", "/favicon.ico")


def _hash(challenge: str) -> str:
    return hashlib.sha256(challenge.encode()).hexdigest()


@dataclass
class DeviceBinding:
    """The server's DBSC parts: the bound cookies, the challenges, the quota."""

    cookies: BoundCookies
    challenges: OneTimeTokenStore
    refreshes: Quota
    #: Our public origin (``https://host[:port]``): the sessions' scope.
    origin: str
    required_roles: frozenset[str] = frozenset()
    keys: Sequence[bytes] = ()
    clock: Callable[[], float] = field(default=time.time)

    def authorization(self, challenge: str) -> str:
        """The offer's ``authorization`` value, derived from its challenge: it
        proves that a registration answers an offer of ours."""
        key = self.keys[0] if self.keys else b""
        mac = hmac.new(key, b"gatepass-dbsc-authorization\0" + challenge.encode(), "sha256")
        return mac.hexdigest()[:32]

    async def issue(self, purpose: str, user_id: str, ref: str, ttl: float) -> str:
        challenge = secrets.token_urlsafe(32)
        await self.challenges.put(
            _hash(challenge), purpose=purpose, user_id=user_id, data=ref,
            expires_at=self.clock() + ttl,
        )  # fmt: skip
        return challenge

    async def take(self, purpose: str, proof: Proof, user_id: str, ref: str) -> None:
        """Take the proof's challenge (single use): it must be ours, live, and
        issued for this login.  InvalidProof otherwise."""
        grant = await self.challenges.take(_hash(proof.jti), purpose=purpose, now=self.clock())
        if grant is None:
            raise InvalidProof("The challenge is unknown, used or expired.", reason="challenge")
        if grant.user_id != user_id or not hmac.compare_digest(grant.data, ref):
            raise InvalidProof("The challenge was issued for another login.", reason="login")

    def instructions(self, session_id: str) -> dict[str, Any]:
        """The JSON session instructions (registration and refresh answers)."""
        host = urlsplit(self.origin).hostname or ""
        return {
            "session_identifier": session_id,
            "refresh_url": REFRESH_PATH,
            "scope": {
                "origin": self.origin,
                "include_site": False,
                "scope_specification": [
                    {"type": "exclude", "domain": host, "path": path} for path in UNBOUND_PATHS
                ],
            },
            "credentials": [
                {
                    "type": "cookie",
                    "name": BOUND_COOKIE_NAME,
                    "attributes": "Path=/; Secure; HttpOnly; SameSite=Lax",
                }
            ],
        }
