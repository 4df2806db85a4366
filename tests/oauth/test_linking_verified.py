"""A provider that asserts a verified email marks the account verified (SPEC
"Account lifecycle"); an unverified or different email does not."""

from __future__ import annotations

from gatepass.oauth.config import ProviderConfig
from gatepass.oauth.identities import MemoryIdentityStore
from gatepass.oauth.linking import AccountLinker
from gatepass.oauth.providers import Profile
from gatepass.users.memory import MemoryUserStore

CONFIG = ProviderConfig(name="op", kind="oidc", client_id="c", issuer="https://op.example")


def linker() -> AccountLinker:
    return AccountLinker(MemoryUserStore(), MemoryIdentityStore())


async def test_a_new_account_from_a_verified_email_is_verified() -> None:
    accounts = linker()
    user = await accounts.resolve(
        CONFIG, Profile("https://op.example", "s1", "Ada@Example.com", True), link_user=None
    )
    assert user.email == "ada@example.com" and user.email_verified
    stored = await accounts.users.get(user.id)
    assert stored is not None and stored.email_verified


async def test_an_unverified_email_verifies_nothing() -> None:
    accounts = linker()
    user = await accounts.resolve(
        CONFIG, Profile("https://op.example", "s1", "ada@example.com", False), link_user=None
    )
    assert not user.email_verified
    assert not (await accounts.users.get(user.id)).email_verified  # type: ignore[union-attr]


async def test_linking_verifies_only_the_accounts_own_address() -> None:
    accounts = linker()
    mine = await accounts.users.create("ada@example.com", "hash")
    other = await accounts.users.create("bob@example.com", "hash")
    await accounts.resolve(
        CONFIG, Profile("https://op.example", "s1", "someone@else.example", True),
        link_user=other.id,
    )  # fmt: skip
    assert not (await accounts.users.get(other.id)).email_verified  # type: ignore[union-attr]
    linked = await accounts.resolve(
        CONFIG, Profile("https://op.example", "s2", "ada@example.com", True), link_user=mine.id
    )
    assert linked.email_verified
    # A later sign-in through the linked identity keeps it so.
    again = await accounts.resolve(
        CONFIG, Profile("https://op.example", "s2", "ada@example.com", True), link_user=None
    )
    assert again.id == mine.id and again.email_verified
