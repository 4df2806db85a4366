"""Differential tests: gatepass's lean JWS path against joserfc as the oracle.

Both get the same tokens and the same key, joserfc with an allow list of
exactly that key's algorithm.  They must agree on the signature decision:

- gatepass accepts  =>  joserfc accepts (``jws`` and ``jwt`` layer alike);
- gatepass rejects with a signature-stage reason  =>  joserfc rejects;
- gatepass rejects a payload joserfc would take (duplicate keys, depth...)
  only AFTER a signature both agree is good;
- a few header policies are deliberately stricter than RFC 7515 (a ``kid``
  is required, ``crit`` is refused, duplicate header names): joserfc may
  accept those, gatepass never does.

Claims validation (exp, aud, ...) is out of scope here; see test_attacks.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from joserfc import jws as jjws
from joserfc import jwt
from joserfc.jwk import OctKey, import_key

from gatepass.errors import InvalidToken
from gatepass.tokens import jws
from gatepass.tokens.keys import ALGORITHMS, Algorithm, KeyRing, b64url, generate_key

NOW = 1_700_000_000.0
KEYS = {alg: generate_key(alg, now=NOW) for alg in ALGORITHMS}
RINGS = {alg: KeyRing([key], key.kid) for alg, key in KEYS.items()}


def _joserfc_keys(alg: Algorithm) -> tuple[Any, Any]:
    """(verifying key, signing key) for joserfc, from the same material."""
    key = KEYS[alg]
    if isinstance(key.private_key, bytes):
        oct_key = OctKey.import_key(key.private_key)
        return oct_key, oct_key
    jwk = key.public_jwk()
    assert jwk is not None
    pem = key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return import_key(jwk), import_key(pem, jwk["kty"])  # type: ignore[arg-type]


ORACLE = {alg: _joserfc_keys(alg) for alg in ALGORITHMS}

# Refusals that happen before the signature is looked at, by policy.
HEADER_POLICY = {"kid_invalid", "crit", "header_duplicate_key"}
# Refusals that happen only after the signature verified.
PAYLOAD_POLICY = {"payload_json", "payload_not_object", "payload_duplicate_key", "payload_depth"}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ours(token: str, alg: Algorithm) -> tuple[bool, str]:
    try:
        jws.decode(token, RINGS[alg], now=NOW)
    except InvalidToken as err:  # anything else escapes and fails the test
        return False, err.reason
    return True, ""


def theirs(token: str, alg: Algorithm, layer: str = "jws") -> bool:
    key = ORACLE[alg][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "EdDSA is deprecated via RFC 9864"
        try:
            if layer == "jws":
                jjws.deserialize_compact(token, key, algorithms=[alg])
            else:
                jwt.decode(token, key, algorithms=[alg])
        except Exception:  # the oracle's own error zoo: any raise is a rejection
            return False
    return True


def agree(token: str, alg: Algorithm) -> bool:
    accepted, reason = ours(token, alg)
    signature_ok = theirs(token, alg)
    event(f"gatepass {reason or 'accept'} / joserfc {'accept' if signature_ok else 'reject'}")
    if accepted:
        assert signature_ok and theirs(token, alg, "jwt"), "gatepass accepted what joserfc refused"
    elif reason in PAYLOAD_POLICY:
        assert signature_ok, f"gatepass verified a signature joserfc refused ({reason})"
    elif reason not in HEADER_POLICY:
        assert not signature_ok, f"joserfc accepted what gatepass refused ({reason})"
    return accepted


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
CLAIMS = st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=6)
ALG_NAMES = [*ALGORITHMS, "none", "None", "NONE", "", "HS384", "HS512", "RS512", "PS256", "ES384"]


def _b64(segment: str) -> bytes:
    return jws._b64decode(segment, "test")


def mutate(token: str, alg: Algorithm, draw: Any) -> str:
    parts = token.split(".")
    kind = draw(st.sampled_from(MUTATIONS))
    i = draw(st.integers(0, 2))
    if kind == "bitflip":
        raw = bytearray(_b64(parts[i]))
        pos = draw(st.integers(0, len(raw) - 1))
        raw[pos] ^= 1 << draw(st.integers(0, 7))
        parts[i] = b64url(bytes(raw))
    elif kind == "char":
        pos = draw(st.integers(0, len(token) - 1))
        char = draw(st.sampled_from("AQgwBahx09-_=+/. \né\x00"))
        return token[:pos] + char + token[pos + 1 :]
    elif kind == "truncate":
        return token[: draw(st.integers(0, len(token) - 1))]
    elif kind == "swap":
        order = draw(st.permutations([0, 1, 2]).filter(lambda p: p != [0, 1, 2]))
        parts = [parts[j] for j in order]
    elif kind == "borrow":  # a segment from another valid token, maybe another key
        donor_alg = draw(st.sampled_from(ALGORITHMS))
        donor = jws.encode(draw(CLAIMS), KEYS[donor_alg], typ="JWT").split(".")
        parts[i] = donor[i]
    elif kind in ("rewrite_alg", "resign_alg"):
        header = json.loads(_b64(parts[0]))
        header["alg"] = draw(st.sampled_from(ALG_NAMES))
        parts[0] = b64url(json.dumps(header).encode())
        if kind == "resign_alg":  # signed over the new header with the real key
            parts[2] = b64url(KEYS[alg].sign(f"{parts[0]}.{parts[1]}".encode()))
    elif kind == "padding":
        parts[i] += "=" * draw(st.integers(1, 3))
    elif kind == "std_alphabet":
        return token.translate(str.maketrans("-_", "+/"))
    elif kind == "non_canonical":
        if len(parts[i]) % 4 and parts[i][-1] not in "9_-":
            parts[i] = parts[i][:-1] + chr(ord(parts[i][-1]) + 1)
    elif kind == "random_segment":
        parts[i] = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    elif kind == "random_text":
        return draw(st.text(max_size=200))
    elif kind == "random_bytes":
        return draw(st.binary(max_size=200)).decode("latin-1")
    elif kind == "segments":
        extra = draw(st.sampled_from(["", "e30", parts[2]]))
        return (
            ".".join([*parts, extra])
            if draw(st.booleans())
            else ".".join(parts[:i] + parts[i + 1 :])
        )
    return ".".join(parts)


MUTATIONS = [
    "bitflip", "char", "truncate", "swap", "borrow", "rewrite_alg", "resign_alg", "padding",
    "std_alphabet", "non_canonical", "random_segment", "random_text", "random_bytes", "segments",
]  # fmt: skip


@pytest.mark.parametrize("alg", ALGORITHMS)
@SETTINGS
@given(claims=CLAIMS, data=st.data())
def test_valid_and_mutated_tokens_get_the_same_decision(
    alg: Algorithm, claims: dict[str, Any], data: st.DataObject
) -> None:
    token = jws.encode(claims, KEYS[alg], typ="JWT")
    assert agree(token, alg)
    agree(mutate(token, alg, data.draw), alg)


@pytest.mark.parametrize("alg", ALGORITHMS)
@SETTINGS
@given(claims=CLAIMS)
def test_joserfc_signed_tokens_verify_in_gatepass(alg: Algorithm, claims: dict[str, Any]) -> None:
    header = {"alg": alg, "kid": KEYS[alg].kid}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = jwt.encode(header, dict(claims), ORACLE[alg][1], algorithms=[alg])
    assert agree(token, alg)
    got_header, got_claims = jws.decode(token, RINGS[alg], now=NOW)
    assert got_claims == claims
    assert got_header == {"typ": "JWT", **header}


@pytest.mark.parametrize("alg", ALGORITHMS)
@SETTINGS
@given(claims=CLAIMS)
def test_gatepass_signed_tokens_verify_in_joserfc(alg: Algorithm, claims: dict[str, Any]) -> None:
    token = jws.encode(claims, KEYS[alg], typ="at+jwt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoded = jwt.decode(token, ORACLE[alg][0], algorithms=[alg])
    assert decoded.claims == claims
    assert decoded.header == {"alg": alg, "kid": KEYS[alg].kid, "typ": "at+jwt"}


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_signature_encoding_is_the_jws_one(alg: Algorithm) -> None:
    sig = _b64(jws.encode({}, KEYS[alg], typ="JWT").split(".")[2])
    assert len(sig) == {"HS256": 32, "ES256": 64, "EdDSA": 64, "RS256": 256}[alg]  # raw r||s


def test_the_oracle_is_not_blind() -> None:
    # Guards the comparison itself: joserfc must refuse a flipped signature
    # and accept the original, or every "agreement" above is vacuous.
    for alg in ALGORITHMS:
        head, body, sig = jws.encode({"a": 1}, KEYS[alg], typ="JWT").split(".")
        flipped = b64url(bytes([_b64(sig)[0] ^ 1]) + _b64(sig)[1:])
        assert theirs(f"{head}.{body}.{sig}", alg) and not theirs(f"{head}.{body}.{flipped}", alg)
        assert not theirs(f"{head}.{body}.{sig}", "HS256" if alg != "HS256" else "EdDSA")
