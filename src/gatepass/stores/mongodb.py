"""MongoDB session store.

One document per session in ``gatepass_sessions``.  The session key is a
field with a unique index, not ``_id``: MongoDB never changes a document's
``_id``, and ``replace`` must move a session to its new key in one atomic
single-document update (``find_one_and_update`` setting ``key``), so that a
``set_roles`` or ``update_data`` that lands at any moment is either in the
moved document or applied to it, and of concurrent replaces of one key only
the first matches.  A new key that already exists fails on the unique index
and the update changes nothing.

The per-user index is the ``user_id`` field with an index on
``(user_id, created_at)``; expiry is a TTL index on ``expire_at`` (a date kept
in step with ``expires_at``).  Application data is kept as JSON text, as on
SQL: BSON field names may not hold every key a JSON object may.
"""

from __future__ import annotations

import json
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.mongodb import (
    Document,
    MongoStore,
    exact,
    exact_time,
    expire_at,
    guarded,
    ttl_index,
)
from gatepass.sessions.record import SessionRecord

COLLECTION = "gatepass_sessions"


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _document(r: SessionRecord) -> Document:
    return {
        "key": r.key,
        "user_id": r.user_id,
        "roles": list(r.roles),
        "created_at": r.created_at,
        **exact(last_seen_at=r.last_seen_at, expires_at=r.expires_at),
        "absolute_expires_at": r.absolute_expires_at,
        "idle_timeout": r.idle_timeout,
        "remember": r.remember,
        "ip": r.ip,
        "user_agent": r.user_agent,
        "data": _json(r.data),
        "expire_at": expire_at(r.expires_at),
    }


def _record(doc: Document | None) -> SessionRecord | None:
    if doc is None:
        return None
    return SessionRecord(
        key=doc["key"],
        user_id=doc["user_id"],
        roles=tuple(doc["roles"]),
        created_at=doc["created_at"],
        last_seen_at=exact_time(doc, "last_seen_at"),
        expires_at=exact_time(doc, "expires_at"),
        absolute_expires_at=doc["absolute_expires_at"],
        idle_timeout=doc["idle_timeout"],
        remember=doc["remember"],
        ip=doc.get("ip"),
        user_agent=doc.get("user_agent"),
        data=json.loads(doc["data"]),
    )


#: Never hand ``_id`` (an ObjectId) back.
_FIELDS: dict[str, Any] = {"_id": False}


class MongoSessionStore(MongoStore):
    INDEXES = (
        (COLLECTION, (("key", 1),), (("unique", True),)),
        (COLLECTION, (("user_id", 1), ("created_at", 1)), ()),
        (COLLECTION, (("expires_at", 1),), ()),
        ttl_index(COLLECTION),
    )

    @guarded
    async def create(self, record: SessionRecord) -> None:
        checked(record.user_id)
        sessions = await self.collection(COLLECTION)
        try:
            await sessions.insert_one(_document(record))
        except DuplicateKeyError:
            raise ValueError("session key already exists") from None

    @guarded
    async def get(self, key: str) -> SessionRecord | None:
        sessions = await self.collection(COLLECTION)
        return _record(await sessions.find_one({"key": key}, _FIELDS))

    @guarded
    async def touch(self, key: str, *, last_seen_at: float, expires_at: float) -> bool:
        sessions = await self.collection(COLLECTION)
        moved = {
            **exact(last_seen_at=last_seen_at, expires_at=expires_at),
            "expire_at": expire_at(expires_at),
        }
        result = await sessions.update_one({"key": key}, {"$set": moved})
        return result.matched_count == 1

    @guarded
    async def update_data(self, key: str, data: dict[str, object]) -> bool:
        sessions = await self.collection(COLLECTION)
        result = await sessions.update_one({"key": key}, {"$set": {"data": _json(data)}})
        return result.matched_count == 1

    @guarded
    async def replace(
        self, old_key: str, new_key: str, *, last_seen_at: float, expires_at: float
    ) -> SessionRecord | None:
        sessions = await self.collection(COLLECTION)
        moved = {
            "key": new_key,
            **exact(last_seen_at=last_seen_at, expires_at=expires_at),
            "expire_at": expire_at(expires_at),
        }
        try:
            doc = await sessions.find_one_and_update(
                {"key": old_key}, {"$set": moved}, _FIELDS, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            raise ValueError("session key already exists") from None
        return _record(doc)

    @guarded
    async def delete(self, key: str) -> SessionRecord | None:
        sessions = await self.collection(COLLECTION)
        return _record(await sessions.find_one_and_delete({"key": key}, _FIELDS))

    @guarded
    async def list_user(self, user_id: str) -> list[SessionRecord]:
        sessions = await self.collection(COLLECTION)
        found = sessions.find({"user_id": checked(user_id)}, _FIELDS)
        docs = await found.sort([("created_at", 1), ("key", 1)]).to_list()
        return [r for r in map(_record, docs) if r is not None]

    @guarded
    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        sessions = await self.collection(COLLECTION)
        # The key is moved in place by replace, and a session's user never
        # changes: a rotation racing with this delete is matched by user_id
        # before or after its move, so it cannot survive.
        query: Document = {"user_id": checked(user_id)}
        if keep is not None:
            query["key"] = {"$ne": keep}
        return (await sessions.delete_many(query)).deleted_count

    @guarded
    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> int:
        sessions = await self.collection(COLLECTION)
        query = {"user_id": checked(user_id)}
        return (await sessions.update_many(query, {"$set": {"roles": list(roles)}})).matched_count

    @guarded
    async def purge_expired(self, now: float) -> int:
        sessions = await self.collection(COLLECTION)
        return (await sessions.delete_many({"expires_at": {"$lte": now}})).deleted_count
