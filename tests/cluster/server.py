"""Real Redis Clusters of throw-away ``redis-server`` processes on loopback.

:class:`RedisCluster` starts N masters (and optionally replicas) with
``--cluster-enabled yes`` in a directory of their own, joins them with
``redis-cli --cluster create … --cluster-yes``, waits until every node says
``cluster_state:ok`` and agrees on all 16384 slots, and stops them again.
The session fixture ``redis_cluster_url`` shares one 3-master cluster with
every test that asks for it; tests keep apart by key prefix.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A free port P whose cluster bus port P + 10000 is free as well."""
    for _ in range(1000):
        port = random.randint(20000, 50000)
        if {port, port + 10000} & taken:
            continue
        if _port_free(port) and _port_free(port + 10000):
            taken.update({port, port + 10000})
            return port
    raise RuntimeError("no free port pair for a cluster node")


def require_redis_binaries() -> None:
    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if not missing:
        return
    message = f"{' and '.join(missing)} not installed: cannot start a Redis Cluster"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: cluster tests must run, not skip)")
    pytest.skip(message)


def cli(port: int, *args: str, timeout: float = 10) -> str:
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True, text=True, timeout=timeout, check=True,
    )  # fmt: skip
    return done.stdout


class RedisCluster:
    def __init__(self, directory: Path, *, masters: int = 3, replicas: int = 0) -> None:
        self.directory = directory
        self.masters = masters
        self.replicas = replicas
        taken: set[int] = set()
        self.ports = [free_cluster_port(taken) for _ in range(masters * (1 + replicas))]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"redis+cluster://{nodes}/"

    def start_node(self, port: int) -> None:
        self.processes[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
             # A replica's first sync starts at once: Redis otherwise holds a
             # diskless full sync back 5 s for more replicas to join it.
             "--repl-diskless-sync-delay", "0",
             "--dir", str(self.directory), "--logfile", f"redis-{port}.log"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {port} did not start") from None
                time.sleep(0.02)

    def stop_node(self, port: int) -> None:
        process = self.processes.pop(port, None)
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(timeout=10)

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes,
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, timeout=60, check=True,
        )  # fmt: skip
        self.wait_ok(self.ports)
        self.wait_replicas_online()

    def wait_replicas_online(self, timeout: float = 30) -> None:
        """Each master has its replicas attached and past their first full sync."""
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while True:
                info = cli(port, "INFO", "replication")
                if "role:master" not in info:
                    break
                online = info.count(",state=online,")
                if online >= self.replicas:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the replicas of {port} never came online:\n{info}")
                time.sleep(0.05)

    def wait_ok(self, ports: list[int], timeout: float = 30) -> None:
        """Every node in ``ports`` reports cluster_state:ok with all slots served."""
        deadline = time.monotonic() + timeout
        for port in ports:
            while True:
                info = cli(port, "CLUSTER", "INFO")
                if "cluster_state:ok" in info and "cluster_slots_ok:16384" in info:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster node {port} never became ok:\n{info}")
                time.sleep(0.05)

    def stop(self) -> None:
        for port in list(self.processes):
            self.stop_node(port)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """One 3-master cluster for the whole session (keys apart by prefix)."""
    require_redis_binaries()
    with tempfile.TemporaryDirectory(prefix="gatepass-cluster-") as directory:
        cluster = RedisCluster(Path(directory))
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: RedisCluster) -> str:
    return redis_cluster.url
