"""PasskeyService on memory stores, against the software authenticator:
each rule around py_webauthn's checks, one by one (challenge binding and
lifetime, ownership, user handle, UV for a sign-in alone, the counter,
the shape checks).  tests/passkeys/test_api.py runs the same through HTTP.

Services are built inside each test (tests/mutation/README.md).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from gatepass.errors import Conflict, InvalidPasskey, InvalidRequest, NotFound, PasskeyRejected
from gatepass.mfa.crypto import SecretBox
from gatepass.mfa.memory import MemoryFactorStore
from gatepass.mfa.service import MFAService, client_binding
from gatepass.onetime.memory import MemoryOneTimeTokenStore
from gatepass.passkeys.memory import MemoryPasskeyStore
from gatepass.passkeys.service import (
    PURPOSE_LOGIN,
    Asserted,
    PasskeyService,
    challenge_of,
    credential_id_of,
    passkey_name,
)
from gatepass.passkeys.store import MAX_NAME_LENGTH, Passkey
from tests.passkeys.authenticator import SoftAuthenticator, b64

ORIGIN = "https://app.example.test"
RP_ID = "app.example.test"
CLIENT = "client-a"
MALFORMED = "The field 'credential' must be a WebAuthn credential (JSON)."


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def make() -> tuple[PasskeyService, Clock]:
    clock = Clock()
    service = PasskeyService(
        store=MemoryPasskeyStore(), challenges=MemoryOneTimeTokenStore(),
        rp_id=RP_ID, origin=ORIGIN, clock=clock,
    )  # fmt: skip
    return service, clock


async def enrol(
    service: PasskeyService, user_id: str = "u1", *, backup_eligible: bool = False
) -> SoftAuthenticator:
    authenticator = SoftAuthenticator(ORIGIN, backup_eligible=backup_eligible)
    options = await service.registration_options(user_id, f"{user_id}@example.test", client=CLIENT)
    credential = authenticator.create(options)
    await service.register(user_id, credential, "Laptop", client=CLIENT)
    return authenticator


# -- shapes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "credential",
    [None, [], {}, {"rawId": 7}, {"rawId": "A" * 15}, {"rawId": "A" * 1365},
     {"rawId": "A" * 15 + "="}, {"rawId": "A" * 15 + "+"}],
)  # fmt: skip
def test_credential_ids_are_shape_checked(credential: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        credential_id_of(credential)
    assert caught.value.detail == MALFORMED


def test_credential_id_bounds() -> None:
    for raw in ("A" * 16, "a_-9" * 4, "A" * 1364):
        assert credential_id_of({"rawId": raw}) == raw


def client_data(value: object) -> dict[str, Any]:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return {"response": {"clientDataJSON": b64(raw)}}


@pytest.mark.parametrize(
    "credential",
    [
        None,
        {"response": "x"},
        {"response": {}},
        {"response": {"clientDataJSON": 7}},
        {"response": {"clientDataJSON": "A" * 4097}},
        {"response": {"clientDataJSON": "!!!!"}},
        {"response": {"clientDataJSON": "A"}},
        client_data(b"\xff\xfe"),
        client_data(b"not json"),
        client_data(b"[" * 100_000),
    ],
)
def test_malformed_client_data_is_a_400(credential: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        challenge_of(credential)
    assert caught.value.detail == MALFORMED


@pytest.mark.parametrize(
    "data",
    [[], "x", {}, {"challenge": 7}, {"challenge": "A" * 42}, {"challenge": "A" * 44},
     {"challenge": "A" * 42 + "="}, {"challenge": "A" * 42 + "."}],
)  # fmt: skip
def test_a_challenge_not_of_our_shape_is_not_ours(data: object) -> None:
    with pytest.raises(InvalidPasskey):
        challenge_of(client_data(data))


def test_a_challenge_of_our_shape_is_read() -> None:
    assert challenge_of(client_data({"challenge": "a_-Z" * 10 + "abc"})) == "a_-Z" * 10 + "abc"
    big = {"challenge": "B" * 43, "pad": "x" * 2900}
    encoded = b64(json.dumps(big).encode())
    assert len(encoded) <= 4096
    assert challenge_of({"response": {"clientDataJSON": encoded}}) == "B" * 43


def test_passkey_names() -> None:
    assert passkey_name("  My \t new\n key ") == "My new key"
    assert passkey_name("x" * MAX_NAME_LENGTH) == "x" * MAX_NAME_LENGTH
    for bad in (None, 7, "", "   "):
        with pytest.raises(InvalidRequest) as caught:
            passkey_name(bad)
        assert caught.value.detail == "The field 'name' must be a non-empty string."
    for bad in ("x" * (MAX_NAME_LENGTH + 1), "a\x00b", "a\u200bb"):
        with pytest.raises(InvalidRequest) as caught:
            passkey_name(bad)
        assert caught.value.detail == (
            f"A passkey name is at most {MAX_NAME_LENGTH} printable characters."
        )


def test_amr_of_an_assertion() -> None:
    device = Passkey("A" * 22, "u1", "k", 0, "n", 0.0)
    synced = Passkey("A" * 22, "u1", "k", 0, "n", 0.0, backup_eligible=True)
    assert Asserted("u1", device, True).amr == ("hwk", "user")
    assert Asserted("u1", device, False).amr == ("hwk",)
    assert Asserted("u1", synced, True).amr == ("swk", "user")
    assert Asserted("u1", synced, False).amr == ("swk",)


# -- registration ----------------------------------------------------------------


async def test_registration_stores_what_the_authenticator_made() -> None:
    service, clock = make()
    authenticator = await enrol(service, backup_eligible=True)
    [passkey] = await service.passkeys("u1")
    assert passkey.credential_id == authenticator.id
    assert (passkey.user_id, passkey.name, passkey.sign_count) == ("u1", "Laptop", 0)
    assert passkey.transports == ("internal",)  # "made-up" dropped
    assert passkey.backup_eligible is True
    assert passkey.created_at == clock.now
    assert await service.count("u1") == 1
    plain = await enrol(service, "u2")
    [other] = await service.passkeys("u2")
    assert other.credential_id == plain.id and other.backup_eligible is False


async def test_registration_transports_are_optional_and_sorted() -> None:
    service, _ = make()
    authenticator = SoftAuthenticator(ORIGIN)
    options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    credential = authenticator.create(options)
    credential["response"]["transports"] = ["usb", "hybrid", "nfc", "usb"]
    passkey = await service.register("u1", credential, "Key", client=CLIENT)
    assert passkey.transports == ("hybrid", "nfc", "usb")
    options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    credential = SoftAuthenticator(ORIGIN).create(options)
    credential["response"]["transports"] = "usb"
    assert (await service.register("u1", credential, "Key", client=CLIENT)).transports == ()


async def test_registration_options_exclude_existing_passkeys() -> None:
    service, _ = make()
    authenticator = await enrol(service)
    options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    assert [c["id"] for c in options["excludeCredentials"]] == [authenticator.id]
    assert options["rp"] == {"id": RP_ID, "name": "gatepass"}
    assert options["authenticatorSelection"]["residentKey"] == "required"


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"origin": "https://evil.example.test"}, PasskeyRejected),
        ({"rp_id": "evil.example.test"}, PasskeyRejected),
        ({"client": "client-b"}, PasskeyRejected),
        ({"user": "u2"}, PasskeyRejected),
    ],
)
async def test_registration_refusals(change: dict[str, str], kind: type[Exception]) -> None:
    service, _ = make()
    authenticator = SoftAuthenticator(ORIGIN)
    options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    credential = authenticator.create(
        options, origin=change.get("origin"), rp_id=change.get("rp_id")
    )
    with pytest.raises(kind):
        await service.register(
            change.get("user", "u1"), credential, "Key", client=change.get("client", CLIENT)
        )
    assert await service.passkeys("u1") == [] and await service.passkeys("u2") == []
    # The challenge was spent by the failed attempt.
    with pytest.raises(PasskeyRejected):
        await service.register("u1", credential, "Key", client=CLIENT)


async def test_a_registration_challenge_expires() -> None:
    service, clock = make()
    service.challenge_ttl = 60
    options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    credential = SoftAuthenticator(ORIGIN).create(options)
    late_options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    late = SoftAuthenticator(ORIGIN).create(late_options)
    clock.now += 59.5
    await service.register("u1", credential, "Key", client=CLIENT)
    clock.now += 0.5
    with pytest.raises(PasskeyRejected):
        await service.register("u1", late, "Key", client=CLIENT)


async def test_a_credential_registers_once() -> None:
    service, _ = make()
    authenticator = await enrol(service)
    options = await service.registration_options("u2", "u2@x.test", client=CLIENT)
    with pytest.raises(Conflict, match="already registered"):
        await service.register("u2", authenticator.create(options), "Key", client=CLIENT)


async def test_at_most_max_passkeys() -> None:
    service, _ = make()
    for _ in range(20):
        await enrol(service)
    with pytest.raises(Conflict, match="at most 20 passkeys"):
        await service.registration_options("u1", "u1@x.test", client=CLIENT)


async def test_the_limit_is_checked_again_when_registering() -> None:
    service, _ = make()
    for _ in range(19):
        await enrol(service)
    first = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    second = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    await service.register("u1", SoftAuthenticator(ORIGIN).create(first), "K", client=CLIENT)
    with pytest.raises(Conflict, match="at most 20 passkeys"):
        await service.register("u1", SoftAuthenticator(ORIGIN).create(second), "K", client=CLIENT)


async def test_a_malformed_registration_is_a_400() -> None:
    service, _ = make()
    options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    credential = SoftAuthenticator(ORIGIN).create(options)
    credential["response"]["attestationObject"] = 7
    with pytest.raises(InvalidRequest):
        await service.register("u1", credential, "Key", client=CLIENT)
    with pytest.raises(InvalidRequest, match="'name'"):
        await service.register("u1", credential, "", client=CLIENT)


# -- assertions -------------------------------------------------------------------


async def test_sign_in_alone_needs_user_verification() -> None:
    service, _ = make()
    authenticator = await enrol(service)
    options = await service.login_options(client=CLIENT)
    assert options["userVerification"] == "required" and options["allowCredentials"] == []
    with pytest.raises(InvalidPasskey):
        await service.sign_in(authenticator.get(options, uv=False), client=CLIENT)
    options = await service.login_options(client=CLIENT)
    asserted = await service.sign_in(authenticator.get(options), client=CLIENT)
    assert (asserted.user_id, asserted.user_verified, asserted.amr) == ("u1", True, ("hwk", "user"))


async def test_the_second_factor_takes_user_presence() -> None:
    service, _ = make()
    authenticator = await enrol(service)
    options = await service.second_factor_options("u1", binding="b1")
    assert options["userVerification"] == "preferred"
    assert [c["id"] for c in options["allowCredentials"]] == [authenticator.id]
    asserted = await service.second_factor("u1", authenticator.get(options, uv=False), binding="b1")
    assert (asserted.user_id, asserted.user_verified, asserted.amr) == ("u1", False, ("hwk",))


async def test_second_factor_options_need_a_passkey() -> None:
    service, _ = make()
    with pytest.raises(NotFound):
        await service.second_factor_options("u1", binding="b1")


async def test_the_second_factor_is_bound_and_the_users_own() -> None:
    service, _ = make()
    mine = await enrol(service, "u1")
    theirs = await enrol(service, "u2")
    options = await service.second_factor_options("u1", binding="b1")
    with pytest.raises(InvalidPasskey):
        await service.second_factor("u1", mine.get(options), binding="b2")
    options = await service.second_factor_options("u1", binding="b1")
    with pytest.raises(InvalidPasskey):
        await service.second_factor("u1", theirs.get(options), binding="b1")
    # A sign-in challenge does not answer a second-factor one, nor the reverse.
    options = await service.login_options(client="b1")
    with pytest.raises(InvalidPasskey):
        await service.second_factor("u1", mine.get(options), binding="b1")
    options = await service.second_factor_options("u1", binding=CLIENT)
    with pytest.raises(InvalidPasskey):
        await service.sign_in(mine.get(options), client=CLIENT)


async def test_an_assertion_is_bound_to_its_client_and_works_once() -> None:
    service, _ = make()
    authenticator = await enrol(service)
    options = await service.login_options(client=CLIENT)
    with pytest.raises(InvalidPasskey):
        await service.sign_in(authenticator.get(options), client="client-b")
    # Spent by the failed attempt: the right client cannot use it either.
    with pytest.raises(InvalidPasskey):
        await service.sign_in(authenticator.get(options), client=CLIENT)


async def test_a_login_challenge_expires() -> None:
    service, clock = make()
    service.challenge_ttl = 60
    authenticator = await enrol(service)
    options = await service.login_options(client=CLIENT)
    clock.now += 60
    with pytest.raises(InvalidPasskey):
        await service.sign_in(authenticator.get(options), client=CLIENT)
    options = await service.login_options(client=CLIENT)
    clock.now += 59.5
    assert (await service.sign_in(authenticator.get(options), client=CLIENT)).user_id == "u1"


@pytest.mark.parametrize("change", [{"origin": "https://evil.example.test"},
                                    {"rp_id": "evil.example.test"}])  # fmt: skip
async def test_wrong_origin_or_rp_id_is_refused(change: dict[str, str]) -> None:
    service, _ = make()
    authenticator = await enrol(service)
    options = await service.login_options(client=CLIENT)
    with pytest.raises(InvalidPasskey):
        await service.sign_in(authenticator.get(options, **change), client=CLIENT)  # type: ignore[arg-type]


async def test_an_unknown_credential_is_refused() -> None:
    service, _ = make()
    await enrol(service)
    stranger = SoftAuthenticator(ORIGIN)
    options = await service.login_options(client=CLIENT)
    with pytest.raises(InvalidPasskey):
        await service.sign_in(stranger.get(options), client=CLIENT)


async def test_the_user_handle_must_name_the_owner() -> None:
    service, _ = make()
    authenticator = await enrol(service)
    for handle in (b"u2", b"u1x", b""):
        options = await service.login_options(client=CLIENT)
        with pytest.raises(InvalidPasskey):
            await service.sign_in(authenticator.get(options, user_handle=handle), client=CLIENT)
    for handle in (7, "!!!", "A"):
        options = await service.login_options(client=CLIENT)
        credential = authenticator.get(options)
        credential["response"]["userHandle"] = handle
        with pytest.raises(InvalidPasskey):
            await service.sign_in(credential, client=CLIENT)
    # No handle at all is allowed (the credential names its owner).
    options = await service.login_options(client=CLIENT)
    credential = authenticator.get(options)
    credential["response"]["userHandle"] = None
    assert (await service.sign_in(credential, client=CLIENT)).user_id == "u1"


async def test_the_counter_must_move_forward_once_either_side_counts() -> None:
    service, _ = make()
    authenticator = await enrol(service)

    async def sign_in(counter: int) -> Asserted:
        options = await service.login_options(client=CLIENT)
        return await service.sign_in(authenticator.get(options, counter=counter), client=CLIENT)

    # Neither side counts: 0 after 0 is fine, twice.
    await sign_in(0)
    await sign_in(0)
    assert (await sign_in(5)).passkey.sign_count == 0  # the count before this use
    [stored] = await service.passkeys("u1")
    assert stored.sign_count == 5
    for stale in (5, 4, 0):
        with pytest.raises(InvalidPasskey):
            await sign_in(stale)
    await sign_in(6)
    [stored] = await service.passkeys("u1")
    assert stored.sign_count == 6 and stored.last_used_at is not None


async def test_a_lost_counter_race_is_refused() -> None:
    service, _ = make()
    authenticator = await enrol(service)

    class Raced(MemoryPasskeyStore):
        async def record_use(self, *args: object, **kwargs: Any) -> bool:
            return False

    raced = Raced()
    raced._passkeys = service.store._passkeys  # type: ignore[attr-defined]
    service.store = raced
    options = await service.login_options(client=CLIENT)
    with pytest.raises(InvalidPasskey):
        await service.sign_in(authenticator.get(options), client=CLIENT)


async def test_a_garbled_assertion_is_refused_and_changes_nothing() -> None:
    service, _ = make()
    authenticator = await enrol(service)
    for field, value in (("authenticatorData", "AAAA"), ("signature", 7), ("signature", "AA")):
        options = await service.login_options(client=CLIENT)
        credential = authenticator.get(options)
        credential["response"][field] = value
        with pytest.raises(InvalidPasskey):
            await service.sign_in(credential, client=CLIENT)
    [stored] = await service.passkeys("u1")
    assert stored.sign_count == 0 and stored.last_used_at is None


async def test_login_challenges_are_stored_for_the_purpose_and_client() -> None:
    service, clock = make()
    options = await service.login_options(client=CLIENT)
    import hashlib

    digest = hashlib.sha256(options["challenge"].encode()).hexdigest()
    grant = await service.challenges.take(digest, purpose=PURPOSE_LOGIN, now=clock.now)
    assert grant is not None and (grant.user_id, grant.data) == ("", CLIENT)


# -- management ------------------------------------------------------------------


async def test_find_by_public_id_for_the_owner_only() -> None:
    service, _ = make()
    await enrol(service, "u1")
    [passkey] = await service.passkeys("u1")
    assert (await service.find("u1", passkey.id)).credential_id == passkey.credential_id
    for user, pid in (("u2", passkey.id), ("u1", passkey.credential_id), ("u1", "")):
        with pytest.raises(NotFound):
            await service.find(user, pid)


# -- the passkey as the second factor of an MFA challenge ----------------------------


async def test_an_mfa_challenge_finished_with_a_passkey() -> None:
    clock = Clock()
    passkeys = PasskeyService(
        store=MemoryPasskeyStore(), challenges=MemoryOneTimeTokenStore(),
        rp_id=RP_ID, origin=ORIGIN, clock=clock,
    )  # fmt: skip
    mfa = MFAService(
        store=MemoryFactorStore(), box=SecretBox([b"s" * 40]), clock=clock, passkeys=passkeys
    )
    authenticator = await enrol(passkeys)
    assert await mfa.methods("u1") == ("passkey",)
    client = client_binding("203.0.113.7", "agent")
    token = await mfa.start_challenge("u1", kind="login", client=client, data={})
    challenge = await mfa.attempt(token, client=client)
    options = await mfa.passkey_options(token, challenge)
    passed = await mfa.finish_with_passkey(token, challenge, authenticator.get(options, uv=False))
    assert passed.amr == ("pwd", "hwk", "mfa")
    assert passed.challenge is challenge
    # Used up: neither the token nor the assertion works again.
    with pytest.raises(InvalidPasskey):  # its challenge was taken
        await mfa.finish_with_passkey(token, challenge, authenticator.get(options, uv=False))
    # Bound to that mfa_token: another token's challenge does not take it.
    token2 = await mfa.start_challenge(
        "u1", kind="login", client=client, data={"amr": ["pwd", "x-first"]}
    )
    challenge2 = await mfa.attempt(token2, client=client)
    token3 = await mfa.start_challenge("u1", kind="login", client=client, data={})
    challenge3 = await mfa.attempt(token3, client=client)
    options3 = await mfa.passkey_options(token3, challenge3)
    with pytest.raises(InvalidPasskey):
        await mfa.finish_with_passkey(token2, challenge2, authenticator.get(options3))
    options2 = await mfa.passkey_options(token2, challenge2)
    passed = await mfa.finish_with_passkey(token2, challenge2, authenticator.get(options2))
    assert passed.amr == ("pwd", "x-first", "hwk", "user", "mfa")


async def test_an_mfa_challenge_takes_only_its_users_passkey() -> None:
    clock = Clock()
    passkeys = PasskeyService(
        store=MemoryPasskeyStore(), challenges=MemoryOneTimeTokenStore(),
        rp_id=RP_ID, origin=ORIGIN, clock=clock,
    )  # fmt: skip
    mfa = MFAService(
        store=MemoryFactorStore(), box=SecretBox([b"s" * 40]), clock=clock, passkeys=passkeys
    )
    await enrol(passkeys, "u1")
    intruder = await enrol(passkeys, "u2")
    token = await mfa.start_challenge("u1", kind="login", client="c", data={})
    challenge = await mfa.attempt(token, client="c")
    options = await mfa.passkey_options(token, challenge)
    with pytest.raises(InvalidPasskey):
        await mfa.finish_with_passkey(token, challenge, intruder.get(options))


async def test_finish_with_passkey_refuses_a_challenge_taken_meanwhile() -> None:
    clock = Clock()
    passkeys = PasskeyService(
        store=MemoryPasskeyStore(), challenges=MemoryOneTimeTokenStore(),
        rp_id=RP_ID, origin=ORIGIN, clock=clock,
    )  # fmt: skip
    store = MemoryFactorStore()
    mfa = MFAService(store=store, box=SecretBox([b"s" * 40]), clock=clock, passkeys=passkeys)
    authenticator = await enrol(passkeys)
    token = await mfa.start_challenge("u1", kind="login", client="c", data={})
    challenge = await mfa.attempt(token, client="c")
    options = await mfa.passkey_options(token, challenge)
    from gatepass.errors import InvalidMFAToken
    from gatepass.mfa.service import token_hash

    assert await store.take_challenge(token_hash(token))
    with pytest.raises(InvalidMFAToken):
        await mfa.finish_with_passkey(token, challenge, authenticator.get(options))


# -- found by surviving mutants ----------------------------------------------------


async def test_a_counter_of_one_then_zero_is_refused() -> None:
    service, _ = make()
    authenticator = await enrol(service)
    options = await service.login_options(client=CLIENT)
    await service.sign_in(authenticator.get(options, counter=1), client=CLIENT)
    options = await service.login_options(client=CLIENT)
    with pytest.raises(InvalidPasskey):
        await service.sign_in(authenticator.get(options, counter=0), client=CLIENT)


class NoPresence(SoftAuthenticator):
    """An authenticator that signs without the user-present flag."""

    def _flags(self, uv: bool, extra: int = 0) -> int:
        return super()._flags(uv, extra) & ~0x01


async def test_a_registration_without_user_presence_is_refused() -> None:
    service, _ = make()
    options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    with pytest.raises(PasskeyRejected):
        await service.register("u1", NoPresence(ORIGIN).create(options), "Key", client=CLIENT)
    assert await service.passkeys("u1") == []


@pytest.mark.parametrize("transports", [None, 7, "usb", {"usb": 1}])
async def test_transports_that_are_not_a_list_are_dropped(transports: object) -> None:
    service, _ = make()
    options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    credential = SoftAuthenticator(ORIGIN).create(options)
    credential["response"]["transports"] = transports
    assert (await service.register("u1", credential, "Key", client=CLIENT)).transports == ()


def test_client_data_of_exactly_4096_characters_is_read() -> None:
    base = json.dumps({"challenge": "B" * 43, "pad": ""})
    data = json.dumps({"challenge": "B" * 43, "pad": "x" * (3072 - len(base))}).encode()
    assert len(data) == 3072 and len(b64(data)) == 4096
    assert challenge_of({"response": {"clientDataJSON": b64(data)}}) == "B" * 43


async def test_not_found_and_conflict_say_so() -> None:
    service, _ = make()
    authenticator = await enrol(service)
    with pytest.raises(NotFound) as caught:
        await service.find("u1", "nope")
    assert caught.value.detail == "There is no such passkey."
    options = await service.registration_options("u2", "u2@x.test", client=CLIENT)
    with pytest.raises(Conflict) as conflict:
        await service.register("u2", authenticator.create(options), "Key", client=CLIENT)
    assert conflict.value.detail == "This passkey is already registered."


async def test_the_log_names_users_and_credentials_by_tag(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import hashlib

    caplog.set_level(logging.INFO, logger="gatepass.passkeys")
    service, _ = make()
    mine = await enrol(service, "u1")
    theirs = await enrol(service, "u2")

    def tag(authenticator: SoftAuthenticator) -> str:
        return hashlib.sha256(authenticator.id.encode()).hexdigest()[:24]

    async def refused_sign_in(credential: dict[str, Any], client: str = CLIENT) -> None:
        with pytest.raises(InvalidPasskey):
            await service.sign_in(credential, client=client)

    options = await service.login_options(client=CLIENT)
    await refused_sign_in(mine.get(options), client="other")
    options = await service.login_options(client=CLIENT)
    await refused_sign_in(SoftAuthenticator(ORIGIN).get(options))
    options = await service.login_options(client=CLIENT)
    await refused_sign_in(mine.get(options, user_handle=b"u2"))
    options = await service.login_options(client=CLIENT)
    await refused_sign_in(mine.get(options, uv=False))
    options = await service.login_options(client=CLIENT)
    await service.sign_in(mine.get(options, counter=3), client=CLIENT)  # logs nothing
    options = await service.login_options(client=CLIENT)
    await refused_sign_in(mine.get(options, counter=0))
    options = await service.second_factor_options("u1", binding="b")
    with pytest.raises(InvalidPasskey):
        await service.second_factor("u1", theirs.get(options), binding="b")
    options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    with pytest.raises(PasskeyRejected):
        await service.register("u2", SoftAuthenticator(ORIGIN).create(options), "K", client=CLIENT)
    options = await service.registration_options("u1", "u1@x.test", client=CLIENT)
    with pytest.raises(PasskeyRejected):
        await service.register(
            "u1", SoftAuthenticator(ORIGIN).create(options, rp_id="evil.test"), "K", client=CLIENT
        )
    messages = [r.getMessage() for r in caplog.records if r.name == "gatepass.passkeys"]
    assert messages == [
        f"passkey registered (user u1, {tag(mine)})",
        f"passkey registered (user u2, {tag(theirs)})",
        "passkey challenge presented by another client (passkey-login)",
        "passkey assertion with an unknown credential",
        f"passkey assertion names another user (user u1, {tag(mine)})",
        f"passkey assertion refused (user u1, {tag(mine)}): InvalidAuthenticationResponse",
        "passkey signature counter did not advance (0 after 3): possibly a "
        f"cloned authenticator; refused (user u1, {tag(mine)})",
        "passkey of another user offered (user u1)",
        "passkey registration challenge of another user (user u2)",
        "passkey registration refused (user u1): InvalidRegistrationResponse",
    ]
