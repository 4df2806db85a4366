"""What the store contract suites share: the backends, their servers, a store factory.

A plugin of the root ``conftest.py``: the fixtures ``backend_name`` (over
:data:`BACKENDS`; a suite with other backends defines its own) and
``backend_service`` (the server URL and Redis prefix that backend needs) are
there for every store suite, which wraps its own opener in a :class:`Backend`;
:func:`backend_of` closes what was opened and empties the test's Redis prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pytest

S = TypeVar("S")

#: Memory, SQLite, Redis, a real Redis Cluster and PostgreSQL.
BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", marks=[pytest.mark.redis, pytest.mark.slow]),
    pytest.param("postgres", marks=pytest.mark.postgres),
]

#: The same and MongoDB, against the nx-27017 wire-protocol emulator (not a
#: real MongoDB server: none installs here; see docs/storage.md). A suite
#: whose store has a MongoDB backend overrides ``backend_name`` with these.
BACKENDS_WITH_MONGODB = [*BACKENDS, pytest.param("mongodb", marks=pytest.mark.mongodb)]


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """A suite whose conftest imports this parametrises over :data:`BACKENDS`."""
    name: str = request.param
    return name


@pytest.fixture
def backend_service(backend_name: str, request: pytest.FixtureRequest) -> tuple[str, str]:
    """The server a suite's ``backend_name`` needs (see :func:`service_for`)."""
    return service_for(backend_name, request)


def service_for(backend_name: str, request: pytest.FixtureRequest) -> tuple[str, str]:
    """The server URL (and Redis key prefix) the backend needs, if any.

    Synchronous, so that only the backends that need a server pull in its
    (async) fixture. Names may carry a variant: ``redis-cached``,
    ``redis-cluster-cached``.
    """
    if backend_name.startswith("redis-cluster"):
        url = request.getfixturevalue("redis_cluster_url")
        return url, request.getfixturevalue("redis_prefix")
    if backend_name.startswith("redis"):
        return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    if backend_name == "postgres":
        return request.getfixturevalue("postgres_url"), ""
    if backend_name == "mongodb":
        return request.getfixturevalue("mongodb_url"), ""
    return "", ""


async def empty_redis_prefix(client: Any, prefix: str) -> None:
    """Delete the test's keys one by one (a cluster refuses a cross-slot DEL)."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    for key in keys:
        await client.delete(key)


@dataclass
class Backend(Generic[S]):
    """A backend by name, and a way to open another store on the same data
    (another server process, or the same one after a restart; memory: the
    same store)."""

    name: str
    _open: Callable[[], Awaitable[S]]
    opened: list[S] = field(default_factory=list)

    @property
    def persistent(self) -> bool:
        return self.name != "memory"

    async def open(self) -> S:
        store = await self._open()
        self.opened.append(store)
        return store


@asynccontextmanager
async def backend_of(
    name: str, open_store: Callable[[], Awaitable[S]], prefix: str = ""
) -> AsyncIterator[Backend[S]]:
    """A :class:`Backend` whose stores are emptied (Redis) and closed afterwards."""
    backend = Backend(name, open_store)
    try:
        yield backend
    finally:
        for store in backend.opened:
            client = getattr(store, "client", None)
            if name.startswith("redis") and client is not None:
                await empty_redis_prefix(client, prefix)
            await store.close()  # type: ignore[attr-defined]
