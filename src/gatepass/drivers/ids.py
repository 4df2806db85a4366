"""User ids are strings, in every store.

``"42"`` and ``"0042"`` are two users, and ``42`` is nobody: a store given a
non-string id would keep it as one type (memory, Redis) or another (SQLite
gives back text), so lookups would find a user in one backend and not in the
next.  Every store checks ids on the way in with :func:`user_id`.
"""

from __future__ import annotations


def user_id(value: object) -> str:
    """``value`` if it is a str (exactly: no subclass that compares oddly); else TypeError."""
    if type(value) is not str:
        raise TypeError(f"user ids are str, not {type(value).__name__}")
    return value
