"""Every limit of the access-token claim checks, on both sides of the line.

tests/tokens/test_attacks.py proves each check refuses an attack; these pin
where each limit sits (found by the mutation run, tests/mutation), so that
moving a bound by one, or turning <= into <, fails a test.
"""

from __future__ import annotations

from typing import Any

import pytest

from gatepass.errors import InvalidToken
from gatepass.tokens import jws
from gatepass.tokens.access import (
    MAX_AUDIENCES,
    MAX_STRING_CLAIM,
    MAX_TIMESTAMP,
    AccessTokenCodec,
)
from gatepass.tokens.keys import KeyRing
from tests.tokens.test_attacks import AUD, ISS, NOW, RINGS, codec, forge, good_claims, rejects


def accepts(**claims: Any) -> None:
    verified = codec().verify(forge(claims=good_claims(**claims)))
    assert verified.sub == claims.get("sub", "alice")


@pytest.mark.parametrize("claim", ["sub", "jti", "fid"])
def test_string_claims_from_1_to_256_characters(claim: str) -> None:
    accepts(**{claim: "s"})
    accepts(**{claim: "s" * MAX_STRING_CLAIM})
    assert rejects(forge(claims=good_claims(**{claim: "s" * (MAX_STRING_CLAIM + 1)}))) == claim
    assert rejects(forge(claims=good_claims(**{claim: ""}))) == claim


def test_audience_lists_from_1_to_16_entries() -> None:
    accepts(aud=[AUD])
    accepts(aud=[f"other-{n}" for n in range(MAX_AUDIENCES - 1)] + [AUD])
    too_many = [f"other-{n}" for n in range(MAX_AUDIENCES)] + [AUD]
    assert rejects(forge(claims=good_claims(aud=too_many))) == "aud"
    assert rejects(forge(claims=good_claims(aud=[]))) == "aud"


def test_timestamps_from_0_to_year_9999() -> None:
    accepts(iat=0)
    accepts(iat=0.5, nbf=0)
    accepts(exp=MAX_TIMESTAMP)
    assert rejects(forge(claims=good_claims(exp=MAX_TIMESTAMP + 1))) == "exp"
    assert rejects(forge(claims=good_claims(iat=-0.5))) == "iat"


def test_issued_at_may_be_up_to_the_leeway_ahead() -> None:
    accepts(iat=NOW + 5)  # leeway 5: a clock that far ahead is tolerated
    assert rejects(forge(claims=good_claims(iat=NOW + 5.01))) == "iat_future"


def test_expiry_is_exclusive_at_exp_plus_leeway() -> None:
    accepts(exp=NOW - 4.99)
    assert rejects(forge(claims=good_claims(exp=NOW - 5))) == "expired"


def _token_of_length(length: int) -> str:
    # The token grows monotonically with the claim, by one or two characters
    # a step: bisect for the length, and shift the claim name if it is skipped.
    key = RINGS["EdDSA"].active

    def size(name: str, n: int) -> int:
        return len(jws.b64url(f'{{"{name}":"{"a" * n}"}}'.encode())) + len(
            jws.encode({}, key, typ="at+jwt")
        ) - len(jws.b64url(b"{}"))

    for name in ("x", "xy", "xyz"):
        low, high = 0, length
        while low < high:
            mid = (low + high) // 2
            low, high = (mid + 1, high) if size(name, mid) < length else (low, mid)
        if size(name, low) == length:
            token = jws.encode({name: "a" * low}, key, typ="at+jwt")
            assert len(token) == length
            return token
    raise AssertionError(f"no token of length {length}")


def test_token_length_limit_is_inclusive() -> None:
    token = _token_of_length(jws.MAX_TOKEN_LENGTH)
    header, claims = jws.decode(token, RINGS["EdDSA"], now=NOW)
    assert header["typ"] == "at+jwt" and set(claims) <= {"x", "xy", "xyz"}
    assert rejects(token + "A") == "size"


