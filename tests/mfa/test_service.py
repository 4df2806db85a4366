"""The second-factor rules, on every real store, with an injected clock.

Codes are computed by pyotp (an implementation independent of the server's
own step arithmetic) at the times the tests choose.
"""

from __future__ import annotations

import logging
import time

import pyotp
import pytest

from gatepass.errors import InvalidCode, InvalidMFAToken, RateLimited
from gatepass.mfa.crypto import SecretBox, SecretUnreadable
from gatepass.mfa.service import MFAService, client_binding
from gatepass.mfa.store import FactorStore
from gatepass.throttle import LoginThrottle
from gatepass.throttle.memory import MemoryThrottleStore

SECRETS = [b"s" * 40]
CLIENT = client_binding("203.0.113.7", "pytest-agent")


class Clock:
    def __init__(self, now: float) -> None:
        # The middle of a 30-second step, so "now" and "now ± 30 s" are
        # unambiguous steps.
        self.now = now - now % 30 + 15

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
def service(store: FactorStore, clock: Clock) -> MFAService:
    throttle = LoginThrottle(MemoryThrottleStore(), namespace="mfa", clock=clock)
    return MFAService(store=store, box=SecretBox(SECRETS), throttle=throttle, clock=clock)


async def enrol(service: MFAService, clock: Clock, user_id: str = "u1") -> tuple[str, list[str]]:
    setup = await service.begin_totp(user_id, "ada@example.com")
    codes = await service.confirm_totp(
        user_id, pyotp.TOTP(setup.secret).at(clock.now), ip="203.0.113.7"
    )
    return setup.secret, codes


async def test_enrolment(service: MFAService, clock: Clock, store: FactorStore) -> None:
    setup = await service.begin_totp("u1", "ada@example.com")
    assert setup.otpauth_uri.startswith("otpauth://totp/")
    assert f"secret={setup.secret}" in setup.otpauth_uri
    assert (await service.methods("u1")) == ()  # not on before confirmation
    with pytest.raises(InvalidCode):
        await service.confirm_totp("u1", "000000" if pyotp.TOTP(setup.secret).at(clock.now)
                                   != "000000" else "111111", ip=None)  # fmt: skip
    codes = await service.confirm_totp("u1", pyotp.TOTP(setup.secret).at(clock.now), ip=None)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert (await service.methods("u1")) == ("totp", "recovery_code")


async def test_the_secret_is_sealed_at_rest(service: MFAService, clock: Clock,
                                             store: FactorStore) -> None:  # fmt: skip
    secret, _ = await enrol(service, clock)
    stored = (await store.get("u1")).totp_secret
    assert stored is not None and secret not in stored
    assert secret.lower() not in stored.lower()
    assert SecretBox(SECRETS).open(stored, user_id="u1") == secret
    # Bound to its user: the same bytes on another user's row do not open.
    with pytest.raises(SecretUnreadable):
        SecretBox(SECRETS).open(stored, user_id="u2")
    # And to the server secret.
    with pytest.raises(SecretUnreadable):
        SecretBox([b"t" * 40]).open(stored, user_id="u1")


async def test_a_rotated_server_secret_still_opens_and_reseals(
    service: MFAService, clock: Clock, store: FactorStore
) -> None:
    secret, _ = await enrol(service, clock)
    old = (await store.get("u1")).totp_secret
    assert old is not None
    service.box = SecretBox([b"n" * 40, *SECRETS])  # a new secret, newest first
    assert service.box.needs_reseal(old)
    clock.now += 30
    assert await service.verify_code("u1", pyotp.TOTP(secret).at(clock.now), ip=None) == ("otp",)
    new = (await store.get("u1")).totp_secret
    assert new is not None and new != old and not service.box.needs_reseal(new)
    # Once re-sealed, the old secret can be dropped.
    assert SecretBox([b"n" * 40]).open(new, user_id="u1") == secret


@pytest.mark.parametrize("offset", [-1, 0, 1])
async def test_one_step_either_side_is_accepted(
    service: MFAService, clock: Clock, offset: int
) -> None:
    secret, _ = await enrol(service, clock)
    clock.now += 300  # well after the confirming code's step
    code = pyotp.TOTP(secret).at(clock.now + offset * 30)
    assert await service.verify_code("u1", code, ip=None) == ("otp",)


@pytest.mark.parametrize("offset", [-2, 2, -3, 3])
async def test_two_steps_away_is_refused(service: MFAService, clock: Clock, offset: int) -> None:
    secret, _ = await enrol(service, clock)
    clock.now += 300
    code = pyotp.TOTP(secret).at(clock.now + offset * 30)
    if code in {pyotp.TOTP(secret).at(clock.now + d * 30) for d in (-1, 0, 1)}:
        pytest.skip("the far code happens to equal a near one (1 in 333,333)")
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", code, ip=None)


