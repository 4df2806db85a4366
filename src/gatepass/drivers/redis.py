"""Redis and Redis Cluster: one client per URL, shared by every store on it.

* :func:`redis_client` builds the client a URL names (``redis://``,
  ``rediss://``, ``redis+cluster://h1:p1,h2:p2/``, ``rediss+cluster://``);
  nothing connects until first use.
* :func:`guarded` is the one place where connection and cluster failures
  become :class:`~gatepass.errors.StoreUnavailable`.
* :class:`RedisConnection` is the shared, reference-counted client with its
  round-trip counter; :class:`RedisStore` is what every Redis store shares.
* ``?prefix=`` in a URL names the key prefix of this deployment; it is split
  off (:func:`split_prefix`) before the URL reaches redis-py, so stores with
  different prefixes still share one client.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, ParamSpec, Self, TypeAlias, TypeVar
from urllib.parse import parse_qsl, unquote

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript

from gatepass.drivers.registry import ConnectedStore, SharedConnection, Stats, shared
from gatepass.drivers.urls import DEFAULT_PREFIX, split_prefix
from gatepass.errors import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")

#: Failures that mean "Redis cannot serve us right now", as opposed to a bug.
#: READONLY and the cluster errors are what a failover in progress looks like.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    rexc.ConnectionError,  # includes BusyLoadingError, MaxConnectionsError
    rexc.TimeoutError,
    rexc.ReadOnlyError,
    rexc.ClusterError,  # ClusterDownError, MasterDownError, "TTL exhausted"
    rexc.TryAgainError,
    rexc.SlotNotCoveredError,  # a cluster whose slot map has a hole (failover)
    TimeoutError,
    OSError,
)

#: A client of a single Redis server or of a Redis Cluster; every store takes either.
RedisClient: TypeAlias = aioredis.Redis | RedisCluster

#: URL schemes naming a Redis Cluster.
CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})

# KEYS[1]: a user's index.  ARGV: score, member.  Trims members whose score
# has passed on the Redis clock (their sessions are certainly gone), adds or
# raises the member, and lets the whole index expire with its last member.
INDEX_ADD_SCRIPT = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(top[2]) * 1000))
return 1
"""


def redis_client(url: str, stats: Stats | None = None) -> RedisClient:
    """A client configured for the stores; connects on first use.

    ``redis://`` and ``rediss://`` URLs give a :class:`redis.asyncio.Redis`;
    ``redis+cluster://host:port[,host:port…]/`` (``rediss+cluster://`` for
    TLS) gives a :class:`~redis.asyncio.cluster.RedisCluster` that discovers
    the rest of the cluster from any of the listed nodes.

    Short timeouts and a single quick retry: a retry rescues a pooled
    connection that went stale when Redis restarted, while a Redis that is
    really down becomes a 503 within a few seconds instead of a hung request.
    """
    client: _Redis | _RedisCluster
    if _scheme(url) in CLUSTER_SCHEMES:
        client = _cluster_client(url)
    else:
        client = _Redis.from_url(  # type: ignore[assignment]  # from_url is typed as Redis
            url,
            socket_timeout=2,
            socket_connect_timeout=2,
            health_check_interval=30,
            decode_responses=False,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.2), retries=1),
        )
    client.stats = Stats() if stats is None else stats
    return client


class _RedisCluster(RedisCluster):
    """RedisCluster that finishes its lazy start-up before running any command.

    redis-py 8.1's async cluster client, when its first commands are
    concurrent, lets some of them resolve their target node before the slot
    map is loaded and then use a connection that start-up has closed
    (``AttributeError: 'NoneType' object has no attribute 'writelines'``).
    Awaiting ``initialize()`` (which takes a lock) first avoids that.
    It also counts what it sends, like :class:`_Redis`.
    """

    stats: Stats

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        self.stats.round_trips += 1
        if self._initialize:
            await self.initialize()
        return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        pipe = _ClusterPipeline(self, transaction)  # type: ignore[abstract]  # redis-py's stubs
        pipe.stats = self.stats
        return pipe


