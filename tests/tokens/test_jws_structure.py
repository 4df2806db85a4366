"""Structural limits of the JWS payload, arrays as well as objects (SECURITY.md tokens).

The depth check is skipped when the text holds too few brackets to nest past
``MAX_DEPTH``; that shortcut must count ``[`` as well as ``{``, or deep arrays
would pass unchecked.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gatepass.tokens import jws
from tests.tokens.test_attacks import RINGS, codec, forge, good_claims, rejects


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
