"""Realistic legacy JSON records of DovvyBuddy, deterministic from a seed.

The assumed legacy shape: a Next.js app that kept its curated content as JSON files in
the repository and its runtime state as JSON documents in a file store. Plain JSON, so
every instant is a JavaScript `toISOString()` string (millisecond precision, `Z`), not a
BSON date, and every id is a string the app chose, not an ObjectId:

    destinations        content/destinations/<slug>.json
                        {id: slug, name, country, region?, isActive, highlights: [str],
                         bestMonths: [int], createdAt, updatedAt}
    dive_sites          content/destinations/<slug>/sites/<site>.json, id "<slug>/<site>"
                        {id, destinationId: slug, name, description?, minCertificationLevel?,
                         minLoggedDives?, difficultyBand?, accessType?, isActive,
                         depthRange?: {min, max}, marineLife: [str], createdAt, updatedAt}
    content_embeddings  content/.embeddings/*.json, one record per chunk, id "<path>#<n>"
                        {id, contentPath, text, embedding: [1536 floats],
                         metadata?: {section, tags: [str], source, chunkIndex, tokenCount},
                         createdAt (the ingestion run)}
    sessions            .data/sessions/<uuid>.json, id from crypto.randomUUID()
                        {id, locale, diverProfile?: {agency, level?, diveCount, ...},
                         conversationHistory: [{role, message, timestamp, sources?: [path]}],
                         createdAt, updatedAt, expiresAt (last activity + 24 h)}
    leads               .data/leads/<nanoid>.json
                        {id, type: training|trip, diverProfile?: {...}, sessionId?,
                         requestDetails: {name, email, phone?, ...per type...}, createdAt}

`?` marks fields sometimes null and sometimes missing altogether. `isActive`, `createdAt`
and `expiresAt` are always written by the legacy app (dualsync maps a missing field to
NULL, never to the column default). Embeddings are unit vectors of float32 values (what a
text-embedding API returns), clustered by content topic (the page's top folder) so that
nearest-neighbour search has something true to find.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import unicodedata
import uuid
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from examples._legacy import LegacyDoc, between, micros, optional
from examples.dovvy import _corpus as c

__all__ = ["DIM", "ENTITIES", "LegacyDoc", "generate"]

START: Final = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
END: Final = dt.datetime(2025, 12, 20, tzinfo=dt.UTC)
#: legacy record kinds in the order they are yielded (parents first)
ENTITIES: Final = ("destinations", "dive_sites", "content_embeddings", "sessions", "leads")
#: dimensions of the embedding model (Gemini text-embedding-004, per the plan)
DIM: Final = 1536
_BANDS: Final = ("beginner", "intermediate", "advanced")
_NANOID: Final = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict"
_SOURCES: Final = ("padi.com", "ssi.com", "dan.org", "internal")


def _iso(at: dt.datetime) -> str:
    """`Date.prototype.toISOString()`: UTC, milliseconds, `Z`."""
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


@dataclass(frozen=True, slots=True)
class _Destination:
    slug: str
    place: int
    created: dt.datetime


class _Dovvy:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.destinations: list[_Destination] = []
        self.sessions: list[str] = []
        self.taken: dict[str, int] = {}
        self.chunks_of: dict[str, int] = {}
        self.centroids: dict[str, list[float]] = {}

    def opt(self, doc: dict[str, Any], key: str, value: Any, missing: float = 0.1) -> None:
        optional(self.rng, doc, key, value, missing)

    def unique(self, base: str) -> str:
        """`base`, or `base-2`, `base-3`... when an earlier file already took the name."""
        n = self.taken.get(base, 0) + 1
        self.taken[base] = n
        return base if n == 1 else f"{base}-{n}"

    def embedding(self, topic: str) -> list[float]:
        """A unit vector near its topic's centroid, in float32 precision."""
        r = self.rng
        centre = self.centroids.get(topic)
        if centre is None:
            centre = self.centroids[topic] = [r.random() - 0.5 for _ in range(DIM)]
        v = [x + r.random() - 0.5 for x in centre]
        norm = math.hypot(*v)
        return array("f", [x / norm for x in v]).tolist()

    def destination(self) -> tuple[dict[str, Any], dt.datetime]:
        r = self.rng
        place = r.randrange(len(c.DESTINATIONS))
        slug, name, country, region, _ = c.DESTINATIONS[place]
        at = between(r, START, END - dt.timedelta(days=120))
        updated = between(r, at, END)
        doc: dict[str, Any] = {"id": self.unique(slug), "name": name, "country": country}
        self.opt(doc, "region", region)
        doc |= {
            "isActive": r.random() < 0.9,
            "highlights": r.sample(c.MARINE_LIFE, k=r.randint(0, 4)),
            "bestMonths": sorted(r.sample(range(1, 13), k=r.randint(3, 7))),
            "createdAt": _iso(at),
            "updatedAt": _iso(updated),
        }
        self.destinations.append(_Destination(doc["id"], place, at))
        return doc, updated

    def dive_site(self) -> tuple[dict[str, Any], dt.datetime]:
        r = self.rng
        dest = r.choice(self.destinations)
        name = r.choice(c.DESTINATIONS[dest.place][4])
        at = between(r, dest.created, END - dt.timedelta(days=30))
        updated = between(r, at, END)
        level = r.randrange(len(c.LEVELS))
        doc: dict[str, Any] = {
            "id": self.unique(f"{dest.slug}/{_slug(name)}"),
            "destinationId": dest.slug,
            "name": name,
        }
        self.opt(doc, "description", c.blurb(r), missing=0.15)
        self.opt(doc, "minCertificationLevel", c.LEVELS[level])
        self.opt(doc, "minLoggedDives", r.choice((0, 10, 20, 30, 50, 100)), missing=0.2)
        band = min(2, max(0, level + r.choice((-1, 0, 0, 1))))
        self.opt(doc, "difficultyBand", _BANDS[band])
        self.opt(doc, "accessType", r.choice(("shore", "boat", "boat")))
        doc["isActive"] = r.random() < 0.92
        if r.random() < 0.8:
            shallow = r.choice((3, 5, 8, 12, 18))
            doc["depthRange"] = {"min": shallow, "max": shallow + r.choice((7, 12, 22, 30))}
        doc |= {
            "marineLife": r.sample(c.MARINE_LIFE, k=r.randint(0, 5)),
            "createdAt": _iso(at),
            "updatedAt": _iso(updated),
        }
        return doc, updated

    def content_chunk(self) -> tuple[dict[str, Any], dt.datetime]:
        r = self.rng
        path = r.choice(c.CONTENT)
        topic = path.split("/", 1)[0]
        index = self.chunks_of.get(path, 0)
        self.chunks_of[path] = index + 1
        at = between(r, START, END)
        text = c.chunk(r, topic)
        doc: dict[str, Any] = {
            "id": f"{path}#{index}",
            "contentPath": path,
            "text": text,
            "embedding": self.embedding(topic),
        }
        metadata = {
            "section": r.choice(c.SECTIONS),
            "tags": [topic, *r.sample(c.INTERESTS, k=r.randint(0, 2))],
            "source": r.choice(_SOURCES),
            "chunkIndex": index,
            "tokenCount": len(text.split()) * 4 // 3,
        }
        # Chunks from the first ingestion runs carry no metadata (null or absent).
        self.opt(doc, "metadata", metadata, missing=0.05)
        doc["createdAt"] = _iso(at)
        return doc, at

    def profile(self) -> dict[str, Any]:
        r = self.rng
        out: dict[str, Any] = {"agency": r.choice(c.AGENCIES), "diveCount": r.randint(0, 400)}
        self.opt(out, "level", r.choice((*c.LEVELS, "Divemaster")))
        if r.random() < 0.5:
            out["lastDiveAt"] = _iso(between(r, START - dt.timedelta(days=900), START))
        out["interests"] = r.sample(c.INTERESTS, k=r.randint(0, 3))
        return out

    def session(self) -> tuple[dict[str, Any], dt.datetime]:
        r = self.rng
        sid = str(uuid.UUID(int=r.getrandbits(128), version=4))
        at = between(r, START, END - dt.timedelta(days=1))
        history, t = [], at
        for j in range(r.randint(0, 10)):
            t += dt.timedelta(milliseconds=r.randint(3_000, 600_000))
            user = j % 2 == 0
            msg: dict[str, Any] = {
                "role": "user" if user else "assistant",
                "message": r.choice(c.QUESTIONS if user else c.ANSWERS),
                "timestamp": _iso(t),
            }
            if not user and r.random() < 0.5:
                msg["sources"] = r.sample(c.CONTENT, k=r.randint(1, 3))
            history.append(msg)
        doc: dict[str, Any] = {
            "id": sid,
            "locale": r.choice(("en-US", "es-MX", "ja-JP", "ko-KR", "pt-BR")),
        }
        self.opt(doc, "diverProfile", self.profile(), missing=0.2)
        doc |= {
            "conversationHistory": history,
            "createdAt": _iso(at),
            "updatedAt": _iso(t),
            "expiresAt": _iso(t + dt.timedelta(hours=24)),
        }
        self.sessions.append(sid)
        return doc, t

    def request(self, kind: str, at: dt.datetime) -> dict[str, Any]:
        r = self.rng
        name = r.choice(c.NAMES)
        domain = r.choice(("gmail.com", "icloud.com", "yahoo.co.jp", "hotmail.es"))
        email = f"{r.choice(c.HANDLES)}{r.randrange(10_000)}@{domain}"
        out: dict[str, Any] = {"name": name, "email": email}
        self.opt(out, "phone", f"+{r.choice((1, 34, 44, 52, 81, 82))} {r.randrange(10**9):09d}")
        start = (at + dt.timedelta(days=r.randint(14, 200))).date()
        dest = r.choice(self.destinations).slug
        if kind == "training":
            out |= {"course": r.choice(c.COURSES), "agency": r.choice(c.AGENCIES[:3])}
            out["preferredStart"] = start.strftime("%Y-%m")
            self.opt(out, "destination", dest, missing=0.3)
        else:
            end = start + dt.timedelta(days=r.choice((4, 7, 10, 14)))
            out |= {
                "destination": dest,
                "dates": {"from": start.isoformat(), "to": end.isoformat()},
                "divers": r.randint(1, 6),
                "interests": r.sample(c.INTERESTS, k=r.randint(1, 4)),
            }
            self.opt(out, "budgetUsd", r.choice((1500, 2500, 4000, 8000)), missing=0.3)
        self.opt(out, "message", r.choice(c.QUESTIONS), missing=0.3)
        return out

    def lead(self) -> tuple[dict[str, Any], dt.datetime]:
        r = self.rng
        kind = r.choice(("training", "trip"))
        at = between(r, START, END)
        doc: dict[str, Any] = {"id": "".join(r.choices(_NANOID, k=21)), "type": kind}
        # Someone asking about their first course has no diver profile yet.
        self.opt(doc, "diverProfile", self.profile(), missing=0.3 if kind == "training" else 0.05)
        doc["requestDetails"] = self.request(kind, at)
        if self.sessions and r.random() < 0.7:
            doc["sessionId"] = r.choice(self.sessions)
        doc["createdAt"] = _iso(at)
        return doc, at

    def builders(self) -> dict[str, Callable[[], tuple[dict[str, Any], dt.datetime]]]:
        return {
            "destinations": self.destination,
            "dive_sites": self.dive_site,
            "content_embeddings": self.content_chunk,
            "sessions": self.session,
            "leads": self.lead,
        }


def generate(n_per_entity: int, seed: int = 0) -> Iterator[LegacyDoc]:
    """`n_per_entity` records of every legacy kind, parents first, from `seed`.

    The version is the record's last write (`updatedAt`, else `createdAt`) in µs, the
    same number the mapping's `version_field` derives from the ISO string.
    """
    state = _Dovvy(seed)
    builders = state.builders()
    for entity in ENTITIES:
        make = builders[entity]
        for _ in range(n_per_entity):
            doc, written = make()
            yield LegacyDoc(entity, doc["id"], micros(written), doc)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from examples._stores import generator_main

    sys.exit(generator_main(Path(__file__).parent, generate, None))
