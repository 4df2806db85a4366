"""Signing keys and the key ring: the active key signs, retired keys verify.

A :class:`SigningKey` pins its algorithm: a token is only ever checked with
the algorithm its key was made for, so an RSA public key can never be fed to
HMAC as a secret.  Everything verification needs (public key object, padding,
hash) is prepared once at construction, because preparing the key on every
call is the classic cost of JWT libraries.  Nothing here touches the disk:
:mod:`gatepass.tokens.keyfile` stores a ring.
"""

from __future__ import annotations

import base64
import hmac
import math
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gatepass.errors import ConfigurationError

Algorithm = Literal["EdDSA", "ES256", "RS256", "HS256"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)

#: RS256, chosen by measured cost and reach (bench/jwt_verify.py, 2 cores):
#: a cold verify with every claim check costs ≈ 43 µs against ≈ 100 for
#: ES256 and ≈ 130 for EdDSA (≈ 20 for HS256, which cannot be published), and
#: every JWT library, gateway and OIDC client accepts it, while "EdDSA" is
#: being renamed by RFC 9864.  Its price is paid where it is rare: ≈ 380 µs
#: per issue (once per token; the others 20-55 µs) and size (730-byte access
#: token against 474 for EdDSA).  A repeat verify is a cache hit (≈ 0.4 µs)
#: whatever the algorithm, so pick EdDSA where token size matters more.
DEFAULT_ALGORITHM: Algorithm = "RS256"

MIN_RSA_BITS = 2048
MIN_HMAC_BYTES = 32
# Our own kids are url-safe; anything else in a token header simply misses
# the ring's dict, so this only constrains configuration.
_KID_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | bytes
_Signer = Callable[[bytes], bytes]
_Verifier = Callable[[bytes, bytes], bool]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(size, "big"))


