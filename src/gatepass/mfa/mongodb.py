"""Factors in MongoDB: one document per user, one per pending second step.

Collections::

    gatepass_factors         {_id: <user id>, secret?, pending?, step, codes: [<hash>...]}
    gatepass_mfa_challenges  {_id: <token hash>, user_id, body: <JSON>, expires_at,
                              attempts, expire_at: <BSON date, TTL index>}

Every decision is one single-document operation, atomic on the server,
so it holds across any number of gatepass processes:

* accepting a time step is an ``updateOne`` filtered on "TOTP on and the last
  step earlier than this one" (``$lt``): of concurrent uses of a step, one
  matches;
* spending a recovery code is an ``updateOne`` filtered on the code being in
  ``codes``, with ``$pull``: one matches;
* confirming a setup and resealing match on the expected secret;
* an attempt on a challenge is a ``findOneAndUpdate`` filtered on "unexpired
  and under the limit" with ``$inc``; one that does not match is deleted
  (expiry and the attempt count only grow, so that delete can never remove
  a challenge someone could still use);
* taking a challenge is ``deleteOne``: whoever deletes it has it.

Challenges also carry a TTL index, which only frees space: the caller's
clock decides expiry, as in the other backends.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.mongodb import Document, MongoStore, expire_at, guarded, ttl_index
from gatepass.mfa.store import MAX_ATTEMPTS, Challenge, Factors

FACTORS = "gatepass_factors"
CHALLENGES = "gatepass_mfa_challenges"


class MongoFactorStore(MongoStore):
    INDEXES = (
        (CHALLENGES, (("expires_at", 1),), ()),
        ttl_index(CHALLENGES),
    )

    @guarded
    async def get(self, user_id: str) -> Factors:
        factors = await self.collection(FACTORS)
        doc = await factors.find_one({"_id": checked(user_id)})
        if doc is None:
            return Factors(user_id)
        return Factors(
            user_id,
            totp_secret=_text(doc.get("secret")),
            totp_pending=_text(doc.get("pending")),
            totp_last_step=int(doc.get("step", -1)),
            recovery_codes_left=len(doc.get("codes") or ()),
        )

    @guarded
    async def begin_totp(self, user_id: str, sealed_secret: str) -> None:
        factors = await self.collection(FACTORS)
        await factors.update_one(
            {"_id": checked(user_id)}, {"$set": {"pending": sealed_secret}}, upsert=True
        )

    @guarded
    async def enable_totp(
        self, user_id: str, sealed_secret: str, step: int, recovery_hashes: list[str]
    ) -> bool:
        factors = await self.collection(FACTORS)
        result = await factors.update_one(
            {"_id": checked(user_id), "pending": sealed_secret},
            {
                "$set": {"secret": sealed_secret, "step": step, "codes": list(recovery_hashes)},
                "$unset": {"pending": ""},
            },
        )
        return result.matched_count == 1

    @guarded
    async def use_totp_step(self, user_id: str, step: int) -> bool:
        factors = await self.collection(FACTORS)
        result = await factors.update_one(
            {"_id": checked(user_id), "secret": {"$exists": True}, "step": {"$lt": step}},
            {"$set": {"step": step}},
        )
        return result.matched_count == 1

    @guarded
    async def disable_totp(self, user_id: str) -> bool:
        factors = await self.collection(FACTORS)
        doc = await factors.find_one_and_delete({"_id": checked(user_id)})
        return doc is not None and doc.get("secret") is not None

    @guarded
    async def reset(self, user_id: str) -> bool:
        factors = await self.collection(FACTORS)
        doc = await factors.find_one_and_delete({"_id": checked(user_id)})
        return doc is not None and bool(
            doc.get("secret") is not None or doc.get("pending") is not None or doc.get("codes")
        )

    @guarded
    async def replace_recovery_codes(self, user_id: str, hashes: list[str]) -> None:
        factors = await self.collection(FACTORS)
        await factors.update_one(
            {"_id": checked(user_id)}, {"$set": {"codes": list(hashes)}}, upsert=True
        )

    @guarded
    async def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        factors = await self.collection(FACTORS)
        result = await factors.update_one(
            {"_id": checked(user_id), "codes": code_hash}, {"$pull": {"codes": code_hash}}
        )
        return result.matched_count == 1

    @guarded
    async def reseal(self, user_id: str, old: str, new: str) -> bool:
        factors = await self.collection(FACTORS)
        result = await factors.update_one(
            {"_id": checked(user_id), "secret": old}, {"$set": {"secret": new}}
        )
        return result.matched_count == 1

    @guarded
    async def create_challenge(self, challenge: Challenge) -> None:
        challenges = await self.collection(CHALLENGES)
        # Token hashes are random 256-bit values: an insert, never a replace.
        await challenges.insert_one(
            {
                "_id": challenge.token_hash,
                "user_id": checked(challenge.user_id),
                "body": challenge.dumps(),
                "expires_at": challenge.expires_at,
                "attempts": 0,
                "expire_at": expire_at(challenge.expires_at),
            }
        )

    @guarded
    async def attempt_challenge(
        self, token_hash: str, *, now: float, limit: int = MAX_ATTEMPTS
    ) -> Challenge | None:
        challenges = await self.collection(CHALLENGES)
        doc: Document | None = await challenges.find_one_and_update(
            {"_id": token_hash, "expires_at": {"$gt": now}, "attempts": {"$lt": limit}},
            {"$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            # Expired or out of attempts (or gone): void for good.
            await challenges.delete_one({"_id": token_hash})
            return None
        return Challenge.loads(doc["body"])

    @guarded
    async def take_challenge(self, token_hash: str) -> bool:
        challenges = await self.collection(CHALLENGES)
        return (await challenges.delete_one({"_id": token_hash})).deleted_count == 1

    @guarded
    async def purge_expired(self, now: float) -> int:
        challenges = await self.collection(CHALLENGES)
        result = await challenges.delete_many({"expires_at": {"$lte": now}})
        return int(result.deleted_count)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
