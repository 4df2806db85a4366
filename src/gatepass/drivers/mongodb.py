"""MongoDB: one ``AsyncMongoClient`` per URL, shared by every store on it.

PyMongo's native async API (``pymongo.AsyncMongoClient``), not Motor, which
is deprecated in its favour.  As with the other drivers:

* the client connects on first use, so a server can start while MongoDB is
  down and answer 503 until it is back;
* failures become :class:`~gatepass.errors.StoreUnavailable` in one place
  (:func:`guarded`), with a short server-selection timeout so that an outage
  answers fast instead of after PyMongo's default 30 seconds;
* each store declares its indexes (:attr:`MongoStore.INDEXES`); the first
  operation that needs the database creates every declared index once per
  connection, as the SQL drivers create their schemas (``createIndexes`` is
  idempotent on the server, so processes starting together need no lock);
* :attr:`~gatepass.drivers.registry.Stats.round_trips` counts the commands
  the client sent (PyMongo's command monitoring; heartbeats are not commands).

The database is the one the URL names (``mongodb://host/app``), else
``gatepass``.  Expiry is a TTL index on a BSON date field (``expire_at``);
MongoDB's TTL monitor runs about once a minute, so every store still compares
deadlines with the caller's clock and the TTL only frees space.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, ClassVar, ParamSpec, Self, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConfigurationError as MongoConfigurationError,
)
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    InvalidURI,
    WaitQueueTimeoutError,
    WTimeoutError,
)

from gatepass.drivers.registry import ConnectedStore, SharedConnection, Stats, shared
from gatepass.errors import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")

#: A document as PyMongo hands it over.
Document: TypeAlias = dict[str, Any]

#: One index: the collection, its keys, and ``create_index`` options.
Index: TypeAlias = tuple[str, tuple[tuple[str, int], ...], tuple[tuple[str, Any], ...]]

#: Failures that mean "MongoDB cannot serve us right now", as opposed to a bug.
#: ConnectionFailure covers AutoReconnect (and NotPrimaryError, a failover in
#: progress), NetworkTimeout, ServerSelectionTimeoutError and WaitQueueTimeout.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    WaitQueueTimeoutError,
    ExecutionTimeout,
    WTimeoutError,
    # Raised at first use by a mongodb+srv:// URL whose SRV or TXT lookup
    # fails: DNS being down is an outage like any other (the URL's syntax was
    # checked when the client was made).
    MongoConfigurationError,
    TimeoutError,
    OSError,
)

DEFAULT_DATABASE = "gatepass"

#: Seconds: long enough for a healthy server, short enough that an outage is
#: a 503 within a couple of seconds rather than a hung request.
TIMEOUT_MS = 2000


class _HideDocuments(logging.Filter):
    """Keep documents out of PyMongo's command log.

    At DEBUG, ``pymongo.command`` logs each command and reply with its
    documents: session keys, session data (CSRF tokens), password hashes,
    refresh-token hashes.  Secrets never appear in logs, so the documents
    are dropped from the record and the rest (command name, duration, server)
    kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record.msg, "_kwargs", None)
        if isinstance(fields, dict):
            for name in ("command", "reply", "failure"):
                if name in fields:
                    fields[name] = "(not logged by gatepass)"
        return True


logging.getLogger("pymongo.command").addFilter(_HideDocuments())


