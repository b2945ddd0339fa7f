"""Buckets and digests of the full sweep: where a key goes, and what a bucket adds up to.

A key's bucket is the first 32 bits of md5(canonical key) modulo the bucket count, not a
range of keys: the legacy store's order (Mongo `_id`, file names, file then line) and
Postgres' collation disagree, and a hash needs no agreement. md5 rather than blake2b
because Postgres computes it natively (`bucket_sql`), so the target side can be filtered to
a set of buckets on the server; it only spreads keys, nothing relies on it being secret.

A bucket's digest is the sum mod 2**128 of blake2b-128(key, record fingerprint) over its
records, with a separate count. A sum does not depend on the order records arrive in, and
unlike XOR a record seen twice does not cancel out. The fingerprint is the Canonicalizer's
keyed one, so a digest says nothing about values, even for a bucket of one record.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from array import array
from collections.abc import Iterable
from typing import Final

from psycopg import sql

__all__ = ["REFUSED", "Digests", "bucket_of", "bucket_sql", "contribution"]

MASK: Final = (1 << 128) - 1
#: the fingerprint of a legacy document the mapping refuses (it can never equal a row's)
REFUSED: Final = "!refused"


def bucket_sql(buckets: int) -> sql.Composed:
    """`bucket_of(key, buckets)` as a Postgres expression over a text column `key`."""
    return sql.SQL(
        "(('x' || left(md5(convert_to(key, 'UTF8')), 8))::bit(32)::bigint %% {})"
    ).format(sql.Literal(buckets))


def bucket_of(key: str, buckets: int) -> int:
    """The bucket of a canonical key."""
    h = hashlib.md5(key.encode(), usedforsecurity=False).digest()
    return int.from_bytes(h[:4], "big") % buckets


def contribution(key: str, fingerprint: str) -> int:
    """What one record adds to its bucket's sum."""
    h = hashlib.blake2b(f"{key}\x00{fingerprint}".encode(), digest_size=16).digest()
    return int.from_bytes(h, "big")


class Digests:
    """One side's digest and count per bucket: O(buckets) memory, whatever the row count."""

    __slots__ = ("counts", "sums")

    def __init__(self, buckets: int) -> None:
        self.sums: list[int] = [0] * buckets
        self.counts = array("Q", bytes(8 * buckets))

    def add(self, items: Iterable[tuple[int, int]]) -> None:
        """Add (bucket, contribution) pairs; nothing in here can raise half-way."""
        sums, counts = self.sums, self.counts
        for b, h in items:
            sums[b] = (sums[b] + h) & MASK
            counts[b] += 1

    def differing(self, other: Digests) -> list[int]:
        """Buckets whose sum or count is not the same on both sides, in bucket order."""
        return [
            b
            for b, (s, c) in enumerate(zip(self.sums, self.counts, strict=True))
            if s != other.sums[b] or c != other.counts[b]
        ]

    def total(self, only: Iterable[int] | None = None) -> int:
        """Records in every bucket, or in `only`."""
        if only is None:
            return sum(self.counts)
        return sum(self.counts[b] for b in only)

    def dump(self) -> dict[str, str]:
        """A JSON-safe form (base64 of the big-endian sums and the counts)."""
        sums = b"".join(s.to_bytes(16, "big") for s in self.sums)
        counts = array("Q", self.counts)
        if sys.byteorder == "little":
            counts.byteswap()
        return {
            "sums": base64.b64encode(sums).decode(),
            "counts": base64.b64encode(counts.tobytes()).decode(),
        }

    @classmethod
    def load(cls, data: dict[str, str], buckets: int) -> Digests:
        """The inverse of `dump`; ValueError when the data does not have `buckets` buckets."""
        sums = base64.b64decode(data["sums"])
        raw = base64.b64decode(data["counts"])
        if len(sums) != 16 * buckets or len(raw) != 8 * buckets:
            raise ValueError(f"checkpoint digests are not of {buckets} buckets")
        out = cls(buckets)
        out.sums = [int.from_bytes(sums[i : i + 16], "big") for i in range(0, len(sums), 16)]
        counts = array("Q")
        counts.frombytes(raw)
        if sys.byteorder == "little":
            counts.byteswap()
        out.counts = counts
        return out
