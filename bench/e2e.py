"""End-to-end latency, producer -> visible in Postgres, at steady rates; beside XADD -> read.

    python -m bench.e2e [--rates 1000 5000 20000] [--warmup S] [--window S] [--windows N]
                        [--workers N] [--worker-arg=--linger-ms=0 ...]

Two `dualsync worker` processes (the production entry point under arq, default tuning: batch
500, linger 5 ms, block 1000 ms) consume the shard streams; a token-bucket producer in this
process publishes upserts of new `shop.customers` keys at a steady rate (~450-byte payloads,
one pipelined `publish_many` per ~1 ms tick). Each event is stamped with its publish time
(wall clock just before its pipeline is sent; also its `occurred_at`).

How "visible" is measured, without touching the worker: a statement-level trigger on the
target table calls `pg_notify(txid)`; Postgres delivers a notification only when its
transaction commits, so a listener in its own process stamps, per transaction, the moment
its rows became visible to other sessions. After the run each row's `xmin` names the
transaction that wrote it (every key is written once), so latency = that transaction's
notification time - the event's publish time: an upper bound of the true visibility by the
notification's delivery (well under a millisecond on loopback). Costs of the probe: one
`pg_notify` per applied batch, and commits that notify are serialised by Postgres (a lock
held for the commit itself).

The baseline, at the same rates: the same producer into a second set of streams read by two
plain XREADGROUP loops (separate processes, COUNT as the worker's, BLOCK 1000 ms, ack per
read), latency = read time - publish time.

Per rate: a warm-up (excluded), then `--windows` windows; each window's p50/p95/p99 over
the events published in it; the figure is the median over windows, min/max under `spread`.
A rate the box cannot sustain is reported as saturated, with the rates achieved.
Records `e2e.p{50,95,99}_ms_at_<rate>`, `e2e.xadd_xread_p{50,95,99}_ms_at_<rate>`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
import redis.asyncio as aredis

from bench._common import database_url, record, redis_url, spread_of
from bench._e2e_probes import PROBE_SQL, RT_GROUP, RT_PREFIX, listen, reader
from bench._live import SHARDS, Paced, Workers, backlog, doc, occurred, pace, prepare_db
from dualsync.logging import configure_logging
from dualsync.producers import EventSpec, Publisher
from dualsync.schema.streams import stream_keys
from dualsync.worker.config import WorkerConfig

PREFIX: Final = "be2e"
#: quantile name -> index into statistics.quantiles(n=100)
QUANTILES: Final = {"p50": 49, "p95": 94, "p99": 98}
_CTX = mp.get_context("spawn")


def label(rate: int) -> str:
    """1000 -> '1k', 20000 -> '20k', 300 -> '300'."""
    return f"{rate // 1000}k" if rate % 1000 == 0 else str(rate)


@dataclass(frozen=True, slots=True)
class Plan:
    """Durations of one rate's run."""

    warmup_s: float
    window_s: float
    windows: int

    @property
    def seconds(self) -> float:
        """Publishing time per rate."""
        return self.warmup_s + self.window_s * self.windows


def _figures(paced: Paced, seen: list[float | None], plan: Plan, t0: float) -> dict[str, Any]:
    """Per-window quantiles (ms) of one rate; the median over windows and their spread."""
    per_q: dict[str, list[float]] = {q: [] for q in QUANTILES}
    for w in range(plan.windows):
        lo = t0 + plan.warmup_s + w * plan.window_s
        hi = lo + plan.window_s
        lat = [
            (s - p) * 1000
            for p, s in zip(paced.sent_at, seen, strict=True)
            if lo <= p < hi and s is not None
        ]
        if len(lat) < 2:
            continue
        cuts = statistics.quantiles(lat, n=100, method="inclusive")
        for q, i in QUANTILES.items():
            per_q[q].append(cuts[i])
    return {q: spread_of(v, 2) for q, v in per_q.items() if v}


def _rate_block(prefix: str, rate: int, figs: dict[str, Any], paced: Paced) -> dict[str, Any]:
    """Figures of one rate named `<prefix>p99_ms_at_5k` etc., their spread under `spread`."""
    at = f"at_{label(rate)}"
    out: dict[str, Any] = {f"{prefix}{q}_ms_{at}": s["median"] for q, s in figs.items()}
    out[f"{prefix}published_per_s_{at}"] = round(paced.achieved_per_s)
    out["spread"] = {f"{prefix}{q}_ms_{at}": s for q, s in figs.items()}
    return out


