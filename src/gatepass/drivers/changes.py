"""A cross-process "something changed" signal, and the local caches it keeps exact.

SQLite has no invalidation push.  Asking the database whether it changed
(``PRAGMA data_version``) costs a trip to its thread on every request, which
is most of what a cache is meant to save.  So every gatepass process that
writes to a database file also writes a fresh random word into a small
sidecar file (``<db>-changes``, mapped into memory by every process that
uses the database), right after each commit that changed a row.  A reader
compares the word with the one its cache was filled under: one memory read
per request, no system call, no thread hop.

The rules that keep a cache exact:

* a writer commits, *then* publishes a new word, before its call returns:
  once a revocation has returned (in the CLI, in another worker), every
  process sees a new word on its next request;
* a reader notes the word *before* it reads the database and caches the
  result only if the word is unchanged afterwards (a write that raced the
  read leaves nothing cached);
* any new word empties the whole cache: coarse, but never stale.

Writes made outside gatepass (the ``sqlite3`` shell) publish nothing: caches
see them within their ``max_age`` (30 s by default).  Words are random, not
counters, so two processes publishing at once cannot "undo" each other: any
word other than the one a cache was filled under empties it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

WORD = 8


class ChangeSignal:
    """The shared word beside a database file (or in process, for ``:memory:``)."""

    def __init__(self, db_path: str | None) -> None:
        self._local = bytearray(os.urandom(WORD))
        self._map: mmap.mmap | None = None
        if db_path is None:
            return
        path = db_path + "-changes"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < WORD:
                os.ftruncate(fd, WORD)
            self._map = mmap.mmap(fd, WORD)
        finally:
            os.close(fd)

    def word(self) -> bytes:
        """The current word (one memory read)."""
        if self._map is not None:
            return self._map[:WORD]
        return bytes(self._local)

    def publish(self) -> None:
        """Something changed: a new random word for every process to see."""
        fresh = os.urandom(WORD)
        if self._map is not None:
            self._map[:WORD] = fresh
        else:
            self._local[:] = fresh

    def close(self) -> None:
        if self._map is not None:
            with contextlib.suppress(BufferError, ValueError):
                self._map.close()
            self._map = None


class ChangeCache(Generic[K, V]):
    """A bounded LRU of reads, emptied whenever the signal's word changes."""

    def __init__(
        self,
        word: Callable[[], bytes],
        *,
        max_entries: int = 100_000,
        max_age: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``word``: reads the current word (e.g. ``lambda: db.changes.word()``)."""
        self.word = word
        self.max_entries = max_entries
        self.max_age = max_age
        self.clock = clock
        self._word = word()
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The cached value, if it is still exact; None otherwise."""
        word = self.word()
        if word != self._word:
            self._entries.clear()
            self._word = word
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() - entry[1] >= self.max_age:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def before_read(self) -> bytes:
        """The word to hand back to :meth:`put` after reading the database."""
        return self.word()

    def put(self, key: K, value: V, word: bytes) -> None:
        """Cache ``value`` read under ``word``, unless something changed since."""
        if self.word() != word or word != self._word:
            return
        self._entries[key] = (value, self.clock())
        self._entries.move_to_end(key)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def read_through(
        self,
        key: K,
        load: Callable[[], Awaitable[V | None]],
        keep: Callable[[V], bool] = lambda _value: True,
    ) -> V | None:
        """The cached value for ``key``, else ``load()``'s, cached if ``keep``
        says so (misses are never cached: random ids must not fill it)."""
        cached = self.get(key)
        if cached is not None and keep(cached):
            return cached
        word = self.before_read()
        value = await load()
        if value is not None and keep(value):
            self.put(key, value, word)
        return value

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


class Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


#: What a synchronous read of a local cache answers when it cannot tell
#: without a round trip (a session store's ``cached(key)``, a revocation
#: store's ``cached_check``); the caller then awaits the real read.
UNKNOWN: Final = Unknown()
