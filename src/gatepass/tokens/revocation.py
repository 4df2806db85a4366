"""Revoking self-contained access tokens before they expire.

A signed access token is valid until ``exp`` by itself; these records are what
make logout and "log out everywhere" reach it (ASVS 7.4.1–7.4.3):

* **denylist** (default): ``deny(jti)`` at logout; each entry lives exactly as
  long as the token it blocks, so the list holds only tokens still worth
  blocking and every lookup is one key, whatever its size;
* **allowlist** mode: a token is only good while its ``jti`` is allowed, for
  deployments that want every access token to be individually revocable by
  absence;
* **generation**: a per-user counter copied into every token (and refresh
  family) at issue.  ``bump_generation`` is the one write that ends every
  token a user holds, with no list of them needed.

* **family marker**: ending a refresh family (a login) denies the name
  :func:`family_marker` of its id, under the user, until the family's
  deadline: every access token minted from that family carries its id
  (``fid``) and is refused from then on.

Requests call :meth:`RevocationStore.check` (or ``check_allowed``) with the
token's family id: one round trip answers all three questions (one MGET on
Redis, one statement on SQL, nothing while a local cache holds the answer).
Every method raises :class:`~gatepass.errors.StoreUnavailable` when the
backend is down: a revocation check that cannot run must fail closed.
"""

from __future__ import annotations

from typing import Protocol

from gatepass.drivers.changes import UNKNOWN, Unknown


def good_answer(kind: str, answer: tuple[bool, bool, int]) -> bool:
    """Whether a check's raw answer ``(entry, family_denied, generation)``
    says the token is good: the only kind a local cache may keep, since a
    refusal is read from an entry that expires by a deadline of its own."""
    entry, family_denied, _ = answer
    return not family_denied and (entry if kind == "allow" else not entry)


def family_marker(family_id: str) -> str:
    """The revocation entry that stands for a whole refresh family.

    Its ``family:`` prefix cannot be a jti (jtis are unpadded base64url, no
    colon), so a marker never collides with a token's own entry.
    """
    return f"family:{family_id}"


class RevocationStore(Protocol):
    async def deny(self, jti: str, user_id: str, *, until: float) -> None:
        """Block ``jti`` until ``until`` (the token's ``exp``), then forget it."""

    async def is_denied(self, jti: str, user_id: str) -> bool: ...

    async def allow(self, jti: str, user_id: str, *, until: float) -> None:
        """Allowlist mode: record ``jti`` as good until ``until``."""

    async def is_allowed(self, jti: str, user_id: str) -> bool: ...

    async def disallow(self, jti: str, user_id: str) -> None:
        """Allowlist mode: revoke ``jti``; a no-op when it is not allowed."""

    async def generation(self, user_id: str) -> int:
        """The user's revocation generation; 0 when never bumped."""
        ...

    async def bump_generation(self, user_id: str) -> int:
        """Atomically add one to the generation and return the new value."""
        ...

    async def check(
        self, jti: str, user_id: str, *, family_id: str | None = None
    ) -> tuple[bool, int]:
        """``(denied, generation)`` in one round trip (the per-request path).

        ``denied`` is True when ``jti`` is denied or, given ``family_id``,
        when the family's :func:`family_marker` is.
        """
        ...

    async def check_allowed(
        self, jti: str, user_id: str, *, family_id: str | None = None
    ) -> tuple[bool, int]:
        """``(allowed, generation)`` in one round trip, for allowlist mode.

        ``allowed`` is True when ``jti`` is allowed and, given ``family_id``,
        the family's marker is not denied.
        """
        ...

    def cached_check(
        self, jti: str, user_id: str, *, family_id: str | None = None
    ) -> tuple[bool, int] | Unknown:
        """:meth:`check` answered from local memory with no I/O, exactly as
        :meth:`check` would answer now; ``UNKNOWN`` when it cannot be."""
        ...

    def cached_check_allowed(
        self, jti: str, user_id: str, *, family_id: str | None = None
    ) -> tuple[bool, int] | Unknown:
        """:meth:`check_allowed` from local memory, or ``UNKNOWN``."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Drop entries whose ``until`` has passed; returns how many."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class RevocationEntries:
    """The entry methods every backend shares, written once over two primitives.

    A backend implements ``_put`` (write an entry) and ``_check`` (read, in
    one round trip, whether the jti's entry of ``kind`` is live, whether the
    family's marker is denied, and the generation).
    """

    async def _put(self, kind: str, jti: str, user_id: str, until: float) -> None:
        raise NotImplementedError

    async def _check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int]:
        raise NotImplementedError

    async def deny(self, jti: str, user_id: str, *, until: float) -> None:
        await self._put("deny", jti, user_id, until)

    async def is_denied(self, jti: str, user_id: str) -> bool:
        return (await self._check("deny", jti, user_id, None))[0]

    async def allow(self, jti: str, user_id: str, *, until: float) -> None:
        await self._put("allow", jti, user_id, until)

    async def is_allowed(self, jti: str, user_id: str) -> bool:
        return (await self._check("allow", jti, user_id, None))[0]

    async def check(
        self, jti: str, user_id: str, *, family_id: str | None = None
    ) -> tuple[bool, int]:
        entry, family_denied, generation = await self._check("deny", jti, user_id, family_id)
        return entry or family_denied, generation

    async def check_allowed(
        self, jti: str, user_id: str, *, family_id: str | None = None
    ) -> tuple[bool, int]:
        entry, family_denied, generation = await self._check("allow", jti, user_id, family_id)
        return entry and not family_denied, generation

    def _cached_check(
        self, kind: str, jti: str, user_id: str, family_id: str | None
    ) -> tuple[bool, bool, int] | Unknown:
        """``_check`` answered from memory with no I/O, or ``UNKNOWN``.

        A backend that keeps answers locally overrides this; the answer must
        be exactly what ``_check`` would return at this moment.
        """
        return UNKNOWN

    def cached_check(
        self, jti: str, user_id: str, *, family_id: str | None = None
    ) -> tuple[bool, int] | Unknown:
        """:meth:`check` from memory (no I/O), or ``UNKNOWN``: then await it."""
        answer = self._cached_check("deny", jti, user_id, family_id)
        if isinstance(answer, Unknown):
            return answer
        return answer[0] or answer[1], answer[2]

    def cached_check_allowed(
        self, jti: str, user_id: str, *, family_id: str | None = None
    ) -> tuple[bool, int] | Unknown:
        """:meth:`check_allowed` from memory (no I/O), or ``UNKNOWN``."""
        answer = self._cached_check("allow", jti, user_id, family_id)
        if isinstance(answer, Unknown):
            return answer
        return answer[0] and not answer[1], answer[2]