def test_a_cached_token_stops_verifying_when_its_key_retires() -> None:
    now = [NOW]
    ring = KeyRing.generate("EdDSA", now=NOW - 10)
    token, _ = AccessTokenCodec(ring, issuer=ISS, audience=AUD, clock=lambda: now[0]).issue("al")
    rotated = ring.rotate("EdDSA", now=NOW, retire_after=60)
    codec_ = AccessTokenCodec(rotated, issuer=ISS, audience=AUD, clock=lambda: now[0])
    assert codec_.verify(token).sub == "al"  # verified, and now served from the cache
    now[0] = NOW + 59.9
    assert codec_.verify(token).sub == "al"
    now[0] = NOW + 60  # the key's verify_until; the token itself is good until NOW + 305
    with pytest.raises(InvalidToken) as err:
        codec_.verify(token)
    assert err.value.reason == "key_retired"


def test_kid_length_limit_is_inclusive() -> None:
    def header(kid: str) -> dict[str, str]:
        return {"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}

    jws.clear_header_cache()  # parse these headers now, not from an earlier test's cache
    assert rejects(forge(header("k" * jws.MAX_KID_LENGTH))) == "unknown_kid"
    assert rejects(forge(header("k" * (jws.MAX_KID_LENGTH + 1)))) == "kid_invalid"


def test_a_cached_token_is_not_valid_before_its_nbf() -> None:
    now = [NOW]
    codec_ = AccessTokenCodec(RINGS["HS256"], issuer=ISS, audience=AUD, clock=lambda: now[0])
    token, claims = codec_.issue("al")
    assert codec_.verify(token).sub == "al"  # cached
    now[0] = claims.iat - 5  # nbf - leeway: still fine
    assert codec_.verify(token).sub == "al"
    now[0] = claims.iat - 5.01
    with pytest.raises(InvalidToken) as err:
        codec_.verify(token)
    assert err.value.reason == "not_yet_valid"


def test_a_signed_payload_that_is_not_base64_is_named_as_such() -> None:
    key = RINGS["EdDSA"].active
    head = jws.b64url(b'{"alg":"EdDSA","kid":"%s","typ":"at+jwt"}' % key.kid.encode())
    for body in ("AAAAA", "AB"):  # a length no base64 has; a set filler bit
        signing_input = f"{head}.{body}"
        token = f"{signing_input}.{jws.b64url(key.sign(signing_input.encode()))}"
        assert rejects(token) == "payload_base64"


def test_amr_lists_from_0_to_8_values_of_1_to_32_characters() -> None:
    accepts(amr=[])
    accepts(amr=["pwd"] * 8)
    accepts(amr=["a", "x" * 32])
    assert codec().verify(forge(claims=good_claims(amr=["pwd", "otp"]))).amr == ("pwd", "otp")
    assert codec().verify(forge(claims=good_claims())).amr == ()
    for bad in (["pwd"] * 9, [""], ["x" * 33], [7], "pwd", {"pwd": 1}, None):
        assert rejects(forge(claims=good_claims(amr=bad))) == "amr", bad


def test_auth_time_is_a_timestamp_at_most_the_leeway_ahead() -> None:
    accepts(auth_time=NOW + 5)  # leeway 5
    accepts(auth_time=0)
    verified = codec().verify(forge(claims=good_claims(auth_time=NOW - 60)))
    assert verified.auth_time == NOW - 60
    assert rejects(forge(claims=good_claims(auth_time=NOW + 5.01))) == "auth_time"
    for bad in ("1", True, -1, None, MAX_TIMESTAMP + 1):
        assert rejects(forge(claims=good_claims(auth_time=bad))) == "auth_time", bad


def test_email_verified_is_a_boolean_when_present() -> None:
    accepts(email_verified=True)
    accepts(email_verified=False)
    for bad in (1, 0, "true", None):
        assert rejects(forge(claims=good_claims(email_verified=bad))) == "email_verified", bad