@dataclass(frozen=True, eq=False)  # identity equality: same kid never implies same material
class SigningKey:
    """One key of the ring.  Verifies while ``now < verify_until`` (None: always)."""

    kid: str
    alg: Algorithm
    private_key: PrivateKey = field(repr=False)
    created_at: float
    retired_at: float | None = None
    verify_until: float | None = None
    _sign: _Signer = field(init=False, repr=False)
    _verify: _Verifier = field(init=False, repr=False)
    _public: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not _KID_RE.fullmatch(self.kid):
            raise ConfigurationError("A key id must be 1-128 characters of [A-Za-z0-9_.-].")
        for stamp in (self.created_at, self.retired_at, self.verify_until):
            if stamp is not None and not math.isfinite(stamp):
                raise ConfigurationError("Key timestamps must be finite numbers.")
        sign, verify, public = _prepare(self.alg, self.private_key)
        object.__setattr__(self, "_sign", sign)
        object.__setattr__(self, "_verify", verify)
        object.__setattr__(self, "_public", public)

    def sign(self, signing_input: bytes) -> bytes:
        return self._sign(signing_input)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """Constant-time for HS256; never raises for a malformed signature."""
        return self._verify(signing_input, signature)

    def verifies_at(self, now: float) -> bool:
        return self.verify_until is None or now < self.verify_until

    def public_jwk(self) -> dict[str, str] | None:
        """The RFC 7517 public JWK, or None for HS256 (a secret is never published).

        Built member by member from the public numbers, so no private member
        (d, p, q, dp, dq, qi, k) can slip in.
        """
        pub = self._public
        if isinstance(pub, rsa.RSAPublicKey):
            nums = pub.public_numbers()
            jwk = {"kty": "RSA", "n": _uint(nums.n), "e": _uint(nums.e)}
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            point = pub.public_numbers()
            jwk = {"kty": "EC", "crv": "P-256", "x": _uint(point.x, 32), "y": _uint(point.y, 32)}
        elif pub is not None:
            raw = pub.public_bytes(Encoding.Raw, PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        else:
            return None
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk


def _prepare(alg: str, key: object) -> tuple[_Signer, _Verifier, Any]:
    """Check that the key suits its pinned algorithm; build sign/verify closures."""
    if alg == "HS256":
        if not isinstance(key, bytes) or len(key) < MIN_HMAC_BYTES:
            raise ConfigurationError("An HS256 key must be at least 32 random bytes.")
        secret = key

        def hs_sign(data: bytes) -> bytes:
            return hmac.digest(secret, data, "sha256")

        def hs_verify(data: bytes, sig: bytes) -> bool:
            return hmac.compare_digest(hmac.digest(secret, data, "sha256"), sig)

        return hs_sign, hs_verify, None

    if alg == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigurationError("An RS256 key must have at least 2048 bits.")
        rs_pub, pad, sha = key.public_key(), padding.PKCS1v15(), hashes.SHA256()

        def rs_verify(data: bytes, sig: bytes) -> bool:
            try:
                rs_pub.verify(sig, data, pad, sha)
            except (InvalidSignature, ValueError):
                return False
            return True

        return (lambda data: key.sign(data, pad, sha)), rs_verify, rs_pub

    if (
        alg == "ES256"
        and isinstance(key, ec.EllipticCurvePrivateKey)
        and isinstance(key.curve, ec.SECP256R1)
    ):
        es_pub, ecdsa = key.public_key(), ec.ECDSA(hashes.SHA256())

        def es_sign(data: bytes) -> bytes:
            # JWS wants raw r||s (RFC 7518 §3.4), cryptography speaks DER.
            r, s = decode_dss_signature(key.sign(data, ecdsa))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        def es_verify(data: bytes, sig: bytes) -> bool:
            if len(sig) != 64:  # a DER signature is not a JWS signature
                return False
            der = encode_dss_signature(
                int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            )
            try:
                es_pub.verify(der, data, ecdsa)
            except (InvalidSignature, ValueError):
                return False
            return True

        return es_sign, es_verify, es_pub

    if alg == "EdDSA" and isinstance(key, Ed25519PrivateKey):
        ed_pub = key.public_key()

        def ed_verify(data: bytes, sig: bytes) -> bool:
            try:
                ed_pub.verify(sig, data)
            except (InvalidSignature, ValueError):
                return False
            return True

        return key.sign, ed_verify, ed_pub

    raise ConfigurationError(f"The key does not suit algorithm {alg!r}.")


def generate_key(alg: Algorithm, *, now: float, kid: str | None = None) -> SigningKey:
    """A fresh key.  The default kid is 96 random bits, not an RFC 7638
    thumbprint: a thumbprint of an HS256 key would be a hash of the secret."""
    private: PrivateKey
    if alg == "EdDSA":
        private = Ed25519PrivateKey.generate()
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    elif alg == "HS256":
        private = secrets.token_bytes(MIN_HMAC_BYTES)
    else:
        raise ConfigurationError(f"Unsupported algorithm {alg!r}.")
    return SigningKey(kid or secrets.token_urlsafe(12), alg, private, created_at=now)


class KeyRing:
    """Immutable set of keys by kid; ``active`` signs, the rest only verify."""

    __slots__ = ("_active", "_keys")

    def __init__(self, keys: Iterable[SigningKey], active_kid: str) -> None:
        self._keys: dict[str, SigningKey] = {}
        for key in keys:
            if key.kid in self._keys:
                raise ConfigurationError("Two keys in the ring share a kid.")
            self._keys[key.kid] = key
        active = self._keys.get(active_kid)
        if active is None or active.retired_at is not None or active.verify_until is not None:
            raise ConfigurationError("The active kid must name an unretired key of the ring.")
        self._active = active

    @classmethod
    def generate(cls, alg: Algorithm = DEFAULT_ALGORITHM, *, now: float) -> KeyRing:
        key = generate_key(alg, now=now)
        return cls([key], key.kid)

    @property
    def active(self) -> SigningKey:
        return self._active

    def __iter__(self) -> Iterator[SigningKey]:
        return iter(tuple(self._keys.values()))

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, kid: str, *, now: float) -> SigningKey | None:
        """The key that may verify a token with this kid at ``now``, or None.

        A plain dict lookup: the kid from a token is never a path, a query or
        a URL, and an unknown kid never triggers a fetch.
        """
        key = self._keys.get(kid)
        if key is None or (key.verify_until is not None and now >= key.verify_until):
            return None
        return key

    def jwks(self, now: float) -> dict[str, list[dict[str, str]]]:
        """RFC 7517 key set of every key still verifying; HS256 is never published."""
        out = []
        for key in self._keys.values():
            jwk = key.public_jwk() if key.verifies_at(now) else None
            if jwk is not None:
                out.append(jwk)
        return {"keys": out}

    def rotate(self, alg: Algorithm, *, now: float, retire_after: float) -> KeyRing:
        """A ring whose new key signs; the old active key verifies for
        ``retire_after`` more seconds — pass the access-token TTL plus leeway
        so that it verifies until the last token it signed expires."""
        if not math.isfinite(retire_after) or retire_after < 0:
            raise ConfigurationError("retire_after must be a non-negative number of seconds.")
        new = generate_key(alg, now=now)
        while new.kid in self._keys:  # 96 random bits: only paranoia
            new = generate_key(alg, now=now)
        old = replace(self._active, retired_at=now, verify_until=now + retire_after)
        others = [k for k in self._keys.values() if k.kid != old.kid]
        return KeyRing([*others, old, new], new.kid)

    def prune(self, now: float) -> KeyRing:
        """A ring without the keys that can no longer verify anything."""
        return KeyRing([k for k in self._keys.values() if k.verifies_at(now)], self._active.kid)

    def __repr__(self) -> str:
        return f"KeyRing(active={self._active.kid!r}, kids={list(self._keys)!r})"
