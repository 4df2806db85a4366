"""A DBSC client in Python: keys from ``cryptography``, proofs signed by hand.

What a browser with Device Bound Session Credentials does, written out so
the API tests can do it (and do it wrong on purpose).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

REGISTER = "/auth/dbsc/register"
REFRESH = "/auth/dbsc/refresh"
BOUND = "__Host-gatepass-bound"

_OFFER = re.compile(
    r'^\(ES256 RS256\);path="(?P<path>[^"]+)";challenge="(?P<challenge>[^"]+)"'
    r';authorization="(?P<authorization>[^"]+)"$'
)
_CHALLENGE = re.compile(r'^"(?P<challenge>[^"]+)";id="(?P<id>[^"]+)"$')


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Offer:
    path: str
    challenge: str
    authorization: str


def offer_of(response: httpx.Response) -> Offer:
    value = response.headers.get("secure-session-registration")
    assert value is not None, "no registration offer"
    match = _OFFER.match(value)
    assert match, value
    return Offer(match["path"], match["challenge"], match["authorization"])


def challenge_of(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 403, response.text
    match = _CHALLENGE.match(response.headers["secure-session-challenge"])
    assert match, response.headers["secure-session-challenge"]
    return match["challenge"], match["id"]


class DeviceKey:
    """A browser's session key pair."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            numbers = self.private.public_key().public_numbers()
            assert isinstance(numbers, ec.EllipticCurvePublicNumbers)
            self.jwk: dict[str, str] = {
                "kty": "EC", "crv": "P-256",
                "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big")),
            }  # fmt: skip
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            rsa_numbers = self.private.public_key().public_numbers()
            n = rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")
            self.jwk = {"kty": "RSA", "n": b64(n), "e": b64(rsa_numbers.e.to_bytes(3, "big"))}

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.private.sign(message, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.private.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def proof(
        self, jti: str, authorization: str | None = None, *, header: dict[str, Any] | None = None,
        embed: bool = True,
    ) -> str:  # fmt: skip
        head: dict[str, Any] = {"alg": self.alg, "typ": "dbsc+jwt"}
        if embed:
            head["jwk"] = self.jwk
        head.update(header or {})
        claims: dict[str, Any] = {"jti": jti}
        if authorization is not None:
            claims["authorization"] = authorization
        signing_input = f"{b64json(head)}.{b64json(claims)}"
        return f"{signing_input}.{b64(self.sign(signing_input.encode()))}"

    def register(self, client: Any, offer: Offer, **kwargs: Any) -> httpx.Response:
        proof = self.proof(offer.challenge, offer.authorization)
        headers = {"secure-session-response": proof, **kwargs.pop("headers", {})}
        response: httpx.Response = client.post(offer.path, headers=headers, **kwargs)
        return response

    def refresh(self, client: Any, session_id: str, **kwargs: Any) -> httpx.Response:
        """The browser's two-step refresh: get a challenge, answer it."""
        first = client.post(REFRESH, headers={"sec-secure-session-id": session_id}, **kwargs)
        challenge, sid = challenge_of(first)
        assert sid == session_id
        response: httpx.Response = client.post(
            REFRESH,
            headers={
                "sec-secure-session-id": session_id,
                "secure-session-response": self.proof(challenge, embed=False),
            },
            **kwargs,
        )
        return response
