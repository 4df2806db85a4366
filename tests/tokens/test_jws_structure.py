"""Structural limits of the JWS payload, arrays as well as objects (SECURITY.md tokens).

The depth check is skipped when the text holds too few brackets to nest past
``MAX_DEPTH``; that shortcut must count ``[`` as well as ``{``, or deep arrays
would pass unchecked.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gatepass.tokens import jws
from tests.tokens.test_attacks import RINGS, codec, forge, good_claims, rejects


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def nested(kind: str, levels: int) -> Any:
    value: Any = 1
    for level in range(levels):
        as_array = kind == "array" or (kind == "mixed" and level % 2 == 0)
        value = [value] if as_array else {"a": value}
    return value


@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
def test_depth_limit_is_exact_for_arrays_and_objects(kind: str) -> None:
    # The claims object is depth 1, so "extra" may nest MAX_DEPTH - 1 levels.
    allowed = good_claims(extra=nested(kind, jws.MAX_DEPTH - 1))
    assert codec().verify(forge(claims=allowed)).sub == "alice"
    too_deep = good_claims(extra=nested(kind, jws.MAX_DEPTH))
    assert rejects(forge(claims=too_deep)) == "payload_depth"


def test_deep_arrays_with_few_braces_are_refused() -> None:
    # One "{" in the whole text: only the "[" count can trigger the walk.
    text = json.dumps(good_claims(extra=nested("array", 40)), separators=(",", ":"))
    assert text.count("{") == 1
    assert rejects(forge(claims=text.encode())) == "payload_depth"


def test_deep_structure_in_the_header_is_refused_too() -> None:
    kid = RINGS["EdDSA"].active.kid
    header = {"alg": "EdDSA", "kid": kid, "typ": "at+jwt", "x": nested("array", 40)}
    assert rejects(forge(header=header)) == "header_depth"
    header["x"] = nested("array", jws.MAX_DEPTH - 1)
    assert codec().verify(forge(header=header)).sub == "alice"


def test_many_shallow_brackets_are_fine() -> None:
    # More than MAX_DEPTH brackets, none deep: the walk runs and passes.
    wide = good_claims(extra=[[1]] * 40 + [{"a": 1}] * 40)
    assert codec().verify(forge(claims=wide)).sub == "alice"


def test_encoded_segments_are_compact_json() -> None:
    key = RINGS["EdDSA"].active
    token = jws.encode({"sub": "alice", "n": [1, 2]}, key, typ="at+jwt")
    head, body, _ = token.split(".")
    assert b64decode(head) == f'{{"alg":"EdDSA","kid":"{key.kid}","typ":"at+jwt"}}'.encode()
    assert b64decode(body) == b'{"sub":"alice","n":[1,2]}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_claims_are_never_signed(value: float) -> None:
    # Our own decoder refuses them; signing one would mint an unusable token.
    with pytest.raises(ValueError):
        jws.encode({"sub": "alice", "x": value}, RINGS["EdDSA"].active, typ="at+jwt")


def test_oversized_claims_are_never_signed() -> None:
    with pytest.raises(ValueError) as info:
        jws.encode({"x": "a" * jws.MAX_TOKEN_LENGTH}, RINGS["EdDSA"].active, typ="at+jwt")
    assert str(info.value) == "claims too large: the token would exceed MAX_TOKEN_LENGTH"
    # Just under the limit is fine: the limit is on the token, not the claims.
    room = jws.MAX_TOKEN_LENGTH - len(jws.encode({"x": ""}, RINGS["EdDSA"].active, typ="at+jwt"))
    fits = jws.encode({"x": "a" * (room * 3 // 4)}, RINGS["EdDSA"].active, typ="at+jwt")
    assert len(fits) <= jws.MAX_TOKEN_LENGTH
