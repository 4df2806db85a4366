"""Passkeys in MongoDB: collection ``gatepass_passkeys``.

``_id`` is the credential id, so the ``_id`` index refuses a credential
registered twice; an index on ``(user_id, created_at)`` lists a user's.
Recording a use is one ``update_one`` filtered on the counter the assertion
was checked against: of two that saw the same counter, one matches.
"""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.mongodb import Document, MongoStore, guarded
from gatepass.passkeys.store import Passkey, load_transports

COLLECTION = "gatepass_passkeys"


def _passkey(doc: Document) -> Passkey:
    used = doc.get("last_used_at")
    return Passkey(
        credential_id=doc["_id"], user_id=doc["user_id"], public_key=doc["public_key"],
        sign_count=int(doc["sign_count"]), name=doc["name"],
        created_at=float(doc["created_at"]), transports=load_transports(doc.get("transports")),
        last_used_at=None if used is None else float(used),
        backup_eligible=bool(doc.get("backup_eligible", False)),
    )  # fmt: skip


class MongoPasskeyStore(MongoStore):
    INDEXES = ((COLLECTION, (("user_id", 1), ("created_at", 1)), ()),)

    @guarded
    async def add(self, passkey: Passkey) -> bool:
        passkeys = await self.collection(COLLECTION)
        try:
            await passkeys.insert_one(
                {
                    "_id": passkey.credential_id,
                    "user_id": checked(passkey.user_id),
                    "public_key": passkey.public_key,
                    "sign_count": passkey.sign_count,
                    "name": passkey.name,
                    "created_at": passkey.created_at,
                    "transports": list(passkey.transports),
                    "last_used_at": passkey.last_used_at,
                    "backup_eligible": passkey.backup_eligible,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    @guarded
    async def get(self, credential_id: str) -> Passkey | None:
        passkeys = await self.collection(COLLECTION)
        doc = await passkeys.find_one({"_id": credential_id})
        return None if doc is None else _passkey(doc)

    @guarded
    async def list_user(self, user_id: str) -> list[Passkey]:
        passkeys = await self.collection(COLLECTION)
        found = passkeys.find({"user_id": checked(user_id)})
        docs = await found.sort([("created_at", 1), ("_id", 1)]).to_list()
        return [_passkey(d) for d in docs]

    @guarded
    async def rename(self, user_id: str, credential_id: str, name: str) -> bool:
        passkeys = await self.collection(COLLECTION)
        query = {"_id": credential_id, "user_id": checked(user_id)}
        return (await passkeys.update_one(query, {"$set": {"name": name}})).matched_count == 1

    @guarded
    async def remove(self, user_id: str, credential_id: str) -> bool:
        passkeys = await self.collection(COLLECTION)
        query = {"_id": credential_id, "user_id": checked(user_id)}
        return (await passkeys.delete_one(query)).deleted_count == 1

    @guarded
    async def remove_user(self, user_id: str) -> int:
        passkeys = await self.collection(COLLECTION)
        return (await passkeys.delete_many({"user_id": checked(user_id)})).deleted_count

    @guarded
    async def record_use(
        self, credential_id: str, *, seen_count: int, new_count: int, now: float
    ) -> bool:
        passkeys = await self.collection(COLLECTION)
        result = await passkeys.update_one(
            {"_id": credential_id, "sign_count": seen_count},
            {"$set": {"sign_count": new_count, "last_used_at": now}},
        )
        return result.matched_count == 1