async def test_a_code_is_accepted_once(service: MFAService, clock: Clock) -> None:
    secret, _ = await enrol(service, clock)
    clock.now += 60
    code = pyotp.TOTP(secret).at(clock.now)
    assert await service.verify_code("u1", code, ip=None) == ("otp",)
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", code, ip=None)
    # Still within its window 20 s later: still refused.
    clock.now += 20
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", code, ip=None)
    # The previous step's code, valid by the window, is older than the used one.
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", pyotp.TOTP(secret).at(clock.now - 30), ip=None)


async def test_the_confirming_code_cannot_be_replayed(service: MFAService, clock: Clock) -> None:
    setup = await service.begin_totp("u1", "ada@example.com")
    code = pyotp.TOTP(setup.secret).at(clock.now)
    await service.confirm_totp("u1", code, ip=None)
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", code, ip=None)


async def test_recovery_codes_work_once_in_any_spelling(service: MFAService,
                                                        clock: Clock) -> None:  # fmt: skip
    _, codes = await enrol(service, clock)
    first = codes[0]
    assert await service.verify_code("u1", first.upper().replace("-", " "), ip=None) == (
        "otp", "mfa",
    )  # fmt: skip
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", first, ip=None)
    assert (await service.factors("u1")).recovery_codes_left == 9
    # Another user's code is not ours.
    await enrol(service, clock, "u2")
    with pytest.raises(InvalidCode):
        await service.verify_code("u2", codes[1], ip=None)


async def test_regenerating_replaces_every_code(service: MFAService, clock: Clock) -> None:
    _, old = await enrol(service, clock)
    new = await service.regenerate_recovery_codes("u1")
    assert not set(old) & set(new)
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", old[3], ip=None)
    assert await service.verify_code("u1", new[3], ip=None) == ("otp", "mfa")


async def test_wrong_codes_are_throttled_per_account(service: MFAService, clock: Clock) -> None:
    secret, _ = await enrol(service, clock)
    clock.now += 60
    right = pyotp.TOTP(secret).at(clock.now)
    wrong = "000000" if right != "000000" else "111111"
    with pytest.raises(RateLimited):
        for _ in range(30):
            with pytest.raises(InvalidCode):
                await service.verify_code("u1", wrong, ip=f"198.51.100.{_}")
    # Throttled before the code is looked at: even the right one waits.
    with pytest.raises(RateLimited):
        await service.verify_code("u1", right, ip="198.51.100.200")


async def test_a_challenge_is_single_use(service: MFAService, clock: Clock) -> None:
    secret, _ = await enrol(service, clock)
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    clock.now += 30
    challenge = await service.attempt(token, client=CLIENT)
    passed = await service.finish(token, challenge, pyotp.TOTP(secret).at(clock.now), ip=None)
    assert passed.amr == ("pwd", "otp") and passed.challenge.user_id == "u1"
    with pytest.raises(InvalidMFAToken):
        await service.attempt(token, client=CLIENT)


async def test_five_wrong_codes_void_a_challenge(service: MFAService, clock: Clock) -> None:
    secret, _ = await enrol(service, clock)
    token = await service.start_challenge("u1", kind="token", client=CLIENT, data={})
    clock.now += 30
    right = pyotp.TOTP(secret).at(clock.now)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        challenge = await service.attempt(token, client=CLIENT)
        with pytest.raises(InvalidCode):
            await service.finish(token, challenge, wrong, ip=None)
    with pytest.raises(InvalidMFAToken):
        await service.attempt(token, client=CLIENT)  # the right code never gets a look


async def test_a_challenge_expires(service: MFAService, clock: Clock) -> None:
    await enrol(service, clock)
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    clock.now += 301
    with pytest.raises(InvalidMFAToken):
        await service.attempt(token, client=CLIENT)


async def test_a_challenge_is_bound_to_its_client(service: MFAService, clock: Clock) -> None:
    secret, _ = await enrol(service, clock)
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    for other in (client_binding("203.0.113.8", "pytest-agent"),
                  client_binding("203.0.113.7", "other-agent")):  # fmt: skip
        with pytest.raises(InvalidMFAToken):
            await service.attempt(token, client=other)
    clock.now += 30
    challenge = await service.attempt(token, client=CLIENT)
    await service.finish(token, challenge, pyotp.TOTP(secret).at(clock.now), ip=None)


async def test_made_up_tokens_are_refused(service: MFAService) -> None:
    for token in ("", "x", "a" * 43, "a" * 500):
        with pytest.raises(InvalidMFAToken):
            await service.attempt(token, client=CLIENT)


async def test_nothing_secret_is_logged(service: MFAService, clock: Clock,
                                        caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    secret, codes = await enrol(service, clock)
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    challenge = await service.attempt(token, client=CLIENT)
    await service.finish(token, challenge, codes[0], ip=None)
    await service.regenerate_recovery_codes("u1")
    text = caplog.text
    assert "recovery code used" in text  # the events are logged...
    for value in (secret, token, codes[0], codes[0].replace("-", "")):
        assert value not in text  # ...without their secrets
