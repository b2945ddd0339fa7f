"""The full sweep at scale: rows/s beside just reading both sides, peak RSS, SIGKILL + resume.

    python -m bench.verify_sweep_rss [--rows 1000000] [--buckets 4096] [--store both]

A tiny mapping (`items`: text, int, numeric, timestamptz, jsonb) keeps the data cheap: the
target table and row_state come from one `generate_series` insert, the legacy side is
json_lines files (10,000 lines each), or a synthetic store computing the same documents
from their keys (`--store synthetic`), which holds nothing, so its RSS is the sweep's own
(json_lines' adapter keeps every parsed file). Three differences are planted (a changed
field, a missing row, an extra row). Each measurement runs in a fresh subprocess; RSS is
sampled every 0.25 s and the peak is VmHWM (a subprocess's ru_maxrss includes its parent's
RSS at the fork on Linux). Then a sweep is SIGKILLed once its checkpoint counted half the
legacy records and resumed: same findings, and only what was not counted is read again.
Results are printed as JSON (and written to `--out FILE`).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench._common import database_url
from bench._sweep_data import SyntheticStore, setup
from dualsync.consumers.pool import open_pool
from dualsync.logging import configure_logging
from dualsync.ops.verify.canon import Canonicalizer
from dualsync.ops.verify.sweep import run_sweep
from dualsync.ops.verify.sweep_scan import TargetReader, live_keys
from dualsync.producers.stores import open_stores
from dualsync.schema.legacy import LegacyStore
from dualsync.schema.mapping import load_mapping


class RssSampler:
    """RSS every `every_s` seconds, from /proc/self/statm, in a thread."""

    def __init__(self, every_s: float = 0.25) -> None:
        self.every_s, self.samples = every_s, list[tuple[float, float]]()
        self._stop = threading.Event()
        self._page = resource.getpagesize()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pages = int(Path("/proc/self/statm").read_text().split()[1])
            self.samples.append((time.perf_counter() - self._t0, pages * self._page / 2**20))
            self._stop.wait(self.every_s)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        mb = [m for _, m in self.samples]
        at = {f"{p}%": round(mb[min(len(mb) - 1, len(mb) * p // 100)], 1) for p in (5, 25, 50, 75)}
        # VmHWM, not ru_maxrss: Linux carries the parent's RSS at fork into a child's
        # ru_maxrss, and the parent holds the generated data
        status = Path("/proc/self/status").read_text().splitlines()
        peak = next(int(x.split()[1]) for x in status if x.startswith("VmHWM:")) / 1024
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"rss_mb_at": at | {"end": round(mb[-1], 1)}, "rss_mb_min": round(min(mb), 1),
                "rss_mb_max": round(max(mb), 1), "peak_rss_mb": round(peak, 1),
                "ru_maxrss_mb": round(maxrss / 1024, 1)}  # fmt: skip


def _store(kind: str, root: Path, rows: int) -> Any:
    if kind == "synthetic":
        return SyntheticStore(rows)
    return open_stores(load_mapping(root / "mapping.yaml"), root=root)["items"]


async def _read(pool: Any, em: Any, store: LegacyStore, side: str) -> int:
    """The baseline: the same records read, nothing canonicalised or compared."""
    n = 0
    if side == "legacy":
        async for recs in store.iter_records(chunk=1000):
            n += len(recs)
        return n
    reader, after = TargetReader(em), None
    while True:
        async with pool.connection() as conn:
            keys = await live_keys(conn, em.name, after, 1000)
            if not keys:
                return n
            await reader.fetch(conn, keys)
        n, after = n + len(keys), keys[-1]


async def child(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in this (fresh) process."""
    root = Path(args.root)
    em = load_mapping(root / "mapping.yaml").entity("items")
    pool = await open_pool(args.db, max_size=4, name="bench-sweep")
    rss = RssSampler()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"what": args.child, "store": args.store}
    try:
        if args.child == "sweep":
            run_id, r = await run_sweep(
                pool, em, _store(args.store, root, args.rows), Canonicalizer(em, b"k" * 32),
                group="bench", buckets=args.buckets, grace_s=0.2, generations=1,
                progress=False, checkpoint_every_s=args.every,
            )  # fmt: skip
            found = sorted((f.key, f.kind, f.fields) for f in r.confirmed())
            out |= {"run_id": run_id, "findings": found, "sampled": r.sampled,
                    "matched": r.matched, "drift": r.drift} | r.stats()  # fmt: skip
        else:
            for side in ("legacy", "target"):
                t = time.perf_counter()
                n = await _read(pool, em, _store(args.store, root, args.rows), side)
                out[f"{side}_rows_per_s"] = round(n / (time.perf_counter() - t))
            t = time.perf_counter()
            legacy, target = await asyncio.gather(
                _read(pool, em, _store(args.store, root, args.rows), "legacy"),
                _read(pool, em, _store(args.store, root, args.rows), "target"),
            )
            out["both_rows_per_s"] = round(max(legacy, target) / (time.perf_counter() - t))
    finally:
        await pool.close()
    return out | {"seconds": round(time.perf_counter() - t0, 2)} | rss.stop()


