"""The storage layer: one connection per URL, shared by every store on it.

Per backend (memory, SQLite, Redis incl. Cluster, PostgreSQL) this package
owns the connection a URL names (:mod:`.registry`: one per URL, reference
counted), schema bootstrap (:mod:`.sqlite`, :mod:`.postgres`), the mapping
of connection failures to :class:`~gatepass.errors.StoreUnavailable`, Redis
invalidation tracking (:mod:`.redis_tracking`), the one rule for showing a
URL in a message (:mod:`.redact`) and the one opener (:mod:`.opener`).
Stores elsewhere are thin implementations of their contracts on top of it.

Only the pure parts are imported here: the Redis and PostgreSQL modules need
their optional drivers and are imported when a URL names them.
"""

from gatepass.drivers.opener import (
    open_identity_store,
    open_refresh_store,
    open_revocation_store,
    open_session_store,
    open_store,
    open_throttle_store,
    open_user_store,
)
from gatepass.drivers.redact import redact
from gatepass.drivers.registry import SharedConnection, Stats

__all__ = [
    "SharedConnection",
    "Stats",
    "open_identity_store",
    "open_refresh_store",
    "open_revocation_store",
    "open_session_store",
    "open_store",
    "open_throttle_store",
    "open_user_store",
    "redact",
]
