"""DBSC proof verification (gatepass.dbsc), differentially against joserfc.

joserfc is the oracle: for the same token and the same public key (joserfc
imports the embedded JWK; its allow list is exactly the proof's pinned
algorithm) the two must agree on the signature decision.  gatepass is
stricter by policy in a few places (``typ`` must be dbsc+jwt, the key type
must be the one the ``alg`` needs, RSA keys of 2048+ bits, no private JWK
members, a ``jti``): joserfc may accept those, gatepass never does.

Plus the header parser (sf-string and bare forms) and the bound cookie.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws as jjws
from joserfc.jwk import ECKey, RSAKey, import_key

from gatepass.dbsc import BoundCookies, InvalidProof, header_string, sf_string, verify_proof
from tests.server.dbsc_helpers import DeviceKey, b64, b64json

KEYS = {"ES256": DeviceKey("ES256"), "RS256": DeviceKey("RS256")}
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _Registry(jjws.JWSRegistry):
    # An RSA JWK in the header is over joserfc's default 512-byte header limit.
    max_header_length = 4096


def oracle_accepts(token: str, jwk: dict[str, Any], alg: str) -> bool:
    try:
        key = import_key(jwk)
        registry = _Registry(algorithms=[alg], strict_check_header=False)
        jjws.deserialize_compact(token, key, algorithms=[alg], registry=registry)
    except Exception:  # joserfc raises a family of its own errors: any is a no
        return False
    return True


def ours_accepts(token: str, registered: tuple[str, dict[str, str]] | None = None) -> bool:
    try:
        verify_proof(token, registered=registered)
    except InvalidProof:
        return False
    return True


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_proofs_signed_by_joserfc_verify_here(alg: str) -> None:
    device = KEYS[alg]
    private = (
        ECKey.import_key(device.private)  # type: ignore[arg-type]
        if alg == "ES256"
        else RSAKey.import_key(device.private)  # type: ignore[arg-type]
    )
    header = {"alg": alg, "typ": "dbsc+jwt", "jwk": device.jwk}
    token = jjws.serialize_compact(header, json.dumps({"jti": "c1"}).encode(), private)
    proof = verify_proof(token)
    assert (proof.alg, proof.jwk, proof.jti) == (alg, device.jwk, "c1")
    assert verify_proof(token, registered=(alg, device.jwk)).jti == "c1"


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_our_test_proofs_verify_in_joserfc(alg: str) -> None:
    device = KEYS[alg]
    token = device.proof("c1", "a1")
    assert oracle_accepts(token, device.jwk, alg)
    assert ours_accepts(token)


@SETTINGS
@given(
    alg=st.sampled_from(["ES256", "RS256"]),
    part=st.sampled_from([0, 1, 2]),
    position=st.integers(min_value=0, max_value=10_000),
    char=st.sampled_from("AQgwBCa_-0."),
)
def test_tampered_proofs_are_refused_by_both(alg: str, part: int, position: int, char: str) -> None:
    device = KEYS[alg]
    token = device.proof("challenge", "auth")
    segments = token.split(".")
    segment = segments[part]
    index = position % len(segment)
    segments[part] = segment[:index] + char + segment[index + 1 :]
    tampered = ".".join(segments)
    if tampered == token:
        return
    ours = ours_accepts(tampered)
    oracle = oracle_accepts(tampered, device.jwk, alg)
    # Never more lenient than the oracle.  (Stricter is allowed: one base64
    # spelling per value, the header rules.)
    assert not ours or oracle, tampered


@SETTINGS
@given(
    alg=st.sampled_from(["ES256", "RS256"]),
    header_alg=st.sampled_from(["ES256", "RS256", "HS256", "none", "ES384", "PS256", "EdDSA", ""]),
)
def test_alg_must_match_the_key_in_both(alg: str, header_alg: str) -> None:
    device = KEYS[alg]
    token = device.proof("c", header={"alg": header_alg})
    ours = ours_accepts(token)
    assert ours == (header_alg == alg)
    assert not ours or oracle_accepts(token, device.jwk, alg)
    # At refresh the registered key decides, not the token's jwk.
    assert ours_accepts(device.proof("c", embed=False), registered=(alg, device.jwk))
    other = "RS256" if alg == "ES256" else "ES256"
    assert not ours_accepts(KEYS[other].proof("c"), registered=(alg, device.jwk))


def test_hs256_with_the_public_key_as_secret() -> None:
    import hashlib
    import hmac

    device = KEYS["RS256"]
    for secret in (json.dumps(device.jwk).encode(), device.jwk["n"].encode()):
        head = b64json({"alg": "HS256", "typ": "dbsc+jwt", "jwk": device.jwk})
        body = b64json({"jti": "c"})
        mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        token = f"{head}.{body}.{b64(mac)}"
        assert not ours_accepts(token)
        assert not ours_accepts(token, registered=("RS256", device.jwk))


def test_policy_stricter_than_the_oracle() -> None:
    device = KEYS["ES256"]
    for token, reason in (
        (device.proof("c", header={"typ": "JWT"}), "typ"),
        (device.proof("c", header={"crit": ["x"], "x": 1}), "crit"),
        (device.proof("", "a"), "jti"),
        (device.proof("c", header={"jwk": {**device.jwk, "d": b64(b"\1" * 32)}}), "jwk_private"),
    ):
        with pytest.raises(InvalidProof) as caught:
            verify_proof(token)
        assert caught.value.reason == reason
        assert caught.value.code == "invalid_dbsc_proof"
    # An RSA key under 2048 bits: refused, however well it signs.
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = DeviceKey("RS256")
    weak.private = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    n = weak.private.public_key().public_numbers().n
    weak.jwk = {"kty": "RSA", "n": b64(n.to_bytes(128, "big")), "e": "AQAB"}
    with pytest.raises(InvalidProof) as caught:
        verify_proof(weak.proof("c"))
    assert caught.value.reason == "jwk_size"
    # An EC point that is not on the curve.
    bad = {**device.jwk, "y": b64((int.from_bytes(b"\1" * 32, "big")).to_bytes(32, "big"))}
    with pytest.raises(InvalidProof) as caught:
        verify_proof(device.proof("c", header={"jwk": bad}))
    assert caught.value.reason in ("jwk_point", "signature")


def test_error_messages_never_echo_the_proof() -> None:
    token = KEYS["ES256"].proof("secret-challenge-value", header={"typ": "nope"})
    with pytest.raises(InvalidProof) as caught:
        verify_proof(token)
    assert "secret-challenge-value" not in str(caught.value)
    assert token[:20] not in str(caught.value)


# -- headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("abc.def-ghi_", "abc.def-ghi_"),
        ('"abc"', "abc"),
        ('"abc";id="x"', "abc"),
        ("abc;id=x", "abc"),
        ('  "a\\"b\\\\c"  ', 'a"b\\c'),
        ('"abc" ; x=1', "abc"),
        (None, None),
    ],
)
def test_header_string_forms(raw: str | None, value: str | None) -> None:
    assert header_string(raw) == value


@pytest.mark.parametrize(
    "raw", ['"abc', '"a\\b"', '"abc"x', '""', "", "a b", "a,b", "é", '"\x01"', "x" * 9000]
)
def test_header_string_refuses(raw: str) -> None:
    with pytest.raises(InvalidProof):
        header_string(raw)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1))
def test_sf_string_round_trips(value: str) -> None:
    assert header_string(sf_string(value)) == value


# -- the bound cookie ---------------------------------------------------------------------


def test_bound_cookie_lifetime_is_bounded_by_this_servers_ttl() -> None:
    secret = [b"s" * 32]
    long_lived = BoundCookies(secret, ttl=86_400).value("A" * 22)
    assert BoundCookies(secret, ttl=86_400).valid(long_lived, "A" * 22)
    # Minted with a longer lifetime (an old setting, a stolen key): refused.
    assert not BoundCookies(secret, ttl=600).valid(long_lived, "A" * 22)


def test_bound_cookie_rotation_of_the_secret() -> None:
    old = BoundCookies([b"o" * 32]).value("A" * 22)
    assert BoundCookies([b"n" * 32, b"o" * 32]).valid(old, "A" * 22)
    assert not BoundCookies([b"n" * 32]).valid(old, "A" * 22)
    # Signs with the newest.
    fresh = BoundCookies([b"n" * 32, b"o" * 32]).value("A" * 22)
    assert BoundCookies([b"n" * 32]).valid(fresh, "A" * 22)


def test_bound_cookie_check_of_a_required_binding() -> None:
    now = time.time()
    cookies = BoundCookies([b"s" * 32], clock=lambda: now)
    assert cookies.check(None, {"by": now + 1})
    assert not cookies.check(None, {"by": now})
    assert not cookies.check(None, {"sid": "A" * 22})
    assert cookies.check(f"__Host-gatepass-bound={cookies.value('A' * 22)}", {"sid": "A" * 22})
    # Anything but the two shapes the server writes is refused (fail closed).
    for odd in (None, {}, {"by": "later"}, {"by": True}, {"sid": 7}, ["A" * 22]):
        assert not cookies.check(None, odd), odd
    # A bound login's id that is not a string is not read as "awaiting
    # binding" through a deadline beside it.
    for sid in (7, None, ["A" * 22]):
        assert not cookies.check(None, {"sid": sid, "by": now + 60}), sid
