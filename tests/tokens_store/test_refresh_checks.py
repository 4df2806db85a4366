"""Refresh-token checks pinned for the mutation run (tests/mutation).

Beside test_refresh_tokens.py, which covers the format and the rotation
table: these hold the details a weakened check could change unnoticed, the
"changed" flag that makes a store write a rotation back, and the evidence an
error carries.
"""

from __future__ import annotations

import pytest

from gatepass.errors import ConfigurationError, InvalidGrant
from gatepass.tokens import refresh
from gatepass.tokens.refresh import Family, RotateOutcome, decide

KEY = b"k" * 32


def family() -> Family:
    return Family(
        family_id=refresh.new_token(KEY).split(".")[0], user_id="alice", created_at=1000.0,
        absolute_expires_at=2000.0, current_hash="c" * 64,
    )  # fmt: skip


def test_a_rotation_must_be_written_back() -> None:
    outcome, after, changed = decide(family(), "c" * 64, "n" * 64, now=1500.0, grace=10)
    assert outcome is RotateOutcome.ROTATED
    assert changed is True  # a store that skipped the write would keep the old token current
    assert after is not None and after.current_hash == "n" * 64


def test_a_replay_revokes_and_is_written_back_once() -> None:
    outcome, after, changed = decide(family(), "o" * 64, "n" * 64, now=1500.0, grace=10)
    assert (outcome, changed) == (RotateOutcome.REUSED, True)
    assert after is not None and after.revoked is True
    outcome, still, changed = decide(after, "o" * 64, "n" * 64, now=1501.0, grace=10)
    assert (outcome, changed) == (RotateOutcome.REUSED, False)
    assert still == after


@pytest.mark.parametrize("garbage", [None, "", "x" * 66, refresh.new_token(KEY) + "A"])
def test_successor_of_garbage_says_malformed(garbage: object) -> None:
    with pytest.raises(InvalidGrant) as info:
        refresh.successor(garbage, KEY)  # type: ignore[arg-type]  # garbage on purpose
    assert info.value.reason == "malformed"


def test_weak_key_message_states_the_minimum() -> None:
    with pytest.raises(ConfigurationError) as info:
        refresh.successor(refresh.new_token(KEY), b"k" * 31)
    assert str(info.value) == "The refresh-token key must be at least 32 bytes."
