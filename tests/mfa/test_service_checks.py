"""The MFA service's checks one by one, on the memory store: the client
binding, the mfa_token's bounds and lifetime, how ``amr`` is merged, codes
refused for users without TOTP, a challenge taken by a concurrent request.
(tests/mfa/test_service.py runs the whole flows on every backend.)"""

from __future__ import annotations

import hashlib
import logging
import time

import pyotp
import pytest

from gatepass.errors import Conflict, InvalidCode, InvalidMFAToken, InvalidRequest, RateLimited
from gatepass.mfa.crypto import SecretBox
from gatepass.mfa.memory import MemoryFactorStore
from gatepass.mfa.service import MFAService, client_binding, token_hash
from gatepass.mfa.store import Challenge
from gatepass.throttle import LoginThrottle
from gatepass.throttle.memory import MemoryThrottleStore
from gatepass.throttle.policy import Rule

SECRETS = [b"s" * 40]
CLIENT = client_binding("203.0.113.7", "pytest-agent")


class Clock:
    def __init__(self) -> None:
        now = time.time()
        self.now = now - now % 30 + 15

    def __call__(self) -> float:
        return self.now


def make() -> tuple[MFAService, MemoryFactorStore, Clock]:
    clock = Clock()
    store = MemoryFactorStore()
    return MFAService(store=store, box=SecretBox(SECRETS), clock=clock), store, clock


async def enrol(service: MFAService, clock: Clock, user_id: str = "u1") -> tuple[str, list[str]]:
    setup = await service.begin_totp(user_id, "ada@example.com")
    codes = await service.confirm_totp(user_id, pyotp.TOTP(setup.secret).at(clock.now), ip=None)
    clock.now += 60
    return setup.secret, codes


