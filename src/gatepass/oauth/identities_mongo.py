"""External identities in MongoDB: collection ``gatepass_identities``.

``_id`` is the pair (issuer, subject) as JSON text, so the ``_id`` index
decides a race between two first logins of the same external account; the
insert that loses becomes :class:`~gatepass.oauth.identities.IdentityLinked`.
An index on ``(user_id, created_at)`` lists a user's links.
"""

from __future__ import annotations

import json

from pymongo.errors import DuplicateKeyError

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.mongodb import Document, MongoStore, guarded
from gatepass.oauth.identities import ExternalIdentity, IdentityLinked

COLLECTION = "gatepass_identities"


def _id(issuer: str, subject: str) -> str:
    return json.dumps([issuer, subject], separators=(",", ":"), ensure_ascii=False)


def _identity(doc: Document) -> ExternalIdentity:
    return ExternalIdentity(
        issuer=doc["issuer"],
        subject=doc["subject"],
        user_id=doc["user_id"],
        provider=doc["provider"],
        email=doc["email"],
        created_at=doc["created_at"],
    )


class MongoIdentityStore(MongoStore):
    INDEXES = ((COLLECTION, (("user_id", 1), ("created_at", 1)), ()),)

    @guarded
    async def get(self, issuer: str, subject: str) -> ExternalIdentity | None:
        identities = await self.collection(COLLECTION)
        doc = await identities.find_one({"_id": _id(issuer, subject)})
        return None if doc is None else _identity(doc)

    @guarded
    async def add(self, identity: ExternalIdentity) -> None:
        checked(identity.user_id)
        identities = await self.collection(COLLECTION)
        try:
            await identities.insert_one(
                {
                    "_id": _id(identity.issuer, identity.subject),
                    "issuer": identity.issuer,
                    "subject": identity.subject,
                    "user_id": identity.user_id,
                    "provider": identity.provider,
                    "email": identity.email,
                    "created_at": identity.created_at,
                }
            )
        except DuplicateKeyError:
            raise IdentityLinked() from None

    @guarded
    async def list_user(self, user_id: str) -> list[ExternalIdentity]:
        identities = await self.collection(COLLECTION)
        found = identities.find({"user_id": checked(user_id)})
        return [_identity(d) for d in await found.sort([("created_at", 1), ("_id", 1)]).to_list()]

    @guarded
    async def remove(self, issuer: str, subject: str, user_id: str) -> bool:
        identities = await self.collection(COLLECTION)
        query = {"_id": _id(issuer, subject), "user_id": checked(user_id)}
        return (await identities.delete_one(query)).deleted_count == 1
