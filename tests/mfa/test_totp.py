"""TOTP and recovery codes, the pure functions, against pyotp and RFC 6238.

The codes come from pyotp (and the RFC's own test vector), not from the
module's arithmetic, so a mutant of the step or window logic disagrees.
"""

from __future__ import annotations

import re

import pyotp
import pytest

from gatepass.mfa import totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# RFC 6238 appendix B: the ASCII secret "12345678901234567890", SHA-1.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


@pytest.mark.parametrize(
    ("when", "code"),
    [(59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")],
)
def test_rfc6238_vectors(when: int, code: str) -> None:
    assert totp.code_at(RFC_SECRET, totp.step_at(when)) == code
    assert totp.matching_step(RFC_SECRET, code, now=when) == when // 30


def test_steps_are_30_seconds() -> None:
    assert totp.step_at(0) == 0
    assert totp.step_at(29.999) == 0
    assert totp.step_at(30) == 1
    assert totp.step_at(89.5) == 2


def test_one_step_either_side_is_accepted_and_no_further() -> None:
    now = 1_700_000_015.0  # the middle of a step
    step = totp.step_at(now)
    auth = pyotp.TOTP(SECRET)
    for offset in (-1, 0, 1):
        code = auth.at(now + 30 * offset)
        assert totp.matching_step(SECRET, code, now=now) == step + offset
    for offset in (-3, -2, 2, 3):
        code = auth.at(now + 30 * offset)
        if code not in {auth.at(now - 30), auth.at(now), auth.at(now + 30)}:
            assert totp.matching_step(SECRET, code, now=now) is None


def test_the_window_edges_follow_the_step_boundaries() -> None:
    start = 1_700_000_010.0 - 1_700_000_010.0 % 30  # first second of a step
    auth = pyotp.TOTP(SECRET)
    earlier = auth.at(start - 31)  # two steps back from the step of `start`
    assert totp.matching_step(SECRET, earlier, now=start) is None
    assert totp.matching_step(SECRET, earlier, now=start - 1) == totp.step_at(start - 31)


def test_a_code_of_another_secret_is_refused() -> None:
    now = 1_700_000_015.0
    other = pyotp.TOTP("KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU").at(now)
    if other not in {pyotp.TOTP(SECRET).at(now + 30 * k) for k in (-1, 0, 1)}:
        assert totp.matching_step(SECRET, other, now=now) is None


def test_the_reported_step_is_the_one_whose_code_it_is() -> None:
    now = 1_700_000_015.0
    for offset in (-1, 0, 1):
        code = pyotp.TOTP(SECRET).at(now + 30 * offset)
        step = totp.matching_step(SECRET, code, now=now)
        assert step is not None and totp.code_at(SECRET, step) == code


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "12 345", "+12345"])
def test_codes_that_are_not_six_ascii_digits_are_refused(code: str) -> None:
    assert not totp.is_code_shaped(code)
    assert totp.matching_step(SECRET, code, now=1_700_000_015.0) is None


def test_six_ascii_digits_are_code_shaped() -> None:
    assert totp.is_code_shaped("000000")
    assert totp.is_code_shaped("123456")


def test_recovery_codes_are_ten_distinct_well_formed_codes() -> None:
    codes = totp.new_recovery_codes()
    assert len(codes) == totp.RECOVERY_CODES == 10
    assert len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", code), code
        assert not set(code) & set("01ilo")
        assert totp.normalize_recovery_code(code) == code.replace("-", "")


def test_recovery_codes_show_every_drawn_character_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A deterministic source in place of secrets.choice: each code must show
    # the 16 characters drawn for it, in order, four groups of four.
    drawn = iter("abcdefghjkmnpqrstuvwxyz23456789" * 10)
    monkeypatch.setattr(totp.secrets, "choice", lambda alphabet: next(drawn))
    codes = totp.new_recovery_codes()
    assert codes[0] == "abcd-efgh-jkmn-pqrs"
    assert codes[1] == "tuvw-xyz2-3456-789a"


def test_recovery_codes_use_the_whole_alphabet() -> None:
    seen = set("".join(c for _ in range(20) for c in totp.new_recovery_codes()))
    assert seen - {"-"} == set("abcdefghjkmnpqrstuvwxyz23456789")


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("abcd-efgh-jkmn-pqrs", "abcdefghjkmnpqrs"),
        ("ABCD EFGH JKMN PQRS", "abcdefghjkmnpqrs"),
        ("abcdefghjkmnpqrs", "abcdefghjkmnpqrs"),
        ("-a-b-c-d-e-f-g-h-j-k-m-n-p-q-r-s-", "abcdefghjkmnpqrs"),
        ("2345-6789-tuvw-xyz2", "23456789tuvwxyz2"),
    ],
)
def test_typed_recovery_codes_are_normalised(typed: str, normalized: str) -> None:
    assert totp.normalize_recovery_code(typed) == normalized


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "abcd-efgh-jkmn-pqr",  # 15
        "abcd-efgh-jkmn-pqrst",  # 17
        "abcd-efgh-jkmn-pqr0",  # 0 is not in the alphabet
        "abcd-efgh-jkmn-pqr1",
        "abcd-efgh-jkmn-pqri",
        "abcd-efgh-jkmn-pqrl",
        "abcd-efgh-jkmn-pqro",
        "abcd_efgh_jkmn_pqrs",
        "abcd\tefgh-jkmn-pqrs",
        "abcd-efgh-jkmn-pqrs\n",
        "abcd-efgh-jkmn-pqr\u00e9",
    ],
)
def test_impossible_recovery_codes_are_none(typed: str) -> None:
    assert totp.normalize_recovery_code(typed) is None


def test_recovery_hash_is_a_domain_separated_sha256() -> None:
    import hashlib

    h = totp.recovery_hash("abcdefghjkmnpqrs")
    assert h == hashlib.sha256(b"gatepass-recovery-v1\x00abcdefghjkmnpqrs").hexdigest()
    assert h != totp.recovery_hash("abcdefghjkmnpqrt")


def test_when_two_steps_share_a_code_the_earliest_is_reported() -> None:
    # Steps 56668234 and 56668235 of SECRET both give 065554 (found by a
    # search; one pair in about a million steps). The earliest step is the
    # one the replay rule must record.
    first = 56668234
    auth = pyotp.TOTP(SECRET)
    assert auth.at(first * 30) == auth.at((first + 1) * 30) == "065554"
    for now in ((first + 1) * 30 + 15, (first + 1) * 30 + 29):
        assert totp.matching_step(SECRET, "065554", now=now) == first
    assert totp.matching_step(SECRET, "065554", now=(first + 2) * 30) == first + 1
