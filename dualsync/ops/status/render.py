"""Draw a `StatusSnapshot` with rich: a header line, a table of shards, a table of entities."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from dualsync.ops.status.model import EntityStatus, ShardStatus, StatusSnapshot

__all__ = ["render"]


#: ages up to this many seconds are shown in seconds, then minutes, then hours
_SECONDS_UP_TO = 120
_MINUTES_UP_TO = 7200


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < _SECONDS_UP_TO:
        return f"{seconds:.1f} s"
    if seconds < _MINUTES_UP_TO:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _consumers(s: ShardStatus) -> str:
    if not s.consumers:
        return "-"
    return ", ".join(f"{c.name} (idle {_age(c.idle_s)}, {c.pending} pending)"
                     for c in s.consumers)  # fmt: skip


def _verify(e: EntityStatus) -> str:
    v = e.verify
    if v is None:
        return "no verify yet"
    bound = "-" if v.bound is None else f"{v.bound:.3%}"
    return f"drift {v.drift}/{v.sampled}, bound {bound} ({v.started_at[:16].replace('T', ' ')})"


def _shards(snap: StatusSnapshot) -> Table:
    t = Table(title="shards", title_justify="left", expand=False)
    for col in ("shard", "length", "lag", "pending", "oldest pending"):
        t.add_column(col, justify="right")
    t.add_column("consumers (XINFO CONSUMERS)")
    for s in snap.shards:
        t.add_row(str(s.shard), str(s.length), str(s.lag), str(s.pending),
                  _age(s.oldest_pending_s), _consumers(s))  # fmt: skip
    return t


def _entities(snap: StatusSnapshot) -> Table:
    t = Table(title="entities", title_justify="left", expand=False)
    t.add_column("entity")
    t.add_column("read path")
    for col in ("applied", "deleted", "stale", "dead letters", "in DLQ"):
        t.add_column(col, justify="right")
    t.add_column("last verify")
    for e in snap.entities:
        mode = Text(e.mode, style="bold green" if e.mode == "postgres" else "")
        t.add_row(e.entity, mode, str(e.applied), str(e.deleted), str(e.stale),
                  str(e.dead_lettered), Text(str(e.dlq), style="red" if e.dlq else ""),
                  _verify(e))  # fmt: skip
    if not snap.entities:
        t.add_row("(none yet)", "", "", "", "", "", "", "")
    return t


def render(snap: StatusSnapshot) -> Group:
    """The whole screen for one snapshot."""
    head = Text(f"dualsync status  prefix {snap.prefix}  group {snap.group}  "
                f"lag {snap.lag}  at {snap.at}")  # fmt: skip
    parts: list[Text | Table] = [head, _shards(snap), _entities(snap)]
    if snap.postgres_error:
        parts.append(Text(f"verify results unavailable: {snap.postgres_error}", style="yellow"))
    return Group(*parts)