def _args(db: str, root: Path, a: argparse.Namespace, what: str, store: str) -> list[str]:
    return [sys.executable, "-m", "bench.verify_sweep_rss", "--child", what, "--db", db,
            "--root", str(root), "--rows", str(a.rows), "--buckets", str(a.buckets),
            "--store", store, "--every", str(a.every)]  # fmt: skip


def spawn(cmd: list[str]) -> dict[str, Any]:
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(orjson.loads(done.stdout.strip().splitlines()[-1]))


def _checkpoint(db: str) -> dict[str, Any] | None:
    with psycopg.connect(db) as conn:
        row = conn.execute(b"select details->'sweep'->'state' from dualsync.verify_runs "
                           b"where mode = 'sweep' and status = 'running'").fetchone()  # fmt: skip
    return row[0] if row and isinstance(row[0], dict) else None


def kill_and_resume(cmd: list[str], db: str, rows: int) -> dict[str, Any]:
    """SIGKILL once the checkpoint counted half the legacy records, then resume."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    cp = None
    while proc.poll() is None:
        cp = _checkpoint(db)
        if cp is not None and cp["legacy"]["scanned"] >= rows // 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.1)
    proc.wait()
    killed_after = time.perf_counter() - t0
    if cp is None:
        raise SystemExit("the sweep ended before half of it was checkpointed: use more --rows")
    cp = _checkpoint(db) or cp  # the last checkpoint before the kill
    resumed = spawn(cmd)
    read = resumed["scanned"]
    return {"killed_after_s": round(killed_after, 1), "exit": proc.returncode,
            "checkpoint": {s: cp[s]["scanned"] for s in ("legacy", "target")},
            "resumed_read": read, "resumed": resumed,
            "no_reread": read.get("digest.legacy", 0) == rows - cp["legacy"]["scanned"]
            and read.get("digest.target", 0) == rows + 1 - cp["target"]["scanned"]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--buckets", type=int, default=4096)
    ap.add_argument("--store", choices=["json_lines", "synthetic", "both"], default="both")
    ap.add_argument("--every", type=float, default=5.0, help="checkpoint every N seconds")
    ap.add_argument("--no-kill", action="store_true", help="skip the SIGKILL + resume run")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child", choices=["sweep", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    a = ap.parse_args()
    configure_logging("json", "WARNING", force=True)
    if a.child:
        print(orjson.dumps(asyncio.run(child(a))).decode())
        return
    kinds = ["json_lines", "synthetic"] if a.store == "both" else [a.store]
    results: dict[str, Any] = {"rows": a.rows, "buckets": a.buckets}
    with tempfile.TemporaryDirectory() as t, database_url(Path(t)) as server:
        t0 = time.perf_counter()
        db, root, plants = setup(server, Path(t), a.rows)
        results |= {"setup_s": round(time.perf_counter() - t0, 1), "planted": plants}
        for kind in kinds:
            base = spawn(_args(db, root, a, "baseline", kind))
            swept = spawn(_args(db, root, a, "sweep", kind))
            swept["rows_per_s"] = round(a.rows / swept["seconds"])
            results[kind] = {"baseline": base, "sweep": swept}
            print(orjson.dumps({kind: results[kind]}).decode(), flush=True)
        if not a.no_kill:
            kill = kill_and_resume(_args(db, root, a, "sweep", kinds[-1]), db, a.rows)
            kill["same_findings"] = (
                kill["resumed"]["findings"] == results[kinds[-1]]["sweep"]["findings"]
            )
            results["sigkill_resume"] = kill
    text = orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
