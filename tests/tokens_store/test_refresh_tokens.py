"""The pure half of refresh tokens: format, derivation, the rotation rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace

import pytest

from gatepass.errors import ConfigurationError, InvalidGrant
from gatepass.tokens import refresh
from gatepass.tokens.backends.urls import open_refresh_store, open_revocation_store
from gatepass.tokens.refresh import Family, RotateOutcome, decide

KEY = b"k" * 32
GOOD = refresh.new_token(KEY)
FAMILY_ID, SECRET = GOOD.split(".")


def _noncanonical(part: str) -> str:
    # Same bytes, other spelling: flip a spare low bit of the last character.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return part[:-1] + alphabet[alphabet.index(part[-1]) ^ 1]


BAD: list[object] = [
    None, 0, 1.5, b"bytes", GOOD.encode(), [GOOD], "", ".", "..", " ",
    GOOD + ".", "." + GOOD, GOOD + "\n", " " + GOOD[1:], GOOD[:-1], GOOD + "A",
    GOOD.replace(".", "_"), GOOD.replace(".", ".."), f"{SECRET}.{FAMILY_ID}",
    f"{FAMILY_ID[:-1]}+.{SECRET}", f"{FAMILY_ID}.{SECRET[:-1]}/",
    f"{FAMILY_ID[:-2]}==.{SECRET}", f"{FAMILY_ID}.{SECRET[:-1]}=",
    f"{FAMILY_ID[:-1]}\u0663.{SECRET}",  # an Arabic-Indic digit: \d but not ASCII
    f"{FAMILY_ID[:-1]}é.{SECRET}", f"{FAMILY_ID}.{SECRET[:-1]}\x00",
    f"{_noncanonical(FAMILY_ID)}.{SECRET}", f"{FAMILY_ID}.{_noncanonical(SECRET)}",
    "x" * 66, "A" * 22 + "." + "A" * 42 + "%", "A" * 1_000_000, "\udcff" * 66,
    "'; DROP TABLE gatepass_refresh_families; --" + "A" * 23,
]  # fmt: skip


@pytest.mark.parametrize("garbage", BAD, ids=range(len(BAD)))
def test_garbage_is_rejected_cleanly(garbage: object) -> None:
    assert refresh.parse(garbage) is None
    assert refresh.is_well_formed(garbage) is False
    assert refresh.family_id_of(garbage) is None
    with pytest.raises(InvalidGrant):
        refresh.successor(garbage, KEY)  # type: ignore[arg-type]  # garbage on purpose


def test_new_tokens_are_well_formed_and_unique() -> None:
    tokens = {refresh.new_token(KEY) for _ in range(1000)}
    assert len(tokens) == 1000
    assert len({refresh.family_id_of(t) for t in tokens}) == 1000
    for token in tokens:
        family_id, secret = token.split(".")
        assert refresh.parse(token) == (family_id, secret)
        assert refresh.is_family_id(family_id)
        assert len(base64.urlsafe_b64decode(family_id + "==")) == refresh.FAMILY_ID_BYTES
        assert len(base64.urlsafe_b64decode(secret + "=")) == refresh.SECRET_BYTES


def test_is_family_id() -> None:
    assert refresh.is_family_id(FAMILY_ID)
    for bad in (None, "", SECRET, FAMILY_ID + "A", _noncanonical(FAMILY_ID), GOOD):
        assert not refresh.is_family_id(bad)


def test_token_hash_is_sha256_of_the_whole_token() -> None:
    assert refresh.token_hash(GOOD) == hashlib.sha256(GOOD.encode()).hexdigest()


def _body_and_tag(token: str) -> tuple[bytes, bytes]:
    raw = base64.urlsafe_b64decode(token.split(".")[1] + "=")
    return raw[: refresh.BODY_BYTES], raw[refresh.BODY_BYTES :]


def _tag(family_id: str, body: bytes, key: bytes) -> bytes:
    label = b"gatepass-refresh-tag\0"
    return hmac.new(key, label + family_id.encode() + body, hashlib.sha256).digest()[:16]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_successor_is_deterministic_and_keyed() -> None:
    nxt = refresh.successor(GOOD, KEY)
    assert nxt == refresh.successor(GOOD, KEY)
    assert refresh.parse(nxt) is not None
    assert refresh.family_id_of(nxt) == FAMILY_ID
    derived = hmac.new(KEY, b"gatepass-refresh\0" + GOOD.encode(), hashlib.sha256).digest()[:16]
    assert nxt == f"{FAMILY_ID}.{_b64(derived + _tag(FAMILY_ID, derived, KEY))}"
    # Another key, another token of the same family, or the successor itself
    # all lead elsewhere.  The other token differs from GOOD in its body's
    # first byte, so it is a different token whatever GOOD's random bytes are.
    body, _ = _body_and_tag(GOOD)
    other_body = bytes([body[0] ^ 1]) + body[1:]
    other = f"{FAMILY_ID}.{_b64(other_body + _tag(FAMILY_ID, other_body, KEY))}"
    assert other != GOOD
    assert refresh.successor(GOOD, b"K" * 32) != nxt
    assert refresh.successor(other, KEY) != nxt
    assert refresh.successor(nxt, KEY) not in {nxt, GOOD}


def test_tokens_carry_a_tag_only_the_server_key_makes() -> None:
    assert refresh.is_authentic(GOOD, KEY)
    assert refresh.is_authentic(refresh.successor(GOOD, KEY), KEY)
    # The successor of a token that was never issued is authentic: it is the
    # server that derived it (and no store ever holds its hash).
    body, tag = _body_and_tag(GOOD)
    assert not refresh.is_authentic(GOOD, b"K" * 32)
    for forged_body, forged_tag in (
        (bytes([body[0] ^ 1]) + body[1:], tag),  # another body, the old tag
        (body, bytes([tag[0] ^ 1]) + tag[1:]),  # one bit of the tag
        (body, bytes(16)),
        (bytes(16), _tag(FAMILY_ID, bytes(16), b"K" * 32)),  # tagged with another key
    ):
        forged = f"{FAMILY_ID}.{_b64(forged_body + forged_tag)}"
        assert refresh.parse(forged) is not None
        assert not refresh.is_authentic(forged, KEY)
    # A tag is bound to its family: the secret moved to another family fails.
    other_family = refresh.new_token(KEY).split(".")[0]
    assert not refresh.is_authentic(f"{other_family}.{GOOD.split('.')[1]}", KEY)
    for garbage in BAD:
        assert refresh.is_authentic(garbage, KEY) is False


def test_new_token_refuses_weak_keys() -> None:
    for key in (b"", b"k" * 31, "k" * 32):
        with pytest.raises(ConfigurationError):
            refresh.new_token(key)  # type: ignore[arg-type]  # wrong on purpose
        with pytest.raises(ConfigurationError):
            refresh.is_authentic(GOOD, key)  # type: ignore[arg-type]  # wrong on purpose


@pytest.mark.parametrize("key", [b"", b"short", b"k" * 31, "k" * 32])
def test_successor_refuses_weak_keys(key: object) -> None:
    with pytest.raises(ConfigurationError):
        refresh.successor(GOOD, key)  # type: ignore[arg-type]  # wrong on purpose


FAMILY = Family(
    family_id=FAMILY_ID, user_id="alice", created_at=1000.0, absolute_expires_at=2000.0,
    current_hash="c" * 64, previous_hash="p" * 64, rotated_at=1500.0,
)  # fmt: skip


@pytest.mark.parametrize(
    ("family", "presented", "successor", "now", "expected"),
    [
        (None, "c" * 64, "n" * 64, 1500.0, RotateOutcome.UNKNOWN),
        (FAMILY, "c" * 64, "n" * 64, 1999.9, RotateOutcome.ROTATED),
        (FAMILY, "c" * 64, "n" * 64, 2000.0, RotateOutcome.EXPIRED),
        (FAMILY, "p" * 64, "c" * 64, 1509.9, RotateOutcome.GRACE),
        (FAMILY, "p" * 64, "c" * 64, 1510.0, RotateOutcome.REUSED),
        (FAMILY, "p" * 64, "x" * 64, 1501.0, RotateOutcome.REUSED),  # successor moved on
        (FAMILY, "o" * 64, "n" * 64, 1501.0, RotateOutcome.REUSED),
        (replace(FAMILY, revoked=True), "c" * 64, "n" * 64, 1501.0, RotateOutcome.REVOKED),
        (replace(FAMILY, revoked=True), "p" * 64, "c" * 64, 1501.0, RotateOutcome.REUSED),
        (replace(FAMILY, previous_hash=None, rotated_at=None), "p" * 64, "c" * 64, 1501.0,
         RotateOutcome.REUSED),
    ],
)  # fmt: skip
def test_decide(
    family: Family | None, presented: str, successor: str, now: float, expected: RotateOutcome
) -> None:
    outcome, after, changed = decide(family, presented, successor, now=now, grace=10)
    assert outcome is expected
    if expected is RotateOutcome.ROTATED:
        assert after == replace(FAMILY, current_hash=successor, previous_hash=presented,
                                rotated_at=now)  # fmt: skip
    elif expected is RotateOutcome.REUSED:
        assert family is not None and after == replace(family, revoked=True)
        assert changed is (not family.revoked)
    else:
        assert (after, changed) == (family, False)


# ---------------------------------------------------------------- URLs


async def test_open_stores_from_urls(tmp_path: object) -> None:
    for url in ("memory://", f"sqlite:///{tmp_path}/t.db", "redis://127.0.0.1:1/0",
                "rediss://u:p@example.com/0", "postgresql://u:p@127.0.0.1:1/db"):  # fmt: skip
        for opener in (open_refresh_store, open_revocation_store):
            store = await opener(url)  # networked stores connect on first use only
            await store.close()


@pytest.mark.parametrize(
    "url",
    ["", "mysql://root:hunter2@db/x", "http://u:hunter2@h", "hunter2", "sqlite://host",
     "mysql:hunter2", "mysql:root:hunter2@db", "sqlite:///", "redis://:hunter2@[::1/0"],
)  # fmt: skip
async def test_bad_urls_raise_configuration_error_without_secrets(url: str) -> None:
    for opener in (open_refresh_store, open_revocation_store):
        with pytest.raises(ConfigurationError) as info:
            await opener(url)
        assert "hunter2" not in str(info.value)