async def _drain(client: aredis.Redis, prefix: str, wait_s: float, check: Any) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        check()
        if await backlog(client, prefix) == 0:
            return True
        await asyncio.sleep(0.2)
    return False


async def _publish_paced(
    client: aredis.Redis, prefix: str, tag: str, rate: int, plan: Plan
) -> tuple[Paced, float, float]:
    """New `customers` keys `<tag>-<seq>` at `rate` for the plan's seconds: (what was sent,
    wall clock at the start, wall clock when publishing ended)."""
    pub = Publisher(client, source="bench", prefix=prefix, shards=SHARDS)

    def make(seq: int, t: float) -> EventSpec:
        key = f"{tag}-{seq}"
        return EventSpec("customers", key, payload=doc(key), occurred_at=occurred(t))

    t0 = time.time()
    paced = await pace(pub.publish_many, make, rate, plan.seconds)
    t_end = time.time()
    await pub.aclose()
    return paced, t0, t_end


async def _e2e_rate(
    db: str, client: aredis.Redis, workers: Workers, rate: int, plan: Plan
) -> tuple[Paced, list[int | None], float, float]:
    """One rate through the workers: (paced, each event's row xmin, t0, end of publishing)."""
    tag = f"r{rate}"
    paced, t0, t_end = await _publish_paced(client, PREFIX, tag, rate, plan)
    await _drain(client, PREFIX, 180, workers.check_alive)
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            b"select id, xmin::text::bigint from shop.customers where id like %s", (f"{tag}-%",)
        ).fetchall()
    xid = {int(k.rsplit("-", 1)[1]): int(x) for k, x in rows}
    return paced, [xid.get(i) for i in range(len(paced.sent_at))], t0, t_end


async def _rt_rate(client: aredis.Redis, rate: int, plan: Plan) -> tuple[Paced, float]:
    paced, t0, _ = await _publish_paced(client, RT_PREFIX, f"t{rate}", rate, plan)
    await _drain_rt(client)
    return paced, t0


async def _drain_rt(client: aredis.Redis, wait_s: float = 60) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        pending = 0
        for k in stream_keys(RT_PREFIX, SHARDS):
            pending += int((await client.xpending(k, RT_GROUP))["pending"])
            info = [g for g in await client.xinfo_groups(k) if _s(g["name"]) == RT_GROUP]
            last = _s(info[0]["last-delivered-id"])
            pending += len(await client.xrange(k, min=f"({last}", max="+", count=1))
        if not pending:
            return
        await asyncio.sleep(0.1)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _saturated(paced: Paced, seen: list[float | None], t_end: float) -> bool:
    """Below 95% of the rate, or more than half a second of events behind at the end."""
    behind = sum(1 for s in seen if s is None or s > t_end)
    return paced.achieved_per_s < 0.95 * paced.rate or behind > paced.rate / 2


@dataclass(slots=True)
class Collected:
    """Raw material of a run: what was sent per rate, and when it was seen."""

    e2e: list[tuple[int, Paced, list[int | None], float, float]]
    rt: list[tuple[int, Paced, float]]
    commits: dict[int, float]
    reads: dict[bytes, float]
    codes: list[int | None]


async def _collect(rates: list[int], plan: Plan, n_workers: int, args: list[str]) -> Collected:
    """Every rate through the workers, then every rate through plain XREADGROUP readers."""
    with tempfile.TemporaryDirectory() as t, database_url(Path(t)) as server, redis_url() as url:
        db = prepare_db(server, "bench_e2e", PROBE_SQL)
        client = aredis.Redis.from_url(url)
        for k in stream_keys(RT_PREFIX, SHARDS):
            await client.xgroup_create(k, RT_GROUP, id="$", mkstream=True)
        stop, ready, out = _CTX.Event(), _CTX.Event(), _CTX.Queue()
        children = [_CTX.Process(target=listen, args=(db, ready, stop, out))]
        children += [_CTX.Process(target=reader, args=(url, f"r{i}", stop, out)) for i in (0, 1)]
        for c in children:
            c.start()
        ready.wait(30)
        got = Collected([], [], {}, {}, [])
        with Workers(n_workers, database_url=db, redis_url=url, prefix=PREFIX,
                     log_dir=Path(t) / "workers", extra_args=args) as workers:  # fmt: skip
            probe = Publisher(client, source="bench", prefix=PREFIX, shards=SHARDS)
            await workers.wait_ready(client, probe.publish_many)
            await probe.aclose()
            for rate in rates:
                got.e2e.append((rate, *await _e2e_rate(db, client, workers, rate, plan)))
            got.codes = workers.stop()
        for rate in rates:
            got.rt.append((rate, *await _rt_rate(client, rate, plan)))
        stop.set()
        for part in [out.get(timeout=60) for _ in children]:
            if isinstance(part, dict):
                got.commits = part
            else:
                for key, at in part:
                    got.reads.setdefault(key, at)
        for c in children:
            c.join(30)
        await client.flushdb()
        await client.aclose()
    return got


