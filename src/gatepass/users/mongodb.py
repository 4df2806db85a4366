"""Accounts in MongoDB.

One document per user in ``gatepass_users``, ``_id`` the user id (a uuid4
hex, a str like every user id).  A unique index on ``email`` decides races
between registrations, across any number of instances; an index on
``(created_at, _id)`` serves :meth:`MongoUserStore.list` in creation order.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from pymongo.errors import DuplicateKeyError

from gatepass.drivers.ids import user_id as checked
from gatepass.drivers.mongodb import Document, MongoConnection, MongoStore, guarded
from gatepass.errors import InvalidRequest, UserExists
from gatepass.users.model import User

COLLECTION = "gatepass_users"


def _user(doc: Document | None) -> User | None:
    if doc is None:
        return None
    return User(
        id=doc["_id"],
        email=doc["email"],
        password_hash=doc["password_hash"],
        roles=tuple(doc["roles"]),
        disabled=bool(doc["disabled"]),
        created_at=doc["created_at"],
        # Documents written before verification existed have no field: False.
        email_verified=bool(doc.get("email_verified", False)),
    )


class MongoUserStore(MongoStore):
    INDEXES = (
        (COLLECTION, (("email", 1),), (("unique", True),)),
        # (The emulator cannot index _id in a compound index; created_at alone
        # serves the sort, ties are few.)
        (COLLECTION, (("created_at", 1),), ()),
    )

    def __init__(self, conn: MongoConnection, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(conn)
        self._clock = clock

    @guarded
    async def create(
        self, email: str, password_hash: str | None, roles: tuple[str, ...] = ()
    ) -> User:
        user = User(
            id=uuid.uuid4().hex,
            email=email,
            password_hash=password_hash,
            roles=tuple(roles),
            created_at=self._clock(),
        )
        # Indexes are created here, outside the try: a duplicate key while
        # building one must not pass for a duplicate email.
        users = await self.collection(COLLECTION)
        try:
            await users.insert_one(
                {"_id": user.id, "email": email, "password_hash": password_hash,
                 "roles": list(user.roles), "disabled": False, "created_at": user.created_at}
            )  # fmt: skip
        except DuplicateKeyError:
            # The only unique key a fresh uuid4 can collide on is the email.
            raise UserExists() from None
        return user

    @guarded
    async def get(self, user_id: str) -> User | None:
        users = await self.collection(COLLECTION)
        return _user(await users.find_one({"_id": checked(user_id)}))

    @guarded
    async def get_by_email(self, email: str) -> User | None:
        users = await self.collection(COLLECTION)
        return _user(await users.find_one({"email": email}))

    @guarded
    async def list(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        if limit < 0 or offset < 0:
            raise InvalidRequest("limit and offset must not be negative.")
        if limit == 0:
            return []  # MongoDB reads a limit of 0 as "no limit"
        users = await self.collection(COLLECTION)
        found = users.find().sort([("created_at", 1), ("_id", 1)]).skip(offset).limit(limit)
        return [u for u in map(_user, await found.to_list()) if u is not None]

    async def _set(self, user_id: str, fields: Document) -> None:
        users = await self.collection(COLLECTION)
        await users.update_one({"_id": checked(user_id)}, {"$set": fields})

    @guarded
    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._set(user_id, {"password_hash": password_hash})

    @guarded
    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._set(user_id, {"disabled": disabled})

    @guarded
    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> None:
        await self._set(user_id, {"roles": list(roles)})

    @guarded
    async def set_email_verified(self, user_id: str, verified: bool) -> None:
        await self._set(user_id, {"email_verified": verified})

    @guarded
    async def set_email(self, user_id: str, email: str, *, expected: str) -> bool:
        users = await self.collection(COLLECTION)
        try:
            result = await users.update_one(
                {"_id": checked(user_id), "email": expected},
                {"$set": {"email": email, "email_verified": True}},
            )
        except DuplicateKeyError:
            raise UserExists() from None
        return result.matched_count == 1
