"""Password hashing: Argon2id at OWASP parameters, off the event loop.

The first algorithm hashes, the others only verify (as Django's hashers do):
new hashes are always Argon2id with :data:`OWASP_ARGON2ID`; a stored Argon2
hash with other parameters, or a legacy bcrypt hash, still verifies and comes
back with a fresh Argon2id hash for the caller to store (``new_hash``).

Hashing costs tens of milliseconds of CPU.  Run on the event loop it stalls
every other request; run on the default executor, twenty logins fight the loop
for the cores.  So every hash and verify goes to a dedicated pool with one
thread per spare core (argon2-cffi and bcrypt release the GIL): a burst of
logins queues behind itself instead of slowing everything else.

Size limits are checked before any hashing and nothing is ever truncated: a
password of more than :data:`MAX_PASSWORD_BYTES` UTF-8 bytes is refused with
:class:`~gatepass.errors.PayloadTooLarge` by every method, so a megabyte
"password" costs a length check, not a hash.  No password ever appears in a
log line or an exception message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError

from gatepass.errors import ConfigurationError, InvalidRequest, PayloadTooLarge, WeakPassword

T = TypeVar("T")

#: The OWASP Password Storage Cheat Sheet's first Argon2id configuration:
#: 19 MiB, two passes, one lane (~28 ms per hash on this class of machine).
OWASP_ARGON2ID: Final = argon2.Parameters(
    type=argon2.Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=2,
    memory_cost=19456,
    parallelism=1,
)

MIN_PASSWORD_LENGTH: Final = 8
MAX_PASSWORD_LENGTH: Final = 1024
MAX_PASSWORD_BYTES: Final = 4096

_BCRYPT_PREFIXES: Final = ("$2a$", "$2b$", "$2y$")
#: bcrypt only ever looked at the first 72 bytes of a password.
_BCRYPT_MAX_BYTES: Final = 72


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking a password against a stored hash."""

    ok: bool
    #: When ``ok`` and the stored hash is outdated (other Argon2 parameters,
    #: or legacy bcrypt): an Argon2id hash of the same password to store.
    new_hash: str | None = None

    def __bool__(self) -> bool:
        return self.ok


_FAILED: Final = Verification(ok=False)


def default_workers() -> int:
    """One hashing thread per spare core, and at least one."""
    return max(1, (os.cpu_count() or 2) - 1)


