"""One contract, every passkey store backend (see conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from gatepass.passkeys.store import Passkey, PasskeyStore, public_id
from tests.backends import Backend


def passkey(credential_id: str = "cred-a", *, user_id: str = "alice", count: int = 0,
            created_at: float = 1000.0, name: str = "Laptop") -> Passkey:  # fmt: skip
    return Passkey(
        credential_id=credential_id, user_id=user_id, public_key="pQECAyYgASFYIA", sign_count=count,
        name=name, created_at=created_at, transports=("internal", "hybrid"),
        backup_eligible=True,
    )  # fmt: skip


async def test_a_passkey_round_trips(store: PasskeyStore) -> None:
    assert await store.get("cred-a") is None
    assert await store.list_user("alice") == []
    assert await store.add(passkey(count=7))
    found = await store.get("cred-a")
    assert found == passkey(count=7)
    assert found is not None and found.last_used_at is None
    assert found.id == public_id("cred-a") and len(found.id) == 24 and found.id != "cred-a"
    assert found.as_json() == {
        "id": public_id("cred-a"), "name": "Laptop", "created_at": 1000.0, "last_used_at": None,
        "transports": ["internal", "hybrid"],
    }  # fmt: skip


async def test_a_credential_id_is_registered_once_to_anyone(store: PasskeyStore) -> None:
    assert await store.add(passkey())
    assert not await store.add(passkey(name="Again"))
    assert not await store.add(passkey(user_id="mallory"))
    found = await store.get("cred-a")
    assert found is not None and found.user_id == "alice" and found.name == "Laptop"
    assert await store.list_user("mallory") == []


async def test_a_users_passkeys_oldest_first(store: PasskeyStore) -> None:
    await store.add(passkey("cred-b", created_at=2000.0))
    await store.add(passkey("cred-a", created_at=1000.0))
    await store.add(passkey("cred-c", created_at=2000.0))
    await store.add(passkey("cred-z", user_id="bob"))
    assert [p.credential_id for p in await store.list_user("alice")] == [
        "cred-a", "cred-b", "cred-c",
    ]  # fmt: skip
    assert [p.credential_id for p in await store.list_user("bob")] == ["cred-z"]


async def test_rename_and_remove_touch_only_the_users_own(store: PasskeyStore) -> None:
    await store.add(passkey("cred-a"))
    await store.add(passkey("cred-b", user_id="bob"))
    assert not await store.rename("alice", "cred-b", "Stolen")
    assert not await store.remove("alice", "cred-b")
    assert not await store.rename("alice", "unknown", "x")
    assert await store.rename("alice", "cred-a", "Phone")
    assert (await store.get("cred-a")).name == "Phone"  # type: ignore[union-attr]
    bob = await store.get("cred-b")
    assert bob is not None and bob.name == "Laptop"
    assert await store.remove("alice", "cred-a")
    assert not await store.remove("alice", "cred-a")
    assert await store.get("cred-a") is None
    assert await store.list_user("alice") == []
    assert [p.credential_id for p in await store.list_user("bob")] == ["cred-b"]


async def test_remove_user_removes_every_passkey_of_that_user_only(store: PasskeyStore) -> None:
    for i in range(3):
        await store.add(passkey(f"cred-{i}"))
    await store.add(passkey("cred-bob", user_id="bob"))
    assert await store.remove_user("alice") == 3
    assert await store.remove_user("alice") == 0
    assert await store.list_user("alice") == []
    assert await store.get("cred-0") is None
    assert await store.get("cred-bob") is not None


async def test_a_use_moves_the_counter_only_from_the_count_it_saw(store: PasskeyStore) -> None:
    await store.add(passkey(count=5))
    assert not await store.record_use("cred-a", seen_count=4, new_count=6, now=2000.0)
    assert not await store.record_use("unknown", seen_count=5, new_count=6, now=2000.0)
    assert await store.record_use("cred-a", seen_count=5, new_count=9, now=2000.5)
    found = await store.get("cred-a")
    assert found is not None and found.sign_count == 9 and found.last_used_at == 2000.5
    # The assertion that saw 5 as well comes too late.
    assert not await store.record_use("cred-a", seen_count=5, new_count=6, now=2001.0)
    assert (await store.get("cred-a")).sign_count == 9  # type: ignore[union-attr]


async def test_two_assertions_with_the_same_counter_cannot_both_pass(
    store: PasskeyStore,
) -> None:
    await store.add(passkey(count=5))
    results = await asyncio.gather(
        *(store.record_use("cred-a", seen_count=5, new_count=6, now=2000.0) for _ in range(20))
    )
    assert results.count(True) == 1


async def test_user_ids_are_strings(store: PasskeyStore) -> None:
    with pytest.raises(TypeError):
        await store.list_user(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await store.add(passkey(user_id=42))  # type: ignore[arg-type]


async def test_another_store_on_the_same_data_sees_it(backend: Backend[PasskeyStore]) -> None:
    first = await backend.open()
    await first.add(passkey(count=1))
    await first.record_use("cred-a", seen_count=1, new_count=2, now=3000.0)
    second = await backend.open()
    found = await second.get("cred-a")
    assert found is not None and found.sign_count == 2 and found.last_used_at == 3000.0
    assert found.transports == ("internal", "hybrid") and found.backup_eligible
