"""The server's signing keys: loaded from the key file, reloaded when it changes.

``gatepass keys rotate`` (or the scheduled rotation of another instance
sharing the data dir) rewrites ``keys.json``; every running server notices
within ``check_interval`` seconds by the file's mtime, so a token signed by
the new key verifies everywhere soon after.  Reloads are bounded to one per
interval whatever the traffic: an unknown ``kid`` never triggers a refetch
storm (SECURITY.md 3).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gatepass.tokens.keyfile import KeyFile
from gatepass.tokens.keys import Algorithm, KeyRing


class KeyRingSource:
    def __init__(
        self,
        directory: Path,
        *,
        alg: Algorithm,
        check_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.file = KeyFile(directory)
        self.alg = alg
        self.clock = clock
        self.check_interval = check_interval
        self._ring = self.file.load_or_create(alg, clock())
        self._mtime = self._stat()
        self._checked = time.monotonic()

    def _stat(self) -> float:
        try:
            return self.file.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def __call__(self) -> KeyRing:
        now = time.monotonic()
        if now - self._checked >= self.check_interval:
            self._checked = now
            mtime = self._stat()
            if mtime != self._mtime:
                loaded = self.file.load()
                if loaded is not None:
                    self._ring, self._mtime = loaded, mtime
        return self._ring

    def rotate(self, retire_after: float, alg: Algorithm | None = None) -> KeyRing:
        """Make a new active key; the old one verifies for ``retire_after`` more seconds."""
        with self._locked():
            current = self.file.load() or self._ring
            ring = current.rotate(alg or self.alg, now=self.clock(), retire_after=retire_after)
            ring = ring.prune(self.clock())
            self.file.save(ring)
        self._ring, self._mtime = ring, self._stat()
        return ring

    def rotate_if_due(self, max_age: float, retire_after: float) -> bool:
        """Rotate when the active key is older than ``max_age``; True if it did."""
        if max_age <= 0 or self.clock() - self().active.created_at < max_age:
            return False
        with self._locked():
            # Another instance may have rotated meanwhile: decide on the file.
            current = self.file.load() or self._ring
            if self.clock() - current.active.created_at < max_age:
                self._ring, self._mtime = current, self._stat()
                return False
            ring = current.rotate(self.alg, now=self.clock(), retire_after=retire_after)
            self.file.save(ring.prune(self.clock()))
        self._ring, self._mtime = self.file.load() or ring, self._stat()
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.file.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
