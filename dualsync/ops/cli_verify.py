"""`dualsync verify`: sample both sides and say, with a stated confidence, how much drifts."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from dualsync.errors import ConfigError
from dualsync.ops.cli_options import (
    EntityOption,
    LegacyRootOption,
    MappingOption,
    MongoOption,
    mapping_path,
)
from dualsync.ops.services import open_services
from dualsync.ops.verify.run import VerifyOptions, run_full, run_verify
from dualsync.ops.verify.sample import EXTRA, MISMATCH, MISSING, SampleResult
from dualsync.producers.stores import open_stores
from dualsync.schema.mapping import load_mapping
from dualsync.settings import get_settings

__all__ = ["DRIFT_EXIT", "verify"]

#: the exit code when drift is confirmed (0: clean; 1: the verify itself failed)
DRIFT_EXIT = 3


def verify(
    mapping: MappingOption = None,
    entity: EntityOption = None,
    all_entities: Annotated[
        bool, typer.Option("--all", help="Every entity with a source (the default).")
    ] = False,
    samples: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Keys per entity, half from each side.")
    ] = 3000,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (default: random).")] = None,
    grace: Annotated[
        float, typer.Option(min=0.0, help="Seconds before a difference is read again.")
    ] = 2.0,
    generations: Annotated[
        int, typer.Option(min=0, max=10, help="Rereads before a difference is drift.")
    ] = 3,
    json_: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help="Compare every record of one --entity (resumable sweep)."),
    ] = False,
    buckets: Annotated[
        int, typer.Option(min=1, max=65_536, help="With --full: hash buckets of the sweep.")
    ] = 4096,
    restart: Annotated[
        bool, typer.Option(help="With --full: start over instead of resuming a killed sweep.")
    ] = False,
    legacy_root: LegacyRootOption = None,
    mongo: MongoOption = None,
) -> None:
    """Compare sampled records of the legacy store and Postgres through the mapping.

    Exit status: 0 clean, 3 when drift is confirmed, 1 when the verify could not run.
    """
    settings = get_settings()
    ms = load_mapping(mapping_path(mapping, settings))
    if entity and all_entities:
        raise ConfigError("--entity and --all exclude each other")
    import random  # noqa: PLC0415 - only for the default seed

    opts = VerifyOptions(
        entities=tuple(entity or ()), samples=samples,
        seed=seed if seed is not None else random.SystemRandom().randrange(2**31),
        grace_s=grace, generations=generations, prefix=settings.prefix, shards=settings.shards,
        fingerprint_key=(settings.fingerprint_key.get_secret_value().encode()
                         if settings.fingerprint_key else None),
    )  # fmt: skip
    stores = open_stores(ms, root=legacy_root, mongo_url=mongo or settings.mongo_url)
    with open_services(settings) as svc, contextlib.closing(stores):
        job = (
            run_full(ms, stores, opts, database_url=svc.database_url, redis_url=svc.redis_url,
                     buckets=buckets, resume=not restart, progress=not json_)
            if full
            else run_verify(ms, stores, opts, database_url=svc.database_url,
                            redis_url=svc.redis_url)
        )  # fmt: skip
        results = asyncio.run(job)
    if json_:
        typer.echo(orjson.dumps([_as_json(i, r) for i, r in results]).decode())
    else:
        _print(Console(soft_wrap=True), results, opts)
    if any(r.drift for _, r in results):
        raise typer.Exit(DRIFT_EXIT)


def _as_json(run_id: int, r: SampleResult) -> dict[str, object]:
    return {
        "run_id": run_id, "entity": r.entity, "sampled": r.sampled, "matched": r.matched,
        "missing_in_target": len(r.confirmed(MISSING)), "extra_in_target": len(r.confirmed(EXTRA)),
        "mismatch": len(r.confirmed(MISMATCH)), "in_flight": r.in_flight, "drift": r.drift,
        "drift_rate": r.rate, "upper_bound_95": r.bound, "fields": dict(r.field_counts()),
        "findings": [
            {"key": f.key, "class": f.kind, "fields": f.fields, "legacy_fp": f.legacy_fp,
             "pg_fp": f.pg_fp}
            for f in r.confirmed()
        ],
    }  # fmt: skip


def _print(console: Console, results: list[tuple[int, SampleResult]], opts: VerifyOptions) -> None:
    table = Table(
        title=f"verify (seed {opts.seed}, {opts.generations} rechecks {opts.grace_s:g} s apart)"
    )
    for col in ("entity", "sampled", "matched", "missing", "extra", "mismatch", "in flight",
                "drift", "≤ at 95%", "run"):  # fmt: skip
        table.add_column(col, justify="left" if col == "entity" else "right")
    for run_id, r in results:
        table.add_row(
            r.entity, f"{r.sampled:,}", f"{r.matched:,}", str(len(r.confirmed(MISSING))),
            str(len(r.confirmed(EXTRA))), str(len(r.confirmed(MISMATCH))), str(r.in_flight),
            f"[red]{r.drift}[/]" if r.drift else "0", f"{r.bound:.3%}", str(run_id),
        )  # fmt: skip
    console.print(table)
    for run_id, r in results:
        if not r.drift:
            console.print(f"[green]{r.entity}: clean[/]: 0 drift in {r.sampled:,} samples, "
                          f"drift ≤ {r.bound:.3%} at 95% confidence")  # fmt: skip
            continue
        console.print(f"[red]{r.entity}: {r.drift} confirmed drift[/] "
                      f"(rate {r.rate:.3%}, ≤ {r.bound:.3%} at 95%)")  # fmt: skip
        for f in r.confirmed()[:10]:
            what = f" fields {', '.join(f.fields)}" if f.fields else ""
            console.print(f"  {f.kind:<18} {f.key}{what}")
        console.print(f"  repair: dualsync repair --entity {r.entity} --run {run_id} "
                      "(dry run; add --apply)")  # fmt: skip
