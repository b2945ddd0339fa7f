"""The suite's report: the machine and versions, and the one table (text or markdown).

The table has a row per figure of `_suite.ROWS` found in the results (a `*` in a row's path
expands to every matching key: one row per batch size, store, rate), with its baseline and
ratio and the spread over rounds (min-max, and how many rounds) when it was measured.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import psycopg
import redis

from bench._common import SPREAD
from bench._suite import ROWS, Row

__all__ = ["machine", "render", "table", "versions"]

#: CPU flags worth naming (vector units the verifier's and apply's native code could use)
_FLAGS: Final = ("sse4_2", "avx", "avx2", "fma", "bmi2", "aes", "sha_ni", "avx512f",
                 "avx512bw", "avx512vl", "avx512_vnni", "amx_tile")  # fmt: skip
_PACKAGES: Final = ("dualsync", "psycopg", "psycopg-pool", "redis", "arq", "orjson", "pydantic")
Cells = tuple[str, str, str, str, str]


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    path = Path("/proc/cpuinfo")
    if path.exists():
        for line in path.read_text().splitlines():
            k, _, v = line.partition(":")
            info.setdefault(k.strip(), v.strip())
    return info


def machine() -> dict[str, Any]:
    """CPU model, cores, notable flags, memory, kernel, load average."""
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    mem = Path("/proc/meminfo")
    total = next((int(x.split()[1]) // 1024 for x in mem.read_text().splitlines()
                  if x.startswith("MemTotal:")), 0) if mem.exists() else 0  # fmt: skip
    return {
        "cpu": cpu.get("model name", platform.processor() or "unknown"),
        "cores": os.cpu_count(),
        "flags": [f for f in _FLAGS if f in flags],
        "memory_mb": total,
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions(database_url: str, redis_url: str) -> dict[str, str]:
    """Python, the servers' and the packages' versions."""
    out = {"python": platform.python_version()}
    with psycopg.connect(database_url) as conn:
        row = conn.execute(b"show server_version").fetchone()
        out["postgres"] = str(row[0]) if row else "?"
        row = conn.execute(
            b"select default_version from pg_available_extensions where name = 'vector'"
        ).fetchone()
        out["pgvector"] = str(row[0]) if row else "not available"
    client = redis.Redis.from_url(redis_url)
    info: dict[str, Any] = client.info("server")  # type: ignore[assignment]  # sync client: a dict, not an Awaitable
    out["redis"] = str(info["redis_version"])
    client.close()
    for p in _PACKAGES:
        try:
            out[p if p != "redis" else "redis-py"] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _regex(segment: str) -> re.Pattern[str]:
    return re.compile("".join("(.+?)" if c == "*" else re.escape(c) for c in segment) + "$")


def _expand(data: Any, parts: list[str], groups: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The `*` captures of every path in `data` that matches `parts`."""
    if not parts:
        yield groups
        return
    if not isinstance(data, dict):
        return
    head, rest = parts[0], parts[1:]
    if "*" not in head:
        if head in data:
            yield from _expand(data[head], rest, groups)
        return
    rx = _regex(head)
    for key in sorted(data, key=_natural):
        if key != SPREAD and (m := rx.match(key)):
            yield from _expand(data[key], rest, groups + m.groups())


def _natural(key: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key))


def _fill(pattern: str, groups: tuple[str, ...]) -> str:
    it = iter(groups)
    return "".join(next(it, "*") if c == "*" else c for c in pattern)


def _get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for p in path.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return "" if v is None else str(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _spread(data: dict[str, Any], path: str) -> str:
    section, _, rel = path.partition(".")
    s = _get(data, section + "." + SPREAD)
    s = s.get(rel) if isinstance(s, dict) else None
    if not isinstance(s, dict):
        return "1 run"
    return f"{_fmt(s['min'])}-{_fmt(s['max'])} ({s['rounds']})"


def _row(data: dict[str, Any], row: Row, groups: tuple[str, ...]) -> Cells | None:
    path = _fill(row.metric, groups)
    value = _get(data, path)
    if value is None:
        return None
    base: Any = row.baseline
    if isinstance(base, str):
        base = _get(data, _fill(base, groups))
    ratio: Any = _get(data, _fill(row.ratio, groups)) if row.ratio else None
    if ratio is None and isinstance(base, int | float) and base and isinstance(value, int | float):
        ratio = round(value / base, 2)
    ratio_text = f"{_fmt(ratio)} {row.note}".strip() if ratio is not None else ""
    return path, _fmt(value), _fmt(base), ratio_text, _spread(data, path)


def table(data: dict[str, Any]) -> list[Cells]:
    """The rows found in `data` (a results file's contents)."""
    out: list[Cells] = []
    for row in ROWS:
        for groups in _expand(data, row.metric.split(".")):
            cells = _row(data, row, groups)
            if cells is not None and cells[:3] not in {c[:3] for c in out}:
                out.append(cells)
    return out


HEAD: Final = ("metric", "value", "baseline", "ratio", "spread (min-max, rounds)")


def render(rows: list[Cells], *, markdown: bool = False) -> str:
    """The table as aligned text, or as a markdown table."""
    if markdown:
        lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
        lines += ["| " + " | ".join([f"`{c[0]}`", *c[1:]]) + " |" for c in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [HEAD, *rows]) for i in range(len(HEAD))]
    fmt = "  ".join(f"{{:{'<' if i in (0, 3, 4) else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [HEAD, *rows])
