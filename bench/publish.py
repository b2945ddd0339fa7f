"""Publisher throughput vs a raw pipelined XADD loop of the same bytes, in the same run.

    python -m bench.publish [--events N] [--chunk N]

Both sides send the same number of ~500-byte events in pipelines of `--chunk`; the
baseline replays pre-built stream fields (no encoding, no versions, no routing), so the
ratio is what the SDK's per-event work costs on top of the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import string

import redis.asyncio as aredis

from bench._common import best_of, now, record, redis_url
from dualsync.producers import EventSpec, Publisher


def _docs(n: int, seed: int = 1) -> list[EventSpec]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        doc = {
            "email": f"user{i}@example.com",
            "name": "".join(rng.choices(string.ascii_letters, k=24)),
            "bio": "".join(rng.choices(string.ascii_letters + " ", k=260)),
            "settings": {"theme": "dark", "lang": "pt-BR", "tags": ["a", "b", "c"]},
            "score": rng.random(),
            "visits": rng.randrange(10**6),
        }
        out.append(EventSpec("users", f"u{rng.randrange(n // 4 + 1)}", payload=doc))
    return out


async def run(events: int, chunk: int, rounds: int) -> dict[str, float]:
    """Measure and return events/s and the ratio to raw."""
    specs = _docs(events)
    with redis_url() as url:
        client = aredis.Redis.from_url(url)
        pub = Publisher(client, source="bench", prefix="bench", shards=4)
        built = [pub.builder.build(s) for s in specs]

        async def sdk() -> float:
            await client.flushdb()
            t0 = now()
            for i in range(0, events, chunk):
                await pub.publish_many(specs[i : i + chunk])
            return now() - t0

        async def raw() -> float:
            await client.flushdb()
            t0 = now()
            for i in range(0, events, chunk):
                async with client.pipeline(transaction=False) as pipe:
                    for b in built[i : i + chunk]:
                        pipe.xadd(b.stream, b.fields)
                    await pipe.execute()
            return now() - t0

        await raw()  # warm up connections and the allocator
        t_raw = await best_of(rounds, raw)
        t_sdk = await best_of(rounds, sdk)
        await client.flushdb()
        await pub.aclose()
        await client.aclose()
    result = {
        "events": events,
        "events_per_s": round(events / t_sdk),
        "raw_events_per_s": round(events / t_raw),
        "ratio_to_raw": round(t_raw / t_sdk, 3),
        "payload_bytes": len(built[0].fields["payload"]),
    }
    print(
        f"publish_many: {result['events_per_s']:,} events/s; raw pipelined XADD: "
        f"{result['raw_events_per_s']:,} events/s; ratio {result['ratio_to_raw']:.2f} "
        f"(target >= 0.70); payload {result['payload_bytes']} B"
    )
    return result


def main() -> None:
    """CLI entry: run and record under `publish`."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    record("publish", asyncio.run(run(args.events, args.chunk, args.rounds)))


if __name__ == "__main__":
    main()
