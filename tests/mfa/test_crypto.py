"""SecretBox: TOTP secrets sealed at rest, refused when moved, tampered with
or made under a key that is no longer configured."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gatepass.errors import ConfigurationError
from gatepass.mfa.crypto import MAX_SEALED, SecretBox, SecretUnreadable

OLD, NEW = b"o" * 40, b"n" * 40
PLAIN = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def kid_of(secret: bytes) -> str:
    key = hmac.new(secret, b"gatepass-mfa-secret-v1", hashlib.sha256).digest()
    return hashlib.sha256(b"kid" + key).hexdigest()[:12]


def test_no_secret_is_a_configuration_error() -> None:
    message = "At least one server secret is needed to seal MFA secrets."
    with pytest.raises(ConfigurationError, match=f"^{message}$"):
        SecretBox([])


def test_sealed_form_and_round_trip() -> None:
    box = SecretBox([NEW])
    sealed = box.seal(PLAIN, user_id="u1")
    version, kid, body = sealed.split(".")
    assert version == "v1" and kid == kid_of(NEW) == box.active_kid
    assert "=" not in body and PLAIN not in sealed
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert len(raw) == 12 + len(PLAIN) + 16  # nonce, ciphertext, tag
    assert box.open(sealed, user_id="u1") == PLAIN
    assert box.seal(PLAIN, user_id="u1") != sealed  # a fresh nonce each time


def test_the_key_is_derived_and_the_user_is_bound() -> None:
    # Decrypt by hand with the documented derivation: key = HMAC(secret,
    # purpose), associated data = purpose, kid and user id joined by NUL.
    sealed = SecretBox([NEW]).seal(PLAIN, user_id="u1")
    _, kid, body = sealed.split(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    key = hmac.new(NEW, b"gatepass-mfa-secret-v1", hashlib.sha256).digest()
    aad = b"gatepass-mfa-secret-v1\x00" + kid.encode() + b"\x00u1"
    assert AESGCM(key).decrypt(raw[:12], raw[12:], aad).decode() == PLAIN


def test_every_length_round_trips_without_padding() -> None:
    box = SecretBox([NEW])
    for n in range(48):  # every base64 remainder, several times over
        plain = "A" * n
        sealed = box.seal(plain, user_id="u1")
        assert "=" not in sealed and sealed.count(".") == 2
        assert box.open(sealed, user_id="u1") == plain


def test_another_users_row_does_not_open() -> None:
    box = SecretBox([NEW])
    sealed = box.seal(PLAIN, user_id="u1")
    for other in ("u2", "u1 ", "", "U1"):
        with pytest.raises(SecretUnreadable):
            box.open(sealed, user_id=other)


def test_rotation_new_seals_old_opens_dropped_does_not() -> None:
    old_sealed = SecretBox([OLD]).seal(PLAIN, user_id="u1")
    rotated = SecretBox([NEW, OLD])
    assert rotated.active_kid == kid_of(NEW)
    assert rotated.open(old_sealed, user_id="u1") == PLAIN
    assert rotated.needs_reseal(old_sealed)
    fresh = rotated.seal(PLAIN, user_id="u1")
    assert fresh.split(".")[1] == kid_of(NEW) and not rotated.needs_reseal(fresh)
    with pytest.raises(SecretUnreadable):
        SecretBox([NEW]).open(old_sealed, user_id="u1")


def test_a_repeated_secret_counts_once_and_the_first_stays_active() -> None:
    box = SecretBox([NEW, NEW, OLD])
    assert box.active_kid == kid_of(NEW)
    assert box.open(SecretBox([OLD]).seal(PLAIN, user_id="u"), user_id="u") == PLAIN
    assert SecretBox([OLD, NEW, OLD]).active_kid == kid_of(OLD)


def test_needs_reseal_on_odd_values() -> None:
    box = SecretBox([NEW])
    assert box.needs_reseal("")
    assert box.needs_reseal("v1")
    assert not box.needs_reseal(f"v1.{kid_of(NEW)}")
    assert not box.needs_reseal(f"v1.{kid_of(NEW)}.x.y")


def tampered(sealed: str) -> list[str]:
    version, kid, body = sealed.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    out = []
    for index in (0, 11, 12, len(raw) - 1):
        flipped = bytearray(raw)
        flipped[index] ^= 1
        out.append(f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(flipped)).decode()}")
    return out


def test_tampering_anywhere_is_refused() -> None:
    box = SecretBox([NEW])
    sealed = box.seal(PLAIN, user_id="u1")
    _, kid, body = sealed.split(".")
    short = base64.urlsafe_b64encode(bytes(27)).decode()
    bad = [
        *tampered(sealed),
        f"v2.{kid}.{body}",
        f".{kid}.{body}",
        f"v1.{kid_of(OLD)}.{body}",
        f"v1..{body}",
        f"v1.{kid}",
        f"v1.{kid}.",
        f"v1.{kid}.{short}",  # shorter than nonce and tag
        f"v1.{kid}.{body[:-1]}",
        f"v1.{kid}.{body}x",
        f"v1.{kid}.!!!!",
        f"v1.{kid}.{body}.extra",
        sealed + "A" * (MAX_SEALED - len(sealed) + 1),
    ]
    for value in bad:
        with pytest.raises(SecretUnreadable):
            box.open(value, user_id="u1")
    # The messages (for the operator's log) say which check refused.
    for value, message in (
        (sealed + "A" * (MAX_SEALED - len(sealed) + 1), "sealed value too long"),
        (f"v2.{kid}.{body}", "no configured key for this sealed value"),
        (f"v1.{kid_of(OLD)}.{body}", "no configured key for this sealed value"),
        (f"v1.{kid}.{body}.extra", "sealed value does not open"),
        (f"v1.{kid}.{short}", "sealed value does not open"),
        (tampered(sealed)[0], "sealed value does not open"),
    ):
        with pytest.raises(SecretUnreadable) as caught:
            box.open(value, user_id="u1")
        assert str(caught.value) == message


def test_a_sealed_value_of_the_maximum_length_is_still_read() -> None:
    box = SecretBox([NEW])
    plain = "A" * 300
    sealed = box.seal(plain, user_id="u1")
    assert len(sealed) <= MAX_SEALED
    assert box.open(sealed, user_id="u1") == plain
    long_plain = "A" * (MAX_SEALED - 60)
    too_long = box.seal(long_plain, user_id="u1")
    assert len(too_long) > MAX_SEALED
    with pytest.raises(SecretUnreadable):
        box.open(too_long, user_id="u1")


def test_a_value_of_exactly_the_limit_is_opened() -> None:
    box = SecretBox([NEW])
    # v1.<12>.<b64(12 + n + 16)>: find n whose sealed form is MAX_SEALED long.
    for n in range(300, 400):
        sealed = box.seal("A" * n, user_id="u1")
        if len(sealed) == MAX_SEALED:
            assert box.open(sealed, user_id="u1") == "A" * n
            return
    raise AssertionError("no length gives exactly MAX_SEALED")


def test_a_surrogate_user_id_is_bound_too() -> None:
    box = SecretBox([NEW])
    sealed = box.seal(PLAIN, user_id="\ud800")
    assert box.open(sealed, user_id="\ud800") == PLAIN
    with pytest.raises(SecretUnreadable):
        box.open(sealed, user_id="\ud801")


def test_the_errors_name_nothing_secret() -> None:
    box = SecretBox([NEW])
    sealed = box.seal(PLAIN, user_id="u1")
    for value in (*tampered(sealed), sealed):
        try:
            box.open(value, user_id="u2")
        except SecretUnreadable as exc:
            assert PLAIN not in str(exc) and value.split(".")[2] not in str(exc)
