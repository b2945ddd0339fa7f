"""HTTP helpers for tests of the worker's endpoint: a free port, a GET that returns 503s too,
and a TCP proxy whose death makes a server unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.error
import urllib.request
from pathlib import Path

import psycopg


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - a test's own URL
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except urllib.error.URLError:  # nobody listening (yet, or any more)
        return 0, b""


async def get(url: str) -> tuple[int, bytes]:
    """GET from a thread (the server under test runs beside this loop)."""
    return await asyncio.to_thread(_get, url)


async def wait_status(url: str, status: int, timeout: float) -> tuple[int, bytes]:
    """Poll `url` until it answers `status` or `timeout` passes; the last answer."""
    deadline = asyncio.get_running_loop().time() + timeout
    got = await get(url)
    while got[0] != status and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        got = await get(url)
    return got


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a PostgreSQL server; `close()` cuts every connection."""

    def __init__(self, db_url: str) -> None:
        info = psycopg.conninfo.conninfo_to_dict(db_url)
        self._info = info
        host = str(info.get("host") or "localhost")
        self._unix: str | None = None
        self._target = (host, int(info.get("port") or 5432))
        if host.startswith("/"):
            port = info.get("port")
            socks = sorted(Path(host).glob(f".s.PGSQL.{port or '*'}"))
            if not socks:
                raise FileNotFoundError(f"no PostgreSQL socket in {host}")
            self._unix = str(socks[0])
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def open(self) -> str:
        """Start listening; the URL that goes through the proxy."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        info = {**self._info, "host": "127.0.0.1", "port": str(self.port)}
        return psycopg.conninfo.make_conninfo("", **info)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._unix is not None:
            up_r, up_w = await asyncio.open_unix_connection(self._unix)
        else:
            up_r, up_w = await asyncio.open_connection(*self._target)
        self._writers += [writer, up_w]
        await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer), return_exceptions=True)

    async def close(self) -> None:
        """Stop accepting and drop every connection."""
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            w.close()
        self._writers.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    finally:
        dst.close()
