"""MongoDB throttle store: one document per key, single-document operations.

``hit`` never reads and writes separately:

1. a live counter (``expires_at > now``) is raised with ``$inc`` in one
   ``find_one_and_update``, which returns the new count: concurrent hits on
   one key each get a distinct count.  Past ``extend_after``, a ``$max`` then
   pushes the expiry (``$max`` never lowers it, so racing extensions commute);
2. otherwise an expired counter is restarted at 1 by a ``find_one_and_update``
   filtered on ``expires_at <= now``: of racing restarts one matches, the
   others go back to step 1 and count on top of it;
3. a missing key is inserted; losing that race (``DuplicateKeyError``) goes
   back to step 1.

``set_deadline`` is ``$max`` on the deadline, with the same insert-or-retry
for a missing key.  (An upsert with ``$setOnInsert`` would save a trip, but
the emulator the suites run against ignores ``$setOnInsert``.)  The
``expire_at`` date behind the TTL index is ``$max``-ed to the later of the
counter's expiry and the deadline, so MongoDB forgets a key only when both
have passed.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from gatepass.drivers.mongodb import MongoStore, expire_at, guarded, ttl_index
from gatepass.throttle.store import Hit

COLLECTION = "gatepass_throttle"

#: Each failed step means another hit on the key landed in between; a few
#: dozen concurrent logins on one key settle well within this.
_ATTEMPTS = 64


class MongoThrottleStore(MongoStore):
    INDEXES = (
        (COLLECTION, (("gone_at", 1),), ()),
        ttl_index(COLLECTION),
    )

    @guarded
    async def hit(
        self,
        key: str,
        *,
        window: float,
        now: float,
        extend_after: int | None = None,
        extend_window: float | None = None,
    ) -> Hit:
        rows = await self.collection(COLLECTION)
        extended = window if extend_window is None else extend_window
        for _ in range(_ATTEMPTS):
            doc = await rows.find_one_and_update(
                {"_id": key, "expires_at": {"$gt": now}},
                {"$inc": {"count": 1}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                count, expires = int(doc["count"]), float(doc["expires_at"])
                if extend_after is not None and count > extend_after and expires < now + extended:
                    expires = now + extended
                    await rows.update_one({"_id": key}, _later(expires, "expires_at"))
                return Hit(count, expires)
            restart = {"count": 1, "expires_at": now + window}
            doc = await rows.find_one_and_update(
                {"_id": key, "expires_at": {"$lte": now}},
                {"$set": restart, **_later(now + window)},
            )
            if doc is not None:
                return Hit(1, now + window)
            try:
                await rows.insert_one(
                    {
                        "_id": key,
                        **restart,
                        "deadline": 0.0,
                        "gone_at": now + window,
                        "expire_at": expire_at(now + window),
                    }
                )
            except DuplicateKeyError:
                continue
            return Hit(1, now + window)
        raise RuntimeError("throttle counter kept losing races")

    @guarded
    async def set_deadline(self, key: str, *, until: float, now: float) -> None:
        rows = await self.collection(COLLECTION)
        for _ in range(_ATTEMPTS):
            found = await rows.update_one({"_id": key}, _later(until, "deadline"))
            if found.matched_count == 1:
                return
            try:
                await rows.insert_one(
                    {
                        "_id": key,
                        "count": 0,
                        "expires_at": 0.0,
                        "deadline": until,
                        "gone_at": until,
                        "expire_at": expire_at(until),
                    }
                )
            except DuplicateKeyError:
                continue
            return
        raise RuntimeError("throttle deadline kept losing races")

    @guarded
    async def deadlines(self, keys: Sequence[str], *, now: float) -> list[float]:
        if not keys:
            return []
        rows = await self.collection(COLLECTION)
        found = {
            d["_id"]: float(d["deadline"])
            async for d in rows.find({"_id": {"$in": list(keys)}}, {"deadline": True})
        }
        return [d if (d := found.get(k, 0.0)) > now else 0.0 for k in keys]

    @guarded
    async def clear(self, key: str) -> None:
        rows = await self.collection(COLLECTION)
        await rows.delete_one({"_id": key})

    @guarded
    async def purge_expired(self, now: float) -> int:
        rows = await self.collection(COLLECTION)
        return (await rows.delete_many({"gone_at": {"$lte": now}})).deleted_count


def _later(moment: float, field: str | None = None) -> dict[str, dict[str, object]]:
    """``$max`` updates that raise ``field`` (if given) and the forget-by dates to ``moment``."""
    raised: dict[str, object] = {"gone_at": moment, "expire_at": expire_at(moment)}
    if field is not None:
        raised[field] = moment
    return {"$max": raised}
