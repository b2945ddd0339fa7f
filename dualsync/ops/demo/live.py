"""The applications keep writing during the demo: edits, deletes and appends.

panamia writes its Mongo collections and publishes each change itself (versions from its
`updatedAt`, or the SDK's clock for collections without one). donna only rewrites its
files; `scan --watch` turns that into events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dualsync.producers.publisher import Publisher

__all__ = ["LiveCounts", "donna_writes", "panamia_writes"]


@dataclass(slots=True)
class LiveCounts:
    """What the live apps did."""

    edited: int = 0
    deleted: int = 0
    appended: int = 0


def _now_ms() -> dt.datetime:
    """Now at BSON's precision (ms): what the document will hold."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def panamia_writes(db: Any, pub: Publisher, rng: random.Random, share: float) -> LiveCounts:
    """Edit `share` of users and listings, delete a few verification tokens; publish each."""
    out = LiveCounts()
    for coll in ("users", "listings"):
        ids = [d["_id"] async for d in db[coll].find({}, {"_id": 1})]
        for _id in rng.sample(ids, max(1, int(len(ids) * share))):
            now = dt.datetime.now(dt.UTC).replace(
                microsecond=dt.datetime.now(dt.UTC).microsecond // 1000 * 1000
            )
            field = "name" if coll == "users" else "title"
            await db[coll].update_one(
                {"_id": _id}, {"$set": {field: f"edited {now:%H:%M:%S.%f}", "updatedAt": now}}
            )
            doc = await db[coll].find_one({"_id": _id})
            version = int(now.timestamp() * 1_000_000)
            await pub.publish(coll, str(_id), "upsert", doc, version=version)
            out.edited += 1
            await asyncio.sleep(0)
    tokens = [d["_id"] async for d in db["verification_tokens"].find({}, {"_id": 1})]
    for _id in rng.sample(tokens, max(1, len(tokens) // 100)):
        await db["verification_tokens"].delete_one({"_id": _id})
        await pub.publish("verification_tokens", str(_id), "delete")
        out.deleted += 1
    return out


async def donna_writes(root: Path, rng: random.Random, share: float) -> LiveCounts:
    """Edit `share` of user files, delete a few chats, append log lines: files only."""
    out = LiveCounts()
    memory = sorted((root / "data" / "memory").glob("*.json"))
    for path in rng.sample(memory, max(1, int(len(memory) * share))):
        doc = orjson.loads(path.read_bytes())
        doc["name"] = f"edited {dt.datetime.now(dt.UTC):%H:%M:%S.%f}"
        path.write_bytes(orjson.dumps(doc))  # PHP's file_put_contents, in place
        out.edited += 1
        await asyncio.sleep(0.001)
    chats = sorted((root / "data" / "chat_sessions").glob("*.json"))
    for path in rng.sample(chats, max(1, len(chats) // 100)):
        path.unlink()
        out.deleted += 1
    logs = sorted((root / "api" / "logs").glob("*.log"))
    with logs[-1].open("ab") as fh:
        for i in range(25):
            line = {"timestamp": dt.datetime.now(dt.UTC).isoformat(), "level": "INFO",
                    "message": f"demo request {i}", "context": {}}  # fmt: skip
            fh.write(orjson.dumps(line) + b"\n")
            out.appended += 1
    return out