def wrong_code(secret: str, now: float) -> str:
    near = {pyotp.TOTP(secret).at(now + 30 * k) for k in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222") if c not in near)


def test_the_client_binding_is_the_documented_hash() -> None:
    expected = hashlib.sha256(b"gatepass-mfa-client-v1\x00203.0.113.7\x00pytest-agent").hexdigest()
    assert expected == CLIENT
    assert client_binding(None, None) == client_binding("", "")
    assert client_binding(None, None) == (
        hashlib.sha256(b"gatepass-mfa-client-v1\x00\x00").hexdigest()
    )
    # The address and the agent are kept apart (no "a" + "b" == "ab" games).
    assert client_binding("1.2.3.4", "x") != client_binding("1.2.3.4x", "")
    # Only the first 512 characters of the agent count.
    agent = "A" * 512
    assert client_binding("ip", agent) == client_binding("ip", agent + "tail")
    assert client_binding("ip", agent[:-1]) != client_binding("ip", agent)
    assert client_binding("ip", "\ud800") != client_binding("ip", "\ud801")


def test_the_token_hash_is_sha256() -> None:
    assert token_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert (
        token_hash("\ud800")
        == hashlib.sha256("\ud800".encode("utf-8", "surrogatepass")).hexdigest()
    )


@pytest.mark.parametrize("code", [None, 123456, "", "1" * 65, ["123456"]])
async def test_a_code_must_be_a_short_non_empty_string(code: object) -> None:
    service, _, clock = make()
    await enrol(service, clock)
    with pytest.raises(InvalidRequest) as caught:
        await service.verify_code("u1", code, ip=None)  # type: ignore[arg-type]
    assert caught.value.detail == "The field 'code' must be a short non-empty string."


async def test_a_code_is_stripped_and_64_characters_are_allowed() -> None:
    service, _, clock = make()
    secret, _ = await enrol(service, clock)
    code = pyotp.TOTP(secret).at(clock.now)
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", " " * 58 + "000000", ip=None)  # 64: looked at
    assert await service.verify_code("u1", f" {code}\t", ip=None) == ("otp",)


async def test_no_totp_no_code_works() -> None:
    service, store, clock = make()
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", "123456", ip=None)
    # A pending (unconfirmed) secret is no factor yet.
    setup = await service.begin_totp("u1", "ada@example.com")
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", pyotp.TOTP(setup.secret).at(clock.now), ip=None)
    # Recovery codes without TOTP on (left over in the store) are refused too.
    await store.replace_recovery_codes("u1", [])
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", "abcd-efgh-jkmn-pqrs", ip=None)


async def test_confirm_needs_a_pending_setup_and_the_right_code() -> None:
    service, store, clock = make()
    with pytest.raises(Conflict):
        await service.confirm_totp("u1", "123456", ip=None)
    setup = await service.begin_totp("u1", "ada@example.com")
    with pytest.raises(InvalidCode):
        await service.confirm_totp("u1", wrong_code(setup.secret, clock.now), ip=None)
    assert not (await store.get("u1")).totp_enabled
    with pytest.raises(InvalidCode):
        await service.confirm_totp("u1", "abcd-efgh-jkmn-pqrs", ip=None)
    codes = await service.confirm_totp("u1", pyotp.TOTP(setup.secret).at(clock.now), ip=None)
    factors = await store.get("u1")
    assert factors.totp_enabled and factors.recovery_codes_left == 10
    # Each shown code is one the store accepts (with or without its dashes).
    assert await service.verify_code("u1", codes[0], ip=None) == ("otp", "mfa")
    assert await service.verify_code("u1", codes[1].replace("-", ""), ip=None) == ("otp", "mfa")


async def test_confirm_refuses_when_another_setup_replaced_the_secret() -> None:
    service, store, clock = make()
    setup = await service.begin_totp("u1", "ada@example.com")
    code = pyotp.TOTP(setup.secret).at(clock.now)

    class Replaced(MemoryFactorStore):
        async def enable_totp(self, *args: object, **kwargs: object) -> bool:
            return False

    replaced = Replaced()
    replaced._factors = store._factors
    service.store = replaced
    with pytest.raises(InvalidCode):
        await service.confirm_totp("u1", code, ip=None)


async def test_a_six_digit_code_is_never_tried_as_a_recovery_code() -> None:
    service, _, clock = make()
    secret, _ = await enrol(service, clock)
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", wrong_code(secret, clock.now), ip=None)


async def test_a_code_of_a_used_step_is_refused() -> None:
    service, _, clock = make()
    secret, _ = await enrol(service, clock)
    code = pyotp.TOTP(secret).at(clock.now)
    assert await service.verify_code("u1", code, ip=None) == ("otp",)
    with pytest.raises(InvalidCode):
        await service.verify_code("u1", code, ip=None)


async def test_reseal_happens_only_for_an_older_key() -> None:
    service, store, clock = make()
    secret, _ = await enrol(service, clock)
    before = (await store.get("u1")).totp_secret
    assert await service.verify_code("u1", pyotp.TOTP(secret).at(clock.now), ip=None) == ("otp",)
    assert (await store.get("u1")).totp_secret == before  # same key: untouched


async def test_the_mfa_token_is_stored_as_its_hash_with_its_lifetime() -> None:
    service, store, clock = make()
    service.challenge_ttl = 120
    token = await service.start_challenge("u1", kind="token", client=CLIENT, data={"x": 1})
    assert len(token) == 43
    [(stored, attempts)] = store._challenges.values()
    assert attempts == 0
    assert stored == Challenge(
        token_hash=hashlib.sha256(token.encode()).hexdigest(), user_id="u1", kind="token",
        client=CLIENT, created_at=clock.now, expires_at=clock.now + 120, data={"x": 1},
    )  # fmt: skip
    clock.now += 119.9
    assert (await service.attempt(token, client=CLIENT)).user_id == "u1"
    clock.now += 0.1
    with pytest.raises(InvalidMFAToken):
        await service.attempt(token, client=CLIENT)


async def test_the_mfa_token_length_bounds() -> None:
    service, store, clock = make()
    for token, ok in (("x" * 19, False), ("x" * 20, True), ("x" * 128, True), ("x" * 129, False)):
        await store.create_challenge(Challenge(
            token_hash=token_hash(token), user_id="u1", kind="login", client=CLIENT,
            created_at=clock.now, expires_at=clock.now + 60,
        ))  # fmt: skip
        if ok:
            assert (await service.attempt(token, client=CLIENT)).user_id == "u1"
        else:
            with pytest.raises(InvalidMFAToken):
                await service.attempt(token, client=CLIENT)
    for odd in (None, 7, b"x" * 43):
        with pytest.raises(InvalidMFAToken):
            await service.attempt(odd, client=CLIENT)  # type: ignore[arg-type]


async def test_max_attempts_is_the_services() -> None:
    service, _, _ = make()
    service.max_attempts = 2
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    await service.attempt(token, client=CLIENT)
    await service.attempt(token, client=CLIENT)
    with pytest.raises(InvalidMFAToken):
        await service.attempt(token, client=CLIENT)


async def test_another_clients_attempt_is_refused_and_counted() -> None:
    service, _, _ = make()
    service.max_attempts = 2
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    other = client_binding("203.0.113.8", "pytest-agent")
    for _ in range(2):
        with pytest.raises(InvalidMFAToken):
            await service.attempt(token, client=other)
    with pytest.raises(InvalidMFAToken):
        await service.attempt(token, client=CLIENT)


async def test_finish_merges_amr_in_order_without_repeats() -> None:
    service, _, clock = make()
    secret, codes = await enrol(service, clock)
    token = await service.start_challenge(
        "u1", kind="login", client=CLIENT, data={"amr": ["pwd", "otp", "hwk"]}
    )
    challenge = await service.attempt(token, client=CLIENT)
    passed = await service.finish(token, challenge, pyotp.TOTP(secret).at(clock.now), ip=None)
    assert passed.amr == ("pwd", "otp", "hwk")
    assert passed.challenge is challenge
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    challenge = await service.attempt(token, client=CLIENT)
    passed = await service.finish(token, challenge, codes[0], ip=None)
    assert passed.amr == ("pwd", "otp", "mfa")


async def test_finish_refuses_a_challenge_taken_meanwhile() -> None:
    service, store, clock = make()
    secret, _ = await enrol(service, clock)
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    challenge = await service.attempt(token, client=CLIENT)
    assert await store.take_challenge(token_hash(token))  # a concurrent request won
    with pytest.raises(InvalidMFAToken):
        await service.finish(token, challenge, pyotp.TOTP(secret).at(clock.now), ip=None)


async def test_finish_checks_the_code_of_the_challenges_user() -> None:
    service, _, clock = make()
    secret, _ = await enrol(service, clock, "u1")
    other, _ = await enrol(service, clock, "u2")
    token = await service.start_challenge("u2", kind="login", client=CLIENT, data={})
    challenge = await service.attempt(token, client=CLIENT)
    code = pyotp.TOTP(secret).at(clock.now)
    if code not in {pyotp.TOTP(other).at(clock.now + 30 * k) for k in (-1, 0, 1)}:
        with pytest.raises(InvalidCode):
            await service.finish(token, challenge, code, ip=None)


async def test_passkeys_need_a_passkey_service() -> None:
    service, _, _ = make()
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    challenge = await service.attempt(token, client=CLIENT)
    with pytest.raises(InvalidRequest, match=r"^Passkeys are not available here\.$"):
        await service.passkey_options(token, challenge)
    with pytest.raises(InvalidRequest, match=r"^Passkeys are not available here\.$"):
        await service.finish_with_passkey(token, challenge, {})


# -- throttling: per account *and* address, through every entry point ----------------


def throttled() -> tuple[MFAService, MemoryFactorStore, Clock]:
    """A service whose account+address pair backs off after 2 wrong codes
    (the account and address rules are out of the way)."""
    service, store, clock = make()
    service.throttle = LoginThrottle(
        MemoryThrottleStore(),
        pair=Rule(free=2, window=900, cap=900),
        account=Rule(free=1000, window=900, cap=900),
        address=Rule(free=1000, window=900, cap=900),
        namespace="mfa",
        clock=clock,
    )
    return service, store, clock


async def test_wrong_codes_back_off_the_account_and_address_pair() -> None:
    service, _, clock = throttled()
    secret, _ = await enrol(service, clock)
    wrong = wrong_code(secret, clock.now)
    for _ in range(3):
        with pytest.raises(InvalidCode):
            await service.verify_code("u1", wrong, ip="198.51.100.1")
    with pytest.raises(RateLimited):
        await service.verify_code("u1", pyotp.TOTP(secret).at(clock.now), ip="198.51.100.1")
    # Another address is another pair.
    assert await service.verify_code("u1", pyotp.TOTP(secret).at(clock.now), ip="198.51.100.2") == (
        "otp",
    )


async def test_a_right_code_clears_the_pair() -> None:
    service, _, clock = throttled()
    secret, codes = await enrol(service, clock)
    wrong = wrong_code(secret, clock.now)
    ip = "198.51.100.1"
    for _ in range(2):
        with pytest.raises(InvalidCode):
            await service.verify_code("u1", wrong, ip=ip)
    assert await service.verify_code("u1", codes[0], ip=ip) == ("otp", "mfa")
    for _ in range(2):
        with pytest.raises(InvalidCode):
            await service.verify_code("u1", wrong, ip=ip)
    assert await service.verify_code("u1", codes[1], ip=ip) == ("otp", "mfa")


async def test_the_second_step_is_throttled_by_its_address() -> None:
    service, _, clock = throttled()
    secret, _ = await enrol(service, clock)
    wrong = wrong_code(secret, clock.now)
    service.max_attempts = 100
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    for _ in range(3):
        challenge = await service.attempt(token, client=CLIENT)
        with pytest.raises(InvalidCode):
            await service.finish(token, challenge, wrong, ip="198.51.100.1")
    challenge = await service.attempt(token, client=CLIENT)
    with pytest.raises(RateLimited):
        await service.finish(token, challenge, pyotp.TOTP(secret).at(clock.now), ip="198.51.100.1")


async def test_confirming_is_throttled_and_cleared_like_verifying() -> None:
    service, store, clock = throttled()
    ip = "198.51.100.1"
    setup = await service.begin_totp("u1", "ada@example.com")
    wrong = wrong_code(setup.secret, clock.now)
    for _ in range(2):
        with pytest.raises(InvalidCode):
            await service.confirm_totp("u1", wrong, ip=ip)
    await service.confirm_totp("u1", pyotp.TOTP(setup.secret).at(clock.now), ip=ip)
    # The success cleared the pair: two more wrong codes are still free.
    await service.disable_totp("u1")
    setup = await service.begin_totp("u1", "ada@example.com")
    wrong = wrong_code(setup.secret, clock.now)
    for _ in range(3):
        with pytest.raises(InvalidCode):
            await service.confirm_totp("u1", wrong, ip=ip)
    with pytest.raises(RateLimited):
        await service.confirm_totp("u1", pyotp.TOTP(setup.secret).at(clock.now), ip=ip)
    assert not (await store.get("u1")).totp_enabled


async def test_confirm_without_a_setup_says_so() -> None:
    service, _, _ = make()
    with pytest.raises(Conflict) as caught:
        await service.confirm_totp("u1", "123456", ip=None)
    assert caught.value.detail == "There is no TOTP setup to confirm; start one first."


# -- what the operator's log says ------------------------------------------------


async def test_the_events_are_logged_with_their_user(caplog: pytest.LogCaptureFixture) -> None:
    service, _, clock = make()
    caplog.set_level(logging.INFO, logger="gatepass.mfa")
    _, codes = await enrol(service, clock)
    await service.verify_code("u1", codes[0], ip=None)
    token = await service.start_challenge("u1", kind="login", client=CLIENT, data={})
    with pytest.raises(InvalidMFAToken):
        await service.attempt(token, client=client_binding("198.51.100.9", "x"))
    messages = [r.getMessage() for r in caplog.records if r.name == "gatepass.mfa"]
    assert messages == [
        "totp enabled (user u1)",
        "recovery code used (user u1)",
        "mfa_token presented by another client (user u1)",
    ]
