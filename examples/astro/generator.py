"""Realistic legacy MongoDB documents of the astro app, deterministic from a seed.

The assumed legacy shape (camelCase Mongoose documents; `_id` ObjectIds; BSON dates,
millisecond precision, UTC; unknown extra fields such as `__v`, `locale`, `reversed`
that the new schema drops). One collection per entity; two plan tables are embedded
arrays of a parent document:

    prompts       {_id, type: daily|weekly, text, locale, createdAt}
    feed_items    {_id, type, title, body, tags: [str], source: human|ai, createdAt, expiresAt}
    users         {_id, email?, timezone, persona?: {name, style?}, diaryCadence, settings: {...},
                   savedFeed?: [{_id, feedId, savedAt}],           -> feed_saves
                   createdAt, updatedAt, __v}
    charts        {_id, userId, birth: {date: Date at 00:00Z, time?: "HH:MM", timePrecision,
                   location?}, signs: {sun, moon?, rising?}, raw?: {engine, planets: [...],
                   computedAt}, createdAt}
    relationships {_id, userId, label, type, personName, chartId?, sunSign?, createdAt}
    chat_threads  {_id, userId, title?, memoryEnabled, summary?, createdAt, updatedAt,
                   messages: [{_id, userId, role: user|assistant, content, createdAt}]}
                                                                  -> chat_messages
    diary_entries {_id, userId, title?, body, mood?, promptId?, astroTags?: {...} | [str],
                   createdAt}
    tarot_pulls   {_id, userId, cardId, reversed, spread, interpretation, createdAt}
    memories      {_id, userId, summary, source?: {threadId}, createdAt}

`?` marks fields that are sometimes null and sometimes missing altogether. References
point at ObjectIds generated earlier in the same run, and parents are yielded before the
documents that reference them, so foreign keys hold when loaded in order.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from bson import ObjectId

from examples._legacy import LegacyDoc, ObjectIds, between, mongo_documents, optional
from examples.astro import _corpus as c
from examples.astro._nested import raw_chart, settings, sun_sign

__all__ = ["ENTITIES", "LegacyDoc", "generate"]

START: Final = dt.datetime(2023, 3, 1, tzinfo=dt.UTC)
END: Final = dt.datetime(2025, 9, 20, tzinfo=dt.UTC)
#: legacy collections in the order they are yielded (parents first)
ENTITIES: Final = (
    "prompts", "feed_items", "users", "charts", "relationships",
    "chat_threads", "diary_entries", "tarot_pulls", "memories",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Ref:
    oid: ObjectId
    created: dt.datetime


class _Astro:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids = ObjectIds(self.rng)
        self.prompts: list[_Ref] = []
        self.feed: list[_Ref] = []
        self.users: list[_Ref] = []
        self.charts_of: dict[int, list[ObjectId]] = {}
        self.threads: list[ObjectId] = []

    def opt(self, doc: dict[str, Any], key: str, value: Any, missing: float = 0.1) -> None:
        optional(self.rng, doc, key, value, missing)

    def owner(self, lo: dt.datetime = START) -> tuple[int, _Ref, dt.datetime]:
        """A random user, and an instant after both `lo` and the user's sign-up."""
        i = self.rng.randrange(len(self.users))
        user = self.users[i]
        return i, user, between(self.rng, max(lo, user.created), END)

    def prompt(self) -> dict[str, Any]:
        at = between(self.rng, START, END)
        oid = self.ids.mint(at)
        self.prompts.append(_Ref(oid, at))
        return {
            "_id": oid,
            "type": self.rng.choice(("daily", "weekly")),
            "text": self.rng.choice(c.PROMPTS),
            "locale": self.rng.choice(("en", "es", "ja")),
            "createdAt": at,
        }

    def feed_item(self) -> dict[str, Any]:
        r = self.rng
        at = between(r, START, END)
        until = at + dt.timedelta(hours=r.choice((24, 48, 72, 168)))
        oid = self.ids.mint(at)
        self.feed.append(_Ref(oid, at))
        return {
            "_id": oid,
            "type": r.choice(("personal", "tea", "prompt", "celebrity")),
            "title": r.choice(c.FEED_TITLES),
            "body": c.prose(r, 2, 5),
            "tags": r.sample(c.FEED_TAGS, k=r.randint(0, 4)),
            "source": r.choice(("human", "ai")),
            "createdAt": at,
            "expiresAt": until,
        }

    def user(self) -> dict[str, Any]:
        r = self.rng
        at = between(r, START, END - dt.timedelta(days=60))
        oid = self.ids.mint(at)
        index = len(self.users)
        self.users.append(_Ref(oid, at))
        doc: dict[str, Any] = {
            "_id": oid,
            "timezone": r.choice(c.TIMEZONES),
            "diaryCadence": r.choice(("daily", "weekly", "off")),
            "settings": settings(r, START, END),
            "createdAt": at,
            "__v": r.randint(0, 12),
        }
        handle = r.choice(("moonchild", "Star.Gazer", "leo_queen", "josé.garcía", "nyx"))
        self.opt(doc, "email", f"{handle}{index}@example.{r.choice(('com', 'jp', 'mx'))}")
        if r.random() < 0.7:
            persona: dict[str, str | None] = {
                "name": r.choice(c.PERSONAS),
                "style": r.choice(c.STYLES),
            }
            if r.random() < 0.2:
                persona["style"] = None
            doc["persona"] = persona
        last = at
        if r.random() < 0.9:
            saves = []
            for _ in range(r.randint(0, 5)):
                item = r.choice(self.feed)
                lo = max(at, item.created)
                saved = between(r, lo, lo + dt.timedelta(days=3))
                saves.append({"_id": self.ids.mint(saved), "feedId": item.oid, "savedAt": saved})
                last = max(last, saved)
            doc["savedFeed"] = saves
        doc["updatedAt"] = between(r, last, last + dt.timedelta(days=30))
        return doc

    def chart(self) -> dict[str, Any]:
        r = self.rng
        i, user, at = self.owner()
        oid = self.ids.mint(at)
        self.charts_of.setdefault(i, []).append(oid)
        born = dt.date(1960, 1, 1) + dt.timedelta(days=r.randrange(17_500))
        precision = r.choices(("exact", "approximate", "unknown"), (6, 3, 1))[0]
        hour, minute = r.randrange(24), r.randrange(60)
        birth: dt.datetime = dt.datetime(born.year, born.month, born.day, tzinfo=dt.UTC)
        doc: dict[str, Any] = {
            "_id": oid,
            "userId": user.oid,
            "birth": {"date": birth, "timePrecision": precision},
            "signs": {"sun": sun_sign(born)},
            "createdAt": at,
        }
        if precision != "unknown":
            doc["birth"]["time"] = f"{hour:02d}:{minute if precision == 'exact' else 0:02d}"
            doc["signs"]["rising"] = r.choice(c.SIGNS)
        self.opt(doc["birth"], "location", r.choice(c.CITIES))
        self.opt(doc["signs"], "moon", r.choice(c.SIGNS))
        self.opt(doc, "raw", raw_chart(r, at), missing=0.15)
        return doc

    def relationship(self) -> dict[str, Any]:
        r = self.rng
        i, user, at = self.owner()
        doc: dict[str, Any] = {
            "_id": self.ids.mint(at),
            "userId": user.oid,
            "label": r.choice(c.LABELS),
            "type": r.choices(
                ("boyfriend", "best_friend", "situationship", "custom"), (3, 3, 2, 1)
            )[0],
            "personName": r.choice(c.NAMES),
            "createdAt": at,
        }
        charts = self.charts_of.get(i)
        if charts and r.random() < 0.6:
            doc["chartId"] = r.choice(charts)
        else:
            self.opt(doc, "chartId", None, missing=0.5)
        self.opt(doc, "sunSign", r.choice(c.SIGNS), missing=0.2)
        return doc

    def thread(self) -> dict[str, Any]:
        r = self.rng
        _, user, at = self.owner()
        messages, t = [], at
        for j in range(r.randint(0, 8)):
            t += dt.timedelta(milliseconds=r.randint(2_000, 3_600_000))
            role = "user" if j % 2 == 0 else "assistant"
            content = c.prose(r, 1, 2 if role == "user" else 5)
            messages.append(
                {
                    "_id": self.ids.mint(t),
                    "userId": user.oid,
                    "role": role,
                    "content": content,
                    "createdAt": t,
                }
            )
        oid = self.ids.mint(at)
        self.threads.append(oid)
        doc: dict[str, Any] = {
            "_id": oid,
            "userId": user.oid,
            "memoryEnabled": r.random() < 0.8,
            "messages": messages,
            "createdAt": at,
            "updatedAt": t,
        }
        self.opt(doc, "title", r.choice(c.FEED_TITLES), missing=0.15)
        self.opt(doc, "summary", c.prose(r) if len(messages) > 3 else None, missing=0.3)
        return doc

    def diary_entry(self) -> dict[str, Any]:
        r = self.rng
        prompt = r.choice(self.prompts) if r.random() < 0.5 else None
        _, user, at = self.owner(prompt.created if prompt else START)
        doc: dict[str, Any] = {
            "_id": self.ids.mint(at),
            "userId": user.oid,
            "body": c.prose(r, 1, 6),
            "createdAt": at,
        }
        self.opt(doc, "title", r.choice(c.PROMPTS)[:40], missing=0.2)
        self.opt(doc, "mood", r.choice(c.MOODS))
        self.opt(
            doc, "promptId", prompt.oid if prompt else None, missing=0.5 if prompt is None else 0
        )
        roll = r.random()
        if roll < 0.4:
            aspect = r.choice(("trine", "square", "conjunct"))
            transits = [f"{r.choice(c.PLANETS)} {aspect} {r.choice(c.PLANETS)}"]
            moon = r.choice(("new", "waxing gibbous", "full"))
            doc["astroTags"] = {"moonPhase": moon, "transits": transits}
        elif roll < 0.6:
            doc["astroTags"] = r.sample(c.FEED_TAGS, k=2)
        elif roll < 0.8:
            doc["astroTags"] = None
        return doc

    def tarot_pull(self) -> dict[str, Any]:
        r = self.rng
        _, user, at = self.owner()
        return {
            "_id": self.ids.mint(at),
            "userId": user.oid,
            "cardId": r.choice(c.CARDS),
            "reversed": r.random() < 0.3,
            "spread": r.choice(("daily", "three-card", "celtic-cross")),
            "interpretation": c.prose(r, 2, 4),
            "createdAt": at,
        }

    def memory(self) -> dict[str, Any]:
        r = self.rng
        _, user, at = self.owner()
        doc: dict[str, Any] = {
            "_id": self.ids.mint(at),
            "userId": user.oid,
            "summary": c.prose(r, 1, 3),
            "createdAt": at,
        }
        if r.random() < 0.5:
            doc["source"] = {"kind": "chat", "threadId": r.choice(self.threads)}
        return doc

    def builders(self) -> dict[str, Callable[[], dict[str, Any]]]:
        return {
            "prompts": self.prompt,
            "feed_items": self.feed_item,
            "users": self.user,
            "charts": self.chart,
            "relationships": self.relationship,
            "chat_threads": self.thread,
            "diary_entries": self.diary_entry,
            "tarot_pulls": self.tarot_pull,
            "memories": self.memory,
        }


def generate(n_per_entity: int, seed: int = 0) -> Iterator[LegacyDoc]:
    """`n_per_entity` documents of every legacy collection, parents first, from `seed`."""
    yield from mongo_documents(ENTITIES, _Astro(seed).builders(), n_per_entity)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from examples._stores import generator_main

    sys.exit(generator_main(Path(__file__).parent, generate, None))