def _scheme(url: str) -> str:
    """The URL's scheme, lower-cased, read without parsing the rest."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


def _cluster_client(url: str) -> _RedisCluster:
    # redis-py's own URL parser takes one host; a cluster URL lists seeds.
    # The URL is split by hand: urllib's urlsplit refuses a netloc of several
    # hosts with an IPv6 one among them on some Python 3.11 releases
    # (Debian 12's 3.11.2 among them: "Invalid IPv6 URL").
    _, _, rest = url.partition("://")
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    if slash + path not in ("", "/", "/0"):
        raise ValueError("a Redis Cluster has only database 0")
    if parse_qsl(query, keep_blank_values=True):
        raise ValueError("unsupported Redis Cluster URL parameter")
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes: list[ClusterNode] = []
    for host_port in hosts.split(","):
        host, _, port = host_port.rpartition(":")
        if not host:
            host, port = host_port, "6379"
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("invalid Redis Cluster node port")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    if not hosts:
        raise ValueError("a Redis Cluster URL needs at least one host:port")
    return _RedisCluster(
        startup_nodes=nodes,
        username=unquote(username) or None,
        password=unquote(password) or None,
        ssl=_scheme(url) == "rediss+cluster",
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=30,
        decode_responses=False,
        # Covers MOVED/ASK redirects and a node dropping out during failover.
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.2), retries=3),
    )


def queue_script(
    pipe: Any, script: AsyncScript, keys: list[str], args: list[str | int | float]
) -> None:
    """Queue a script in a non-transactional pipeline as EVAL.

    A cluster pipeline neither loads scripts first nor retries NOSCRIPT, and
    a new or promoted node may not know them: EVAL needs no prior load.
    """
    pipe.eval(script.script, len(keys), *keys, *args)


def guarded(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn connection failures into StoreUnavailable (whose text names no key)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise StoreUnavailable("Redis is unavailable.", store="redis") from exc
        except rexc.RedisClusterException as exc:
            if not cluster_unreachable(exc):
                raise  # a bug (e.g. a cross-slot command), not an outage
            raise StoreUnavailable("Redis is unavailable.", store="redis") from exc

    return wrapper


def cluster_unreachable(exc: rexc.RedisClusterException) -> bool:
    """Whether redis-py's cluster client failed for want of a working cluster.

    It reports "no seed node answers" and "the slot map has holes" with the
    generic RedisClusterException, also used for misuse: tell them by text.
    """
    text = str(exc)
    return isinstance(exc, rexc.SlotNotCoveredError) or text.startswith(
        ("Redis Cluster cannot be connected", "All slots are not covered")
    )


def ms(timestamp: float) -> int:
    """Epoch milliseconds, rounded up: Redis must not forget anything early."""
    return math.ceil(timestamp * 1000)


class _Pipeline(Pipeline):
    stats: Stats

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.stats.round_trips += 1
        return await super().execute(raise_on_error)


class _ClusterPipeline(ClusterPipeline):
    stats: Stats

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True
                      ) -> list[Any]:  # fmt: skip
        self.stats.round_trips += 1
        return await super().execute(raise_on_error, allow_redirections)


class _Redis(aioredis.Redis):
    """A client that counts what it sends (see :class:`~gatepass.drivers.registry.Stats`)."""

    stats: Stats

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.stats.round_trips += 1
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.stats = self.stats
        return pipe


class RedisConnection(SharedConnection):
    """One client (single server or cluster) and its round-trip counter."""

    backend = "redis"

    def __init__(self, url: str) -> None:
        """``url`` without its ``prefix`` parameter (see :func:`split_prefix`)."""
        super().__init__()
        self.client = redis_client(url, self.stats)

    async def ping(self) -> None:
        await _ping(self.client)

    async def _close(self) -> None:
        await self.client.aclose()


@guarded
async def _ping(client: RedisClient) -> None:
    await client.ping()


def open_connection(url: str) -> RedisConnection:
    """The shared client for ``url`` (without ``prefix``); connects on first use."""
    scheme, sep, rest = url.partition("://")
    key = f"{scheme.lower()}{sep}{rest}"  # one client per URL, whatever the scheme's case
    return shared(f"redis:{key}", RedisConnection, lambda: RedisConnection(url))


class RedisStore(ConnectedStore):
    """What every Redis store shares: its client, key prefix, scripts, ping and close."""

    #: Lua scripts to register, by the attribute that will hold each.
    SCRIPTS: ClassVar[dict[str, str]] = {}

    def __init__(self, conn: RedisConnection, *, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(conn)
        self.conn = conn
        self.client: RedisClient = conn.client
        self.prefix = prefix
        for name, source in self.SCRIPTS.items():
            setattr(self, name, self.client.register_script(source))

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None) -> Self:
        """A store on the shared client for ``url``; nothing connects until first use.

        The key prefix is ``prefix``, else the URL's ``?prefix=``, else ``gatepass:``.
        """
        plain, in_url = split_prefix(url)
        return cls(open_connection(plain), prefix=in_url if prefix is None else prefix)

    async def members(self, index: str) -> list[str]:
        """The members of a sorted-set index (e.g. a user's sessions), decoded."""
        found: list[Any] = await self.client.zrange(index, 0, -1)
        return [m.decode() for m in found]