def _result(got: Collected, rates: list[int], plan: Plan, head: dict[str, Any]) -> dict[str, Any]:
    cfg = WorkerConfig()
    result: dict[str, Any] = head | {
        "rates": rates, "warmup_s": plan.warmup_s, "window_s": plan.window_s,
        "windows": plan.windows, "worker_exit_codes": got.codes, "spread": {},
        "worker_defaults": {"batch_size": cfg.batch_size, "linger_ms": cfg.linger_ms,
                            "block_ms": cfg.block_ms},
    }  # fmt: skip
    for rate, paced, xids, t0, t_end in got.e2e:
        seen = [got.commits.get(x) if x is not None else None for x in xids]
        block = _rate_block("", rate, _figures(paced, seen, plan, t0), paced)
        result["spread"] |= block.pop("spread")
        result |= block
        lab = label(rate)
        result[f"unseen_at_{lab}"] = sum(1 for s in seen if s is None)
        visible = sum(1 for s in seen if s is not None and s <= t_end)
        result[f"applied_per_s_at_{lab}"] = round(visible / (t_end - t0))
        result[f"saturated_at_{lab}"] = _saturated(paced, seen, t_end)
    for rate, paced, t0 in got.rt:
        keys = (f"t{rate}-{i}".encode() for i in range(len(paced.sent_at)))
        seen = [got.reads.get(k) for k in keys]
        block = _rate_block("xadd_xread_", rate, _figures(paced, seen, plan, t0), paced)
        result["spread"] |= block.pop("spread")
        result |= block
    return result


async def run(rates: list[int], plan: Plan, n_workers: int, args: list[str]) -> dict[str, Any]:
    """Measure every rate; the figures (see the module docstring)."""
    got = await _collect(rates, plan, n_workers, args)
    result = _result(got, rates, plan, {"workers": n_workers, "worker_args": args})
    _print(result, rates)
    return result


def _print(r: dict[str, Any], rates: list[int]) -> None:
    for rate in rates:
        lab = label(rate)
        sat = " SATURATED" if r.get(f"saturated_at_{lab}") else ""
        print(
            f"e2e at {rate:>6,}/s: p50 {r.get(f'p50_ms_at_{lab}', 'n/a')} ms, p95 "
            f"{r.get(f'p95_ms_at_{lab}', 'n/a')}, p99 {r.get(f'p99_ms_at_{lab}', 'n/a')} "
            f"(published {r[f'published_per_s_at_{lab}']:,}/s, visible "
            f"{r[f'applied_per_s_at_{lab}']:,}/s){sat}; XADD->XREADGROUP p50 "
            f"{r.get(f'xadd_xread_p50_ms_at_{lab}', 'n/a')}"
            f" ms, p99 {r.get(f'xadd_xread_p99_ms_at_{lab}', 'n/a')} ms"
        )


def main() -> None:
    """CLI entry: run and record under `e2e`."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rates", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds excluded per rate (2)")
    ap.add_argument("--window", type=float, default=2.0, help="seconds per window (2)")
    ap.add_argument("--windows", type=int, default=3, help="windows per rate (3)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    ap.add_argument(
        "--worker-arg",
        action="append",
        default=[],
        help="passed to `dualsync worker`, e.g. --worker-arg=--linger-ms=0",
    )
    a = ap.parse_args()
    if min(a.rates) < 1 or a.windows < 1 or a.window <= 0 or a.warmup < 0 or a.workers < 1:
        ap.error("rates, --windows and --workers must be at least 1, --window above 0")
    configure_logging("json", "WARNING", force=True)
    plan = Plan(a.warmup, a.window, a.windows)
    record("e2e", asyncio.run(run(a.rates, plan, a.workers, a.worker_arg)))


if __name__ == "__main__":
    main()