def guarded(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn connection failures into StoreUnavailable (whose text names nothing)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise StoreUnavailable("MongoDB is unavailable.", store="mongodb") from exc

    return wrapper


def expire_at(timestamp: float) -> datetime:
    """The BSON date a TTL index reads; MongoDB keeps milliseconds, so round up."""
    return datetime.fromtimestamp(math.ceil(timestamp * 1000) / 1000, tz=UTC)


class _Counter(monitoring.CommandListener):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.stats.round_trips += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class MongoConnection(SharedConnection):
    """One client, the indexes its stores declare, and its round-trip counter."""

    backend = "mongodb"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=TIMEOUT_MS,
            connectTimeoutMS=TIMEOUT_MS,
            socketTimeoutMS=5 * TIMEOUT_MS,
            appname="gatepass",
            event_listeners=[_Counter(self.stats)],
        )
        self.db: AsyncDatabase[Document] = self.client.get_default_database(DEFAULT_DATABASE)
        self._pending: list[tuple[Index, ...]] = []
        self._created: set[tuple[Index, ...]] = set()
        self._lock = asyncio.Lock()

    def require(self, indexes: tuple[Index, ...]) -> None:
        """Create ``indexes`` before the next operation, unless done already."""
        if indexes and indexes not in self._created and indexes not in self._pending:
            self._pending.append(indexes)

    async def database(self) -> AsyncDatabase[Document]:
        """The database, every declared index created (once per connection)."""
        if self._pending:
            async with self._lock:
                for indexes in list(self._pending):
                    for collection, keys, options in indexes:
                        await self.db[collection].create_index(list(keys), **dict(options))
                    self._created.add(indexes)
                    self._pending.remove(indexes)
        return self.db

    async def ping(self) -> None:
        await _ping(self.client)

    async def _close(self) -> None:
        await self.client.close()


@guarded
async def _ping(client: AsyncMongoClient[Document]) -> None:
    await client.admin.command("ping")


def open_client(url: str) -> MongoConnection:
    """The shared client for ``url``; nothing connects until first use.

    PyMongo parses the URL here (not on first use): a malformed one is a
    ValueError, whose text the opener replaces with a redacted one.
    """
    parts = urlsplit(url)
    key = urlunsplit(parts._replace(scheme=parts.scheme.lower()))
    try:
        return shared(f"mongodb:{key}", MongoConnection, lambda: MongoConnection(url))
    except (InvalidURI, MongoConfigurationError) as exc:
        # Their text may quote the URL, password included.
        raise ValueError(type(exc).__name__) from None


class MongoStore(ConnectedStore):
    """What every MongoDB store shares: its client, indexes, ping and close."""

    #: The indexes this store's queries and expiry rely on.
    INDEXES: ClassVar[tuple[Index, ...]] = ()

    def __init__(self, conn: MongoConnection) -> None:
        super().__init__(conn)
        conn.require(self.INDEXES)
        self.conn = conn

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """A store on the shared client for ``url``; nothing connects until first use."""
        return cls(open_client(url), **options)

    async def collection(self, name: str) -> AsyncCollection[Document]:
        """A collection of the URL's database, the declared indexes created.

        Call it inside a :func:`guarded` method: creating the indexes is the
        first trip to the server.
        """
        return (await self.conn.database())[name]


def exact(**times: float | None) -> Document:
    """Fields for times that an update writes and a reader gets back exactly.

    Each time is kept as a double (what queries, sorts and ``$max`` read) and
    as its ``repr`` under ``<name>_exact``, which the reader returns.  MongoDB
    keeps doubles exactly and the twin is redundant there; the nx-27017
    emulator the suites run against keeps only 15 significant digits of a
    double written by ``$set`` (10 µs of an epoch time), which is enough to
    turn a zero-second grace window into a GRACE.  Inserted documents are
    kept exactly by both, so only fields that updates write need this.
    """
    fields: Document = {}
    for name, value in times.items():
        fields[name] = value
        fields[f"{name}_exact"] = None if value is None else repr(value)
    return fields


def exact_time(doc: Document, name: str) -> Any:
    """A time written through :func:`exact` (the double if there is no twin)."""
    text = doc.get(f"{name}_exact")
    return doc.get(name) if text is None else float(text)


def ttl_index(collection: str, field: str = "expire_at") -> Index:
    """MongoDB deletes a document once the date in ``field`` has passed."""
    return (collection, ((field, 1),), (("expireAfterSeconds", 0),))
