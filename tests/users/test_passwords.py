"""Password hashing with real Argon2id and bcrypt: no fakes of either."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import argon2
import bcrypt
import pytest

from gatepass.errors import ConfigurationError, InvalidRequest, PayloadTooLarge, WeakPassword
from gatepass.users.passwords import (
    OWASP_ARGON2ID,
    PasswordHasher,
    Verification,
    default_workers,
)

OWASP_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"
PASSWORD = "correct horse battery staple"

#: A cheaper profile, standing in for "the parameters of a few years ago".
OLD_PROFILE = dataclasses.replace(OWASP_ARGON2ID, time_cost=1, memory_cost=8192)


@pytest.fixture(scope="module")
def hasher() -> Iterator[PasswordHasher]:
    h = PasswordHasher()
    yield h
    h.close()


@pytest.fixture(scope="module")
def old_hasher() -> Iterator[PasswordHasher]:
    h = PasswordHasher(parameters=OLD_PROFILE)
    yield h
    h.close()


def legacy_bcrypt(password: bytes, prefix: str = "$2b$") -> str:
    """A hash as a legacy system stored it (cost 4 to keep the suite fast)."""
    made = bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode("ascii")
    return prefix + made[len("$2b$") :]


# Hashing ------------------------------------------------------------------


async def test_hashes_are_argon2id_at_owasp_parameters(hasher: PasswordHasher) -> None:
    stored = await hasher.hash(PASSWORD)
    assert stored.startswith(OWASP_PREFIX)
    assert argon2.extract_parameters(stored) == OWASP_ARGON2ID
    # Salted: the same password never gives the same hash twice.
    assert await hasher.hash(PASSWORD) != stored


async def test_right_password_verifies_without_rehash(hasher: PasswordHasher) -> None:
    stored = await hasher.hash(PASSWORD)
    result = await hasher.verify(stored, PASSWORD)
    assert result == Verification(ok=True, new_hash=None)
    assert result


async def test_wrong_password_does_not_verify(hasher: PasswordHasher) -> None:
    stored = await hasher.hash(PASSWORD)
    for wrong in (PASSWORD + "!", PASSWORD.upper(), PASSWORD[:-1], ""):
        result = await hasher.verify(stored, wrong)
        assert result == Verification(ok=False, new_hash=None)
        assert not result


async def test_hash_with_other_parameters_is_upgraded(
    hasher: PasswordHasher, old_hasher: PasswordHasher
) -> None:
    old = await old_hasher.hash(PASSWORD)
    assert old.startswith("$argon2id$v=19$m=8192,t=1,p=1$")

    result = await hasher.verify(old, PASSWORD)
    assert result.ok
    assert result.new_hash is not None and result.new_hash.startswith(OWASP_PREFIX)
    # The new hash is current: verifying it asks for no further upgrade.
    assert await hasher.verify(result.new_hash, PASSWORD) == Verification(ok=True)
    # And a wrong password against the old hash yields nothing to store.
    assert await hasher.verify(old, "not the password") == Verification(ok=False)


async def test_the_old_profile_sees_current_hashes_as_outdated(
    hasher: PasswordHasher, old_hasher: PasswordHasher
) -> None:
    # Rehash follows the configured profile, whichever direction it moved.
    current = await hasher.hash(PASSWORD)
    result = await old_hasher.verify(current, PASSWORD)
    assert result.ok and result.new_hash is not None
    assert result.new_hash.startswith("$argon2id$v=19$m=8192,t=1,p=1$")


async def test_argon2i_hash_is_upgraded_to_argon2id(hasher: PasswordHasher) -> None:
    legacy = argon2.PasswordHasher(
        time_cost=2, memory_cost=19456, parallelism=1, type=argon2.Type.I
    ).hash(PASSWORD)
    result = await hasher.verify(legacy, PASSWORD)
    assert result.ok
    assert result.new_hash is not None and result.new_hash.startswith(OWASP_PREFIX)


# Legacy bcrypt --------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
async def test_legacy_bcrypt_verifies_and_upgrades(hasher: PasswordHasher, prefix: str) -> None:
    stored = legacy_bcrypt(PASSWORD.encode(), prefix)
    result = await hasher.verify(stored, PASSWORD)
    assert result.ok
    assert result.new_hash is not None and result.new_hash.startswith(OWASP_PREFIX)
    assert await hasher.verify(result.new_hash, PASSWORD) == Verification(ok=True)


async def test_legacy_bcrypt_wrong_password(hasher: PasswordHasher) -> None:
    stored = legacy_bcrypt(PASSWORD.encode())
    assert await hasher.verify(stored, PASSWORD + "x") == Verification(ok=False)


async def test_legacy_bcrypt_compares_72_bytes_then_upgrade_counts_every_byte(
    hasher: PasswordHasher,
) -> None:
    # The legacy system hashed only the first 72 bytes of a longer password.
    password = "p" * 72 + "-the rest that bcrypt never saw"
    stored = legacy_bcrypt(password.encode()[:72])

    result = await hasher.verify(stored, password)
    assert result.ok and result.new_hash is not None
    # After the upgrade the whole password matters.
    assert (await hasher.verify(result.new_hash, password)).ok
    assert not (await hasher.verify(result.new_hash, password[:72])).ok
    assert not (await hasher.verify(result.new_hash, password[:72] + "-another tail")).ok


# Unusable stored hashes and unknown users ----------------------------------

MALFORMED: list[object] = [
    None,
    "",
    "not a hash",
    "$argon2id$",
    "$argon2id$v=19$m=19456,t=2,p=1$broken",
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$!!notbase64!!",
    "$2b$",
    "$2b$04$tooshort",
    "$2b$04$" + "\u00e9" * 53,
    "$1$md5crypt$legacy",
    "pbkdf2_sha256$600000$salt$hash",
    b"$argon2id$v=19$m=19456,t=2,p=1$bytes",
    12345,
]


@pytest.mark.parametrize("stored", MALFORMED, ids=repr)
async def test_unusable_stored_hash_is_a_plain_no(hasher: PasswordHasher, stored: object) -> None:
    result = await hasher.verify(stored, PASSWORD)  # type: ignore[arg-type]
    assert result == Verification(ok=False, new_hash=None)


async def test_dummy_verification_fails(hasher: PasswordHasher) -> None:
    assert await hasher.verify_dummy(PASSWORD) == Verification(ok=False)
    assert await hasher.verify_dummy("") == Verification(ok=False)


# Sizes and policy -----------------------------------------------------------


def test_policy_bounds(hasher: PasswordHasher) -> None:
    with pytest.raises(WeakPassword):
        hasher.check_policy("x" * 7)
    with pytest.raises(WeakPassword):
        hasher.check_policy("x" * 1025)
    for length in (8, 64, 1024):
        hasher.check_policy("x" * length)
    # Characters, not bytes: 1,024 two-byte characters are fine.
    hasher.check_policy("\u00e9" * 1024)


def test_byte_cap_is_payload_too_large(hasher: PasswordHasher) -> None:
    # 4 bytes per character: 1,025 characters are 4,100 bytes.
    with pytest.raises(PayloadTooLarge):
        hasher.check_policy("\U0001f600" * 1025)
    with pytest.raises(PayloadTooLarge):
        hasher.check_length("x" * 4097)
    hasher.check_length("x" * 4096)


async def test_oversize_password_is_refused_before_any_hashing() -> None:
    huge = "x" * (1024 * 1024)
    hasher = PasswordHasher(max_workers=1)
    stored = await hasher.hash(PASSWORD)
    # With the pool shut down, any attempt to hash would raise RuntimeError:
    # PayloadTooLarge proves the refusal comes first.
    hasher.close()
    with pytest.raises(RuntimeError):
        await hasher.verify(stored, PASSWORD)
    with pytest.raises(PayloadTooLarge):
        hasher.check_policy(huge)
    with pytest.raises(PayloadTooLarge):
        await hasher.hash(huge)
    with pytest.raises(PayloadTooLarge):
        await hasher.verify(stored, huge)
    with pytest.raises(PayloadTooLarge):
        await hasher.verify_dummy(huge)
    with pytest.raises(PayloadTooLarge):
        await hasher.verify(stored, "\U0001f600" * 1025)


@pytest.mark.parametrize("length", [64, 1024])
async def test_long_passwords_are_accepted_and_not_truncated(
    hasher: PasswordHasher, length: int
) -> None:
    password = "".join(chr(ord("a") + i % 26) for i in range(length))
    stored = await hasher.hash(password)
    assert (await hasher.verify(stored, password)).ok
    last = length - 1
    changed = password[:last] + ("!" if password[last] != "!" else "?")
    assert not (await hasher.verify(stored, changed)).ok


async def test_difference_at_character_1000_matters(hasher: PasswordHasher) -> None:
    password = "a" * 1024
    stored = await hasher.hash(password)
    other = password[:999] + "b" + password[1000:]
    assert len(other) == 1024 and other != password
    assert not (await hasher.verify(stored, other)).ok
    assert (await hasher.verify(stored, password)).ok


async def test_short_password_cannot_be_hashed_but_old_ones_still_verify(
    hasher: PasswordHasher,
) -> None:
    with pytest.raises(WeakPassword):
        await hasher.hash("short")
    # A password set before the policy still signs in: verify checks size only.
    stored = argon2.PasswordHasher.from_parameters(OWASP_ARGON2ID).hash("short")
    assert await hasher.verify(stored, "short") == Verification(ok=True)


async def test_errors_never_quote_the_password(hasher: PasswordHasher) -> None:
    secret = "s3cret-value-\U0001f600"
    cases = [
        (secret[:5], WeakPassword),
        (secret * 500, PayloadTooLarge),
        (secret + "\ud800", InvalidRequest),  # lone surrogate, as JSON allows
    ]
    for password, error in cases:
        with pytest.raises(error) as info:
            await hasher.hash(password)
        assert "s3cret" not in str(info.value)
        assert "s3cret" not in repr(info.value.args)
        # Nothing that holds the password travels along with the error.
        assert info.value.__context__ is None and info.value.__cause__ is None


def test_configuration_is_validated() -> None:
    with pytest.raises(ConfigurationError):
        PasswordHasher(max_workers=0)
    with pytest.raises(ConfigurationError):
        PasswordHasher(parameters=dataclasses.replace(OWASP_ARGON2ID, type=argon2.Type.I))
    with pytest.raises(ConfigurationError):
        PasswordHasher(min_length=10, max_length=9)


def test_default_pool_is_one_thread_per_spare_core(hasher: PasswordHasher) -> None:
    assert hasher.max_workers == default_workers() >= 1


# Off the event loop ----------------------------------------------------------


async def test_verification_runs_off_the_event_loop() -> None:
    hasher = PasswordHasher(max_workers=1)
    try:
        stored = await hasher.hash(PASSWORD)
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        start = ticks
        results = await asyncio.gather(*(hasher.verify(stored, PASSWORD) for _ in range(4)))
        during = ticks - start
        done.set()
        await ticking
    finally:
        hasher.close()
    assert all(r.ok for r in results)
    # Four verifications take ~100 ms of CPU.  Run inline, they would block the
    # loop and the ticker would get a handful of turns at most (one between
    # each); run on the pool, it keeps ticking throughout.
    assert during > 100, during