class PasswordHasher:
    """Hash and verify passwords; one instance per application.

    ``parameters`` is the Argon2 profile new hashes use (and against which
    stored hashes are judged outdated).  The length bounds are in characters
    (code points); ``max_bytes`` caps the UTF-8 encoding.
    """

    def __init__(
        self,
        *,
        parameters: argon2.Parameters = OWASP_ARGON2ID,
        max_workers: int | None = None,
        min_length: int = MIN_PASSWORD_LENGTH,
        max_length: int = MAX_PASSWORD_LENGTH,
        max_bytes: int = MAX_PASSWORD_BYTES,
    ) -> None:
        if parameters.type is not argon2.Type.ID:
            raise ConfigurationError("Passwords must be hashed with Argon2id.")
        if not 1 <= min_length <= max_length <= max_bytes:
            raise ConfigurationError(
                "Password bounds must satisfy 1 <= min_length <= max_length <= max_bytes."
            )
        workers = default_workers() if max_workers is None else max_workers
        if workers < 1:
            raise ConfigurationError("The password hasher needs at least one worker.")
        self.parameters = parameters
        self.min_length = min_length
        self.max_length = max_length
        self.max_bytes = max_bytes
        self.max_workers = workers
        self._argon2 = argon2.PasswordHasher.from_parameters(parameters)
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="gatepass-password"
        )
        # Verified against when there is no real hash (unknown user, account
        # without a password), so that those answers take as long as a real one.
        self._dummy_hash = self._argon2.hash(secrets.token_bytes(16))

    # Policy ---------------------------------------------------------------

    def check_policy(self, password: str) -> None:
        """Refuse a new password outside the bounds.

        Raises PayloadTooLarge above ``max_bytes`` UTF-8 bytes and
        WeakPassword outside ``min_length``..``max_length`` characters.
        """
        self.check_length(password)
        if len(password) < self.min_length:
            raise WeakPassword(f"The password must have at least {self.min_length} characters.")
        if len(password) > self.max_length:
            raise WeakPassword(f"The password must have at most {self.max_length} characters.")

    def check_length(self, password: str) -> None:
        """Refuse a password above ``max_bytes`` UTF-8 bytes (PayloadTooLarge).

        The only check that applies at login, where a password set before the
        current policy must still work; :meth:`verify` applies it too.
        """
        self._encode(password)

    def _encode(self, password: str) -> bytes:
        """The UTF-8 bytes of a password, refusing oversize or non-text input."""
        if not isinstance(password, str):
            raise InvalidRequest("The password must be a string.")
        # Every character is at least one byte: refuse huge input before
        # spending time (and memory) on encoding it.
        if len(password) > self.max_bytes:
            raise PayloadTooLarge("The password is too long.")
        try:
            encoded: bytes | None = password.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates (valid in JSON escapes).  Raised outside the
            # handler: the codec error holds the whole password in `.object`
            # and must not travel along as `__context__`.
            encoded = None
        if encoded is None:
            raise InvalidRequest("The password is not valid text.")
        if len(encoded) > self.max_bytes:
            raise PayloadTooLarge("The password is too long.")
        return encoded

    # Hashing --------------------------------------------------------------

    async def hash(self, password: str) -> str:
        """An Argon2id hash of a new password, after :meth:`check_policy`."""
        self.check_policy(password)
        encoded = self._encode(password)
        return await self._run(lambda: self._argon2.hash(encoded))

    async def verify(self, stored_hash: str | None, password: str) -> Verification:
        """Check ``password`` against ``stored_hash``.

        Never raises for a bad stored hash: None, a malformed or unknown hash
        all give ``ok=False`` after burning the time of a real verification.
        Only the size limit raises (PayloadTooLarge), before any work, and it
        does so whether or not the account exists.
        """
        encoded = self._encode(password)
        if isinstance(stored_hash, str) and stored_hash.startswith("$argon2"):
            return await self._run(lambda: self._verify_argon2(stored_hash, encoded))
        if isinstance(stored_hash, str) and stored_hash.startswith(_BCRYPT_PREFIXES):
            return await self._run(lambda: self._verify_bcrypt(stored_hash, encoded))
        return await self._run(lambda: self._burn(encoded))

    async def verify_dummy(self, password: str) -> Verification:
        """Spend the time of a real verification and fail; for unknown users."""
        encoded = self._encode(password)
        return await self._run(lambda: self._burn(encoded))

    def close(self) -> None:
        """Stop the hashing threads; queued work is cancelled, none is waited for."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # On the hashing threads -----------------------------------------------

    def _verify_argon2(self, stored_hash: str, encoded: bytes) -> Verification:
        try:
            self._argon2.verify(stored_hash, encoded)
        except VerificationError:
            return _FAILED
        except (InvalidHashError, ValueError, TypeError):
            # A hash argon2 cannot parse fails fast: spend the usual time.
            return self._burn(encoded)
        if self._argon2.check_needs_rehash(stored_hash):
            return Verification(ok=True, new_hash=self._argon2.hash(encoded))
        return Verification(ok=True)

    def _verify_bcrypt(self, stored_hash: str, encoded: bytes) -> Verification:
        # Legacy hashes only.  bcrypt never saw past byte 72, and bcrypt 5
        # refuses longer input instead of ignoring the rest, so compare the
        # first 72 bytes exactly as the system that made the hash did.  On
        # success the whole password is rehashed with Argon2id, after which
        # every byte counts.
        try:
            matched = bcrypt.checkpw(encoded[:_BCRYPT_MAX_BYTES], stored_hash.encode("ascii"))
        except (ValueError, TypeError):
            return self._burn(encoded)
        if not matched:
            return _FAILED
        return Verification(ok=True, new_hash=self._argon2.hash(encoded))

    def _burn(self, encoded: bytes) -> Verification:
        with contextlib.suppress(VerificationError):
            self._argon2.verify(self._dummy_hash, encoded)
        return _FAILED

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)
