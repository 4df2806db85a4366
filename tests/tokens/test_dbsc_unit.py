"""DBSC, unit by unit: every refusal with its reason, the header forms, the
key limits, the bound cookie's edges and the challenge check.  The
differential tests against joserfc are in test_dbsc_proofs.py.

Objects under test are built inside each test (tests/mutation/README.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gatepass import dbsc
from gatepass.dbsc import (
    BoundCookies,
    DeviceBinding,
    InvalidProof,
    header_string,
    is_session_id,
    load_jwk,
    verify_proof,
)
from gatepass.onetime.memory import MemoryOneTimeTokenStore
from gatepass.throttle.memory import MemoryThrottleStore
from gatepass.throttle.quota import Quota
from tests.server.dbsc_helpers import DeviceKey, b64, b64json

SID = "A" * 22

#: What the client is told for each refusal (the reason is for logs and tests).
DETAILS = {
    "header_empty": "The header is empty.",
    "header_size": "The header is too large.",
    "header_escape": "The header is not a valid string.",
    "header_trail": "The header is not a valid string.",
    "header_char": "The header is not a valid string.",
    "header_unterminated": "The header is not a valid string.",
    "header_token": "The header is not a valid token.",
    "jwk_missing": "The proof carries no key.",
    "jwk_private": "The proof's key must be a public key.",
    "jwk_kty": "The proof's key does not match its alg.",
    "jwk_member": "The proof's key is invalid.",
    "jwk_point": "The proof's key is invalid.",
    "jwk_size": "The proof's key is too weak.",
    "alg": "The proof's algorithm is not allowed.",
    "alg_mismatch": "The proof's algorithm is not the registered one.",
    "format": "The proof is not a JWT.",
    "typ": "The proof's typ must be dbsc+jwt.",
    "signature": "The proof's signature is invalid.",
    "jti": "The proof carries no challenge.",
    "challenge": "The challenge is unknown, used or expired.",
    "login": "The challenge was issued for another login.",
}
DEFAULT_DETAIL = "The device-binding proof is invalid."


def check_detail(error: InvalidProof) -> None:
    assert error.detail == DETAILS.get(error.reason, DEFAULT_DETAIL), error.reason


def reason_of(token: object, registered: tuple[str, dict[str, str]] | None = None) -> str:
    with pytest.raises(InvalidProof) as caught:
        verify_proof(token, registered=registered)  # type: ignore[arg-type]
    check_detail(caught.value)
    return caught.value.reason


def signed(device: DeviceKey, head: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{b64json(head)}.{b64json(claims)}"
    return f"{signing_input}.{b64(device.sign(signing_input.encode()))}"


# -- headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "header_empty"),
        (" \t ", "header_empty"),
        ('""', "header_empty"),
        ('"";a=1', "header_empty"),
        ("x" * (dbsc.MAX_HEADER + 1), "header_size"),
        ('"a\\', "header_escape"),
        ('"a\\b"', "header_escape"),
        ('"a"b', "header_trail"),
        ('"a" b', "header_trail"),
        ('"a\x7f"', "header_char"),
        ('"a\x1f"', "header_char"),
        ('"a\u00e9"', "header_char"),
        ('"abc', "header_unterminated"),
        ('"', "header_unterminated"),
        ('"a\\"', "header_unterminated"),
        (";a=1", "header_token"),
        ("a b", "header_token"),
        ("a\x00", "header_token"),
        ("\nabc", "header_token"),
        ("abc\r", "header_token"),
        ("\x0babc", "header_token"),
        ("abc\t;x", "header_token"),
        ('"a\\Xb"', "header_escape"),
        ('"a"\t;p', "header_trail"),
        ('"a"X;p', "header_trail"),
        ('"a"\n', "header_trail"),
    ],
)
def test_header_refusals_name_their_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidProof) as caught:
        header_string(raw)
    assert caught.value.reason == reason
    assert caught.value.code == "invalid_dbsc_proof"
    check_detail(caught.value)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ('"a b ~"', "a b ~"),
        ('"a"', "a"),
        ('"a";', "a"),
        ('"a"   ;x', "a"),
        ('\t"a"\t', "a"),
        ('"\\\\"', "\\"),
        ('"\\""', '"'),
        ("abc ; x", "abc"),
        ("A-Za-z0-9._~+/=", "A-Za-z0-9._~+/="),
        ("x" * dbsc.MAX_HEADER, "x" * dbsc.MAX_HEADER),
        ("Xabc", "Xabc"),
        ("abcX;p=1", "abcX"),
        ("abc;x;y", "abc"),
        ('X"a"', None),
    ],
)
def test_header_forms(raw: str, value: str | None) -> None:
    if value is None:  # not an sf-string: read as a bare token, which it is not
        with pytest.raises(InvalidProof):
            header_string(raw)
    else:
        assert header_string(raw) == value


def test_session_ids() -> None:
    assert is_session_id("aZ09_-" * 3 + "abcd")
    for bad in ("A" * 21, "A" * 23, "A" * 21 + "=", "A" * 21 + ".", None, 22, b"A" * 22):
        assert not is_session_id(bad)


def test_the_offer_and_challenge_headers() -> None:
    assert dbsc.registration_header("/p", "c", "a") == (
        '(ES256 RS256);path="/p";challenge="c";authorization="a"'
    )
    assert dbsc.challenge_header("c", SID) == f'"c";id="{SID}"'


# -- keys --------------------------------------------------------------------


def test_load_jwk_refusals() -> None:
    ec_jwk = DeviceKey("ES256").jwk
    cases: list[tuple[object, str, str]] = [
        (None, "ES256", "jwk_missing"),
        ([ec_jwk], "ES256", "jwk_missing"),
        ({**ec_jwk, "kty": "RSA"}, "ES256", "jwk_kty"),
        ({**ec_jwk, "crv": "P-384"}, "ES256", "jwk_kty"),
        ({k: v for k, v in ec_jwk.items() if k != "crv"}, "ES256", "jwk_kty"),
        ({k: v for k, v in ec_jwk.items() if k != "y"}, "ES256", "jwk_member"),
        ({**ec_jwk, "x": ""}, "ES256", "jwk_member"),
        ({**ec_jwk, "x": 7}, "ES256", "jwk_member"),
        ({**ec_jwk, "x": "a" * 2049}, "ES256", "jwk_member"),
        ({**ec_jwk, "x": ec_jwk["x"] + "="}, "ES256", "jwk_member"),
        ({**ec_jwk, "x": ec_jwk["x"][:-1] + "+"}, "ES256", "jwk_member"),
        ({**ec_jwk, "x": "AAAAA"}, "ES256", "jwk_member"),
        ({**ec_jwk, "x": b64(b"\1" * 31)}, "ES256", "jwk_member"),
        ({**ec_jwk, "y": b64(b"\1" * 33)}, "ES256", "jwk_member"),
        ({**ec_jwk, "y": b64(b"\1" * 32)}, "ES256", "jwk_point"),
        (ec_jwk, "HS256", "alg"),
        (ec_jwk, "RS256", "jwk_kty"),
    ]
    for private in ("d", "p", "q", "dp", "dq", "qi", "k", "oth"):
        cases.append(({**ec_jwk, private: "AQAB"}, "ES256", "jwk_private"))
    for jwk, alg, reason in cases:
        with pytest.raises(InvalidProof) as caught:
            load_jwk(jwk, alg)
        assert caught.value.reason == reason, (jwk, alg)
        check_detail(caught.value)


def test_an_ec_key_loads_as_its_minimal_jwk() -> None:
    jwk = DeviceKey("ES256").jwk
    key, minimal = load_jwk({**jwk, "kid": "x", "use": "sig"}, "ES256")
    assert minimal == {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}
    numbers = key.public_numbers()
    assert b64(numbers.x.to_bytes(32, "big")) == jwk["x"]  # type: ignore[union-attr]


def rsa_jwk(bits: int, e: int = 65537) -> dict[str, str]:
    n = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    modulus = n.public_numbers().n
    return {
        "kty": "RSA",
        "n": b64(modulus.to_bytes((modulus.bit_length() + 7) // 8, "big")),
        "e": b64(e.to_bytes((e.bit_length() + 7) // 8, "big")),
    }


def test_rsa_key_limits() -> None:
    good = rsa_jwk(2048)
    key, minimal = load_jwk({**good, "alg": "RS256"}, "RS256")
    assert minimal == {"kty": "RSA", "n": good["n"], "e": good["e"]}
    assert key.key_size == 2048  # type: ignore[union-attr]
    assert load_jwk({**good, "e": b64(bytes([3]))}, "RS256")[0] is not None
    # A member whose base64 needs two padding characters (10 characters).
    long_e = b64((2**55 + 1).to_bytes(7, "big"))
    assert len(long_e) == 10 and load_jwk({**good, "e": long_e}, "RS256")[1]["e"] == long_e
    for jwk, reason in (
        (rsa_jwk(1024), "jwk_size"),
        ({**good, "e": b64(bytes([1]))}, "jwk_size"),
        ({**good, "e": b64(bytes([2]))}, "jwk_size"),
        ({**good, "e": b64(bytes([4]))}, "jwk_size"),
        ({**good, "e": b64((65538).to_bytes(3, "big"))}, "jwk_size"),
        ({**good, "kty": "EC"}, "jwk_kty"),
        ({**good, "n": ""}, "jwk_member"),
        ({**good, "n": "A" * 2050}, "jwk_member"),  # over 2048 characters: not even read
        ({**good, "n": "B" * 2048}, "jwk_size"),  # 2048 characters are read (and too big)
        ({**good, "n": "AAAAA"}, "jwk_member"),  # 4k+1 characters: no base64 at all
        ({**good, "e": good["n"]}, "jwk_member"),  # e == n: no RSA key (cryptography refuses)
    ):
        with pytest.raises(InvalidProof) as caught:
            load_jwk(jwk, "RS256")
        assert caught.value.reason == reason, jwk
        check_detail(caught.value)


def test_rsa_modulus_bit_bounds_are_inclusive() -> None:
    def with_bits(bits: int) -> dict[str, str]:
        n = (1 << (bits - 1)) | 1  # odd, exactly `bits` bits
        return {"kty": "RSA", "n": b64(n.to_bytes((bits + 7) // 8, "big")), "e": "AQAB"}

    for bits, ok in ((2047, False), (2048, True), (8192, True), (8193, False)):
        if ok:
            assert load_jwk(with_bits(bits), "RS256")[1]["n"] == with_bits(bits)["n"]
        else:
            with pytest.raises(InvalidProof) as caught:
                load_jwk(with_bits(bits), "RS256")
            assert caught.value.reason == "jwk_size"


# -- proofs ------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_proof_verifies_with_its_claims(alg: str) -> None:
    device = DeviceKey(alg)
    token = signed(device, {"alg": alg, "typ": "dbsc+jwt", "jwk": device.jwk},
                   {"jti": "c" * dbsc.MAX_JTI, "authorization": "a"})  # fmt: skip
    proof = verify_proof(token)
    assert (proof.alg, proof.jwk, proof.jti) == (alg, device.jwk, "c" * dbsc.MAX_JTI)
    assert proof.claims == {"jti": "c" * dbsc.MAX_JTI, "authorization": "a"}
    refreshed = verify_proof(device.proof("x", embed=False), registered=(alg, device.jwk))
    assert (refreshed.alg, refreshed.jwk, refreshed.jti) == (alg, device.jwk, "x")


def test_proof_refusals_name_their_reason() -> None:
    device = DeviceKey("ES256")
    rsa_device = DeviceKey("RS256")
    head = {"alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk}
    good = device.proof("c")
    h, b, s = good.split(".")
    array_input = f"{h}.{b64(b'[1]')}"
    array_payload = f"{array_input}.{b64(device.sign(array_input.encode()))}"
    bad_input = f"{h}.A"  # one base64 character: no bytes at all
    bad_payload = f"{bad_input}.{b64(device.sign(bad_input.encode()))}"
    cases: list[tuple[object, str, tuple[str, dict[str, str]] | None]] = [
        (7, "size", None),
        (None, "size", None),
        ("a" * (dbsc.MAX_HEADER + 1), "size", None),
        ("a.b", "format", None),
        ("a.b.c.d", "format", None),
        (f"{h}.{b}.{s}=", "format", None),
        (f"{h}..{s}", "format", None),
        (f"A{h}.{b}.{s}", "header_base64", None),
        (f"{b64(b'nope')}.{b}.{s}", "header_json", None),
        (signed(device, {**head, "typ": "JWT"}, {"jti": "c"}), "typ", None),
        (signed(device, {k: v for k, v in head.items() if k != "typ"}, {"jti": "c"}), "typ", None),
        (signed(device, {**head, "alg": "ES384"}, {"jti": "c"}), "alg", None),
        (signed(device, {**head, "alg": 7}, {"jti": "c"}), "alg", None),
        (signed(device, {**head, "crit": []}, {"jti": "c"}), "crit", None),
        (signed(device, {k: v for k, v in head.items() if k != "jwk"}, {"jti": "c"}),
         "jwk_missing", None),
        (good, "alg_mismatch", ("RS256", rsa_device.jwk)),
        (good, "signature", ("ES256", DeviceKey("ES256").jwk)),
        (f"{h}.{b}.{b64(base64.urlsafe_b64decode(s + '==')[:-3])}", "signature", None),
        (f"{h}.{b}.{b64(b'x' * 64)}", "signature", None),
        (f"{h}.{b}.A", "signature_base64", None),
        (signed(device, head, {}), "jti", None),
        (signed(device, head, {"jti": ""}), "jti", None),
        (signed(device, head, {"jti": 7}), "jti", None),
        (signed(device, head, {"jti": "c" * (dbsc.MAX_JTI + 1)}), "jti", None),
        (array_payload, "payload_json", None),
        (bad_payload, "payload_base64", None),
        (signed(device, {**head, "alg": "HS256"}, {"jti": "c"}), "alg", ("ES256", device.jwk)),
    ]  # fmt: skip
    for token, reason, registered in cases:
        assert reason_of(token, registered) == reason, (token, reason)


def test_a_proof_of_the_maximum_length_is_read() -> None:
    device = DeviceKey("ES256")
    # An ES256 signature is 86 characters; pad the header and the claims
    # until the whole proof is exactly MAX_HEADER long.
    for extra in ("", "a", "ab"):
        head = {"alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk, "x": extra}
        room = dbsc.MAX_HEADER - len(b64json(head)) - 2 - 86
        for pad in range(room):
            claims = {"jti": "c", "p": "x" * pad}
            if len(b64json(claims)) == room:
                token = signed(device, head, claims)
                assert len(token) == dbsc.MAX_HEADER
                assert verify_proof(token).jti == "c"
                assert reason_of(token + "A") == "size"
                return
    raise AssertionError("no padding gave a proof of exactly MAX_HEADER characters")


def test_an_rs256_proof_is_checked_with_rs256_and_its_registered_key() -> None:
    device = DeviceKey("RS256")
    token = device.proof("c", embed=False)
    assert verify_proof(token, registered=("RS256", device.jwk)).jti == "c"
    assert reason_of(token, ("RS256", DeviceKey("RS256").jwk)) == "signature"
    # An embedded key never replaces the registered one.
    other = DeviceKey("RS256")
    assert reason_of(other.proof("c"), ("RS256", device.jwk)) == "signature"


def test_an_ec_signature_must_be_64_raw_bytes() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    device = DeviceKey("ES256")
    head = b64json({"alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk})
    body = b64json({"jti": "c"})
    assert isinstance(device.private, ec.EllipticCurvePrivateKey)
    der = device.private.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    assert reason_of(f"{head}.{body}.{b64(der)}") == "signature"
    raw = base64.urlsafe_b64decode(device.proof("c").split(".")[2] + "==")
    assert reason_of(f"{head}.{body}.{b64(raw + bytes(1))}") == "signature"


def test_the_verifier_rejects_mismatched_key_types() -> None:
    ec_key, _ = load_jwk(DeviceKey("ES256").jwk, "ES256")
    rsa_key, _ = load_jwk(DeviceKey("RS256").jwk, "RS256")
    assert not dbsc._verify(rsa_key, "ES256", b"\1" * 64, b"m")
    assert not dbsc._verify(ec_key, "RS256", b"\1" * 256, b"m")
    assert not dbsc._verify(ec_key, "HS256", b"\1" * 64, b"m")


def test_the_thumbprint_is_rfc7638() -> None:
    # RFC 7638 section 3.1's example key and thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
        "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
        "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
    }
    assert dbsc.jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    ec_jwk = DeviceKey("ES256").jwk
    canonical = json.dumps(
        {k: ec_jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":")
    ).encode()
    assert dbsc.jwk_thumbprint(ec_jwk) == b64(hashlib.sha256(canonical).digest())


# -- the bound cookie --------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def mac(secret: bytes, session_id: str, expires: int) -> str:
    key = hmac.new(secret, b"gatepass-dbsc-key", hashlib.sha256).digest()
    message = b"gatepass-dbsc-bound-cookie\0" + session_id.encode() + b"\0" + str(expires).encode()
    return b64(hmac.new(key, message, hashlib.sha256).digest())


def test_the_bound_cookie_value_is_the_documented_mac() -> None:
    clock = Clock(1_700_000_000.7)
    cookies = BoundCookies([b"s" * 32], ttl=600, clock=clock)
    value = cookies.value(SID)
    assert value == f"1700000600.{mac(b's' * 32, SID, 1_700_000_600)}"
    assert cookies.valid(value, SID)
    assert not cookies.valid(value, "B" * 22)
    header = cookies.header(SID)
    assert header.startswith(f"__Host-gatepass-bound={value};") and "Max-Age=600" in header


def test_no_secret_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^BoundCookies needs at least one secret$"):
        BoundCookies([])


def test_the_bound_cookie_lives_its_ttl_and_not_a_second_more() -> None:
    clock = Clock(1_700_000_000.0)
    cookies = BoundCookies([b"s" * 32], ttl=600, clock=clock)
    value = cookies.value(SID)
    clock.now += 599.9
    assert cookies.valid(value, SID)
    clock.now += 0.1
    assert not cookies.valid(value, SID)


def test_an_expiry_beyond_the_ttl_and_slack_is_refused() -> None:
    clock = Clock(1_700_000_000.0)
    cookies = BoundCookies([b"s" * 32], ttl=600, clock=clock)
    for expires, ok in ((1_700_000_605, True), (1_700_000_606, False)):
        value = f"{expires}.{mac(b's' * 32, SID, expires)}"
        assert cookies.valid(value, SID) is ok


@pytest.mark.parametrize(
    "value",
    [None, "", "1700000600", "1700000600.", "x.y", "1700000600." + "A" * 42,
     "1700000600." + "A" * 44, "1" * 13 + "." + "A" * 43, "+1700000600." + "A" * 43],
)  # fmt: skip
def test_malformed_bound_cookies_are_refused(value: str | None) -> None:
    cookies = BoundCookies([b"s" * 32], clock=Clock(1_700_000_000.0))
    assert not cookies.valid(value, SID)


def test_a_forged_or_moved_mac_is_refused() -> None:
    clock = Clock(1_700_000_000.0)
    cookies = BoundCookies([b"s" * 32], ttl=600, clock=clock)
    expires = 1_700_000_300
    assert cookies.valid(f"{expires}.{mac(b's' * 32, SID, expires)}", SID)
    assert not cookies.valid(f"{expires}.{mac(b'x' * 32, SID, expires)}", SID)
    assert not cookies.valid(f"{expires}.{mac(b's' * 32, SID, expires + 1)}", SID)
    assert not cookies.valid(f"{expires + 1}.{mac(b's' * 32, SID, expires)}", SID)


def test_check_reads_the_named_cookie() -> None:
    clock = Clock(1_700_000_000.0)
    cookies = BoundCookies([b"s" * 32], clock=clock)
    value = cookies.value(SID)
    assert cookies.check(f"a=1; __Host-gatepass-bound={value}", {"sid": SID})
    assert not cookies.check(f"gatepass-bound={value}", {"sid": SID})
    assert not cookies.check(f"__Host-gatepass-bound={value}", {"sid": "B" * 22})
    # A bound login ignores a pending deadline: the cookie decides.
    assert not cookies.check(None, {"sid": SID, "by": clock.now + 100})
    assert cookies.check(None, {"by": clock.now + 0.001})
    assert cookies.check(None, {"by": int(clock.now) + 1})
    assert not cookies.check(None, {"by": clock.now - 1})


# -- the challenges ------------------------------------------------------------


def binding(clock: Clock, keys: tuple[bytes, ...] = (b"k" * 32,)) -> DeviceBinding:
    return DeviceBinding(
        cookies=BoundCookies([b"s" * 32], clock=clock),
        challenges=MemoryOneTimeTokenStore(),
        refreshes=Quota(MemoryThrottleStore(), "dbsc", 10, clock=clock),
        origin="https://app.example.test",
        keys=keys,
        clock=clock,
    )


def proof_for(jti: str) -> dbsc.Proof:
    return dbsc.Proof(alg="ES256", jwk={}, jti=jti, claims={"jti": jti})


async def test_a_challenge_is_taken_once_by_its_login() -> None:
    clock = Clock(time.time())
    device = binding(clock)
    challenge = await device.issue(dbsc.PURPOSE_REFRESH, "u1", "ref-1", 60)
    assert len(challenge) == 43
    await device.take(dbsc.PURPOSE_REFRESH, proof_for(challenge), "u1", "ref-1")
    with pytest.raises(InvalidProof) as caught:
        await device.take(dbsc.PURPOSE_REFRESH, proof_for(challenge), "u1", "ref-1")
    assert caught.value.reason == "challenge"
    check_detail(caught.value)


@pytest.mark.parametrize(
    ("purpose", "user", "ref", "reason"),
    [
        (dbsc.PURPOSE_REGISTER, "u1", "ref-1", "challenge"),
        (dbsc.PURPOSE_REFRESH, "u2", "ref-1", "login"),
        (dbsc.PURPOSE_REFRESH, "u1", "ref-2", "login"),
        (dbsc.PURPOSE_REFRESH, "u1", "", "login"),
    ],
)
async def test_a_challenge_of_another_purpose_or_login_is_refused(
    purpose: str, user: str, ref: str, reason: str
) -> None:
    clock = Clock(time.time())
    device = binding(clock)
    challenge = await device.issue(dbsc.PURPOSE_REFRESH, "u1", "ref-1", 60)
    with pytest.raises(InvalidProof) as caught:
        await device.take(purpose, proof_for(challenge), user, ref)
    assert caught.value.reason == reason
    check_detail(caught.value)


async def test_a_challenge_expires_after_its_ttl() -> None:
    clock = Clock(time.time())
    device = binding(clock)
    kept = await device.issue(dbsc.PURPOSE_REFRESH, "u1", "r", 60)
    late = await device.issue(dbsc.PURPOSE_REFRESH, "u1", "r", 60)
    clock.now += 59.5
    await device.take(dbsc.PURPOSE_REFRESH, proof_for(kept), "u1", "r")
    clock.now += 0.5
    with pytest.raises(InvalidProof) as caught:
        await device.take(dbsc.PURPOSE_REFRESH, proof_for(late), "u1", "r")
    assert caught.value.reason == "challenge"


def test_the_authorization_is_a_mac_of_the_challenge_under_the_first_key() -> None:
    clock = Clock(time.time())
    device = binding(clock, keys=(b"k" * 32, b"old" * 11))
    expected = hmac.new(b"k" * 32, b"gatepass-dbsc-authorization\0c1", "sha256").hexdigest()
    assert device.authorization("c1") == expected[:32]
    assert device.authorization("c2") != device.authorization("c1")
    assert (
        binding(clock, keys=()).authorization("c1")
        == (hmac.new(b"", b"gatepass-dbsc-authorization\0c1", "sha256").hexdigest()[:32])
    )
