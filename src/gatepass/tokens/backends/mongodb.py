"""MongoDB refresh and revocation stores.

**Rotation** is a read and a compare-and-set on the family's document, in a
loop: read the family, apply :func:`~gatepass.tokens.refresh.decide` (the one
copy of the rules, pure), and when it changed something write the result with
``update_one`` filtered on the ``current_hash`` and ``revoked`` that were
read.  Those two fields are the family's version: every write ``decide`` can
ask for changes one of them (a rotation moves ``current_hash``, which never
comes back since each successor is derived from the last; a reuse sets
``revoked``, which is never unset), so the filter matches only if nothing
changed since the read.  If it does not match, another rotation won: read
again and decide again.  Outcomes that write nothing (GRACE, REVOKED,
EXPIRED, UNKNOWN) are answered from the read.

Why not one ``find_one_and_update`` carrying the rules as a conditional
(aggregation-pipeline) update: it would be a second copy of ``decide`` in
another language, to keep in step by hand, and the emulator the suites run
against has no pipeline updates.  The loop costs one more round trip only
when two rotations of one family really race.

**Revocation** entries and the per-user generation share one collection, so
:meth:`MongoRevocationStore._check` is one ``find`` over three ``_id`` values
(the jti's entry, the family marker, the generation): one round trip.
Entries expire through a TTL index on ``expire_at``; reads compare ``until``
with the store's clock, since the TTL monitor runs only once a minute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.mongodb import (
    Document,
    MongoConnection,
    MongoStore,
    exact,
    exact_time,
    expire_at,
    guarded,
    ttl_index,
)
from gatepass.tokens.refresh import Family, RotateOutcome, decide
from gatepass.tokens.revocation import RevocationEntries, family_marker

FAMILIES = "gatepass_refresh_families"
REVOKED = "gatepass_revoked"

#: How many times rotate re-reads after losing a race before giving up; each
#: loss means another rotation of the same family committed, so a handful of
#: concurrent refreshes of one login settle well within it.
_ATTEMPTS = 64


def _document(f: Family) -> Document:
    return {
        "_id": f.family_id,
        "user_id": f.user_id,
        "created_at": f.created_at,
        "absolute_expires_at": f.absolute_expires_at,
        "current_hash": f.current_hash,
        "previous_hash": f.previous_hash,
        **exact(rotated_at=f.rotated_at),
        "generation": f.generation,
        "revoked": f.revoked,
        "data": json.dumps(f.data, separators=(",", ":"), ensure_ascii=False),
        "expire_at": expire_at(f.absolute_expires_at),
    }


def _family(doc: Document | None) -> Family | None:
    if doc is None:
        return None
    return Family(
        family_id=doc["_id"],
        user_id=doc["user_id"],
        created_at=doc["created_at"],
        absolute_expires_at=doc["absolute_expires_at"],
        current_hash=doc["current_hash"],
        previous_hash=doc["previous_hash"],
        rotated_at=exact_time(doc, "rotated_at"),
        generation=int(doc["generation"]),
        revoked=bool(doc["revoked"]),
        data=json.loads(doc["data"]),
    )


class MongoRefreshStore(MongoStore):
    INDEXES = (
        (FAMILIES, (("user_id", 1), ("created_at", 1)), ()),
        (FAMILIES, (("absolute_expires_at", 1),), ()),
        ttl_index(FAMILIES),
    )

    @guarded
    async def create(self, family: Family) -> None:
        checked(family.user_id)
        families = await self.collection(FAMILIES)
        try:
            await families.insert_one(_document(family))
        except DuplicateKeyError:
            raise ValueError("refresh family already exists") from None

    @guarded
    async def rotate(
        self, family_id: str, presented_hash: str, successor_hash: str, *, now: float, grace: float
    ) -> tuple[RotateOutcome, Family | None]:
        families = await self.collection(FAMILIES)
        for _ in range(_ATTEMPTS):
            current = _family(await families.find_one({"_id": family_id}))
            outcome, family, changed = decide(
                current, presented_hash, successor_hash, now=now, grace=grace
            )
            if not changed or family is None or current is None:
                return outcome, family
            written = await families.update_one(
                # The version read: unchanged only if no other write landed.
                {"_id": family_id, "current_hash": current.current_hash,
                 "revoked": current.revoked},
                {"$set": {"current_hash": family.current_hash,
                          "previous_hash": family.previous_hash,
                          **exact(rotated_at=family.rotated_at), "revoked": family.revoked}},
            )  # fmt: skip
            if written.matched_count == 1:
                return outcome, family
        raise RuntimeError("refresh family rotation kept losing races")

    @guarded
    async def get(self, family_id: str) -> Family | None:
        families = await self.collection(FAMILIES)
        return _family(await families.find_one({"_id": family_id}))

    @guarded
    async def revoke(self, family_id: str) -> Family | None:
        families = await self.collection(FAMILIES)
        doc = await families.find_one_and_update(
            {"_id": family_id}, {"$set": {"revoked": True}}, return_document=ReturnDocument.AFTER
        )
        return _family(doc)

    @guarded
    async def set_data(self, family_id: str, data: dict[str, object]) -> bool:
        families = await self.collection(FAMILIES)
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        result = await families.update_one({"_id": family_id}, {"$set": {"data": text}})
        return result.matched_count == 1

    @guarded
    async def revoke_user(self, user_id: str) -> int:
        families = await self.collection(FAMILIES)
        result = await families.update_many(
            {"user_id": checked(user_id), "revoked": False}, {"$set": {"revoked": True}}
        )
        return result.modified_count

    @guarded
    async def list_user(self, user_id: str) -> list[Family]:
        families = await self.collection(FAMILIES)
        found = families.find({"user_id": checked(user_id)})
        docs = await found.sort([("created_at", 1), ("_id", 1)]).to_list()
        return [f for f in map(_family, docs) if f is not None]

    @guarded
    async def purge_expired(self, now: float) -> int:
        families = await self.collection(FAMILIES)
        result = await families.delete_many({"absolute_expires_at": {"$lte": now}})
        return result.deleted_count


def _entry_id(kind: str, user_id: str, jti: str) -> str:
    # JSON of a list: unambiguous whatever the parts hold.
    return json.dumps([kind, user_id, jti], separators=(",", ":"))


def _generation_id(user_id: str) -> str:
    return json.dumps(["generation", user_id], separators=(",", ":"))


class MongoRevocationStore(RevocationEntries, MongoStore):
    INDEXES = ((REVOKED, (("until", 1),), ()), ttl_index(REVOKED))

    def __init__(self, conn: MongoConnection, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(conn)
        self._clock = clock

    @guarded
    async def _put(self, kind: str, jti: str, user_id: str, until: float) -> None:
        revoked = await self.collection(REVOKED)
        entry = {"until": until, "expire_at": expire_at(until)}
        await revoked.update_one(
            {"_id": _entry_id(kind, checked(user_id), jti)}, {"$set": entry}, upsert=True
        )

    @guarded
    async def _check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int]:
        revoked = await self.collection(REVOKED)
        entry, generation = _entry_id(kind, checked(user_id), jti), _generation_id(user_id)
        marker = None if family_id is None else _entry_id("deny", user_id, family_marker(family_id))
        ids = [entry, generation] if marker is None else [entry, generation, marker]
        found: dict[str, Any] = {d["_id"]: d async for d in revoked.find({"_id": {"$in": ids}})}
        now = self._clock()

        def live(key: str | None) -> bool:
            doc = found.get(key) if key is not None else None
            return doc is not None and doc["until"] > now

        gen = found.get(generation)
        return live(entry), live(marker), 0 if gen is None else int(gen["generation"])

    @guarded
    async def disallow(self, jti: str, user_id: str) -> None:
        revoked = await self.collection(REVOKED)
        await revoked.delete_one({"_id": _entry_id("allow", checked(user_id), jti)})

    @guarded
    async def generation(self, user_id: str) -> int:
        revoked = await self.collection(REVOKED)
        doc = await revoked.find_one({"_id": _generation_id(checked(user_id))})
        return 0 if doc is None else int(doc["generation"])

    @guarded
    async def bump_generation(self, user_id: str) -> int:
        revoked = await self.collection(REVOKED)
        key = _generation_id(checked(user_id))
        # $inc is atomic on the document: concurrent bumps each get their own
        # value.  Two concurrent upserts of a missing document can collide on
        # _id; the loser retries and then finds the document to increment.
        for _ in range(2):
            try:
                doc = await revoked.find_one_and_update(
                    {"_id": key}, {"$inc": {"generation": 1}},
                    upsert=True, return_document=ReturnDocument.AFTER,
                )  # fmt: skip
            except DuplicateKeyError:
                continue
            assert doc is not None  # an upsert returning AFTER always yields one
            return int(doc["generation"])
        raise RuntimeError("generation upsert kept colliding")

    @guarded
    async def purge_expired(self, now: float) -> int:
        revoked = await self.collection(REVOKED)
        result = await revoked.delete_many({"until": {"$lte": now}})
        return result.deleted_count
