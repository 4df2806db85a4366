"""MongoDB one-time token store: one document per token.

Collection ``gatepass_one_time_tokens``, ``_id`` the token's SHA-256::

    {_id: <hash>, purpose, user_id, data, expires_at: <epoch double>,
     expire_at: <BSON date, TTL index>}

* ``take`` is one ``findOneAndDelete`` on ``_id`` and purpose: MongoDB
  removes the document and hands it back in one single-document operation,
  so of concurrent takes from any number of servers exactly one gets it.
  An expired token is deleted by the take that finds it.
* An index on ``(user_id, purpose)`` serves ``drop_user``; the TTL index on
  ``expire_at`` only frees space (the caller's clock decides expiry).
"""

from __future__ import annotations

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.mongodb import MongoStore, expire_at, guarded, ttl_index
from gatepass.onetime.store import Grant

COLLECTION = "gatepass_one_time_tokens"


class MongoOneTimeTokenStore(MongoStore):
    INDEXES = (
        (COLLECTION, (("user_id", 1), ("purpose", 1)), ()),
        (COLLECTION, (("expires_at", 1),), ()),
        ttl_index(COLLECTION),
    )

    @guarded
    async def put(
        self, token_hash: str, *, purpose: str, user_id: str, data: str, expires_at: float
    ) -> None:
        tokens = await self.collection(COLLECTION)
        await tokens.insert_one(
            {"_id": token_hash, "purpose": purpose, "user_id": checked(user_id), "data": data,
             "expires_at": expires_at, "expire_at": expire_at(expires_at)}
        )  # fmt: skip

    @guarded
    async def take(self, token_hash: str, *, purpose: str, now: float) -> Grant | None:
        tokens = await self.collection(COLLECTION)
        doc = await tokens.find_one_and_delete({"_id": token_hash, "purpose": purpose})
        if doc is None or float(doc["expires_at"]) <= now:
            return None
        return Grant(str(doc["user_id"]), str(doc["data"]))

    @guarded
    async def drop_user(self, user_id: str, purpose: str) -> int:
        tokens = await self.collection(COLLECTION)
        result = await tokens.delete_many({"user_id": checked(user_id), "purpose": purpose})
        return int(result.deleted_count)

    @guarded
    async def purge_expired(self, now: float) -> int:
        tokens = await self.collection(COLLECTION)
        result = await tokens.delete_many({"expires_at": {"$lte": now}})
        return int(result.deleted_count)
