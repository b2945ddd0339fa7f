"""Realistic records of Tzurot's JSON files, deterministic from a seed.

Tzurot (a Node.js Discord bot) keeps its state in a few big JSON objects under `data/`,
each rewritten whole with `JSON.stringify` on every change. The producer diff-scans
them and publishes one event per changed record, so one record is one `LegacyDoc`:

    personalities.json       {fullName: {fullName, addedBy, addedAt, displayName,
                              avatarUrl?, errorMessage?, activatedChannels?}}
    aliases.json             {alias: fullName}                 -> payload {value: fullName}
    auth_tokens.json         {userId: {personalityName: {token, createdAt, expiresAt?,
                              lastUsed?}}}                     -> key "userId:personalityName"
    nsfw_verified.json       {userId: {verified, timestamp, verifiedAt, verifiedBy?}}
    conversations.json       {"userId-channelId": {id, userId, channelId, personalityName,
                              messageIds, timestamp, isDM, isMentionOnly,
                              startedAt?, messageCount?}}      -> key str(id)
    channel_activations.json {channelId: {personalityName, activatedBy, timestamp}}

How the bot writes them (see `_shapes`): ids are snowflake strings; `addedAt` and
`lastUsed` are ISO strings, every other instant `Date.now()` milliseconds (and the
bot's first version wrote `addedAt` as milliseconds too). `?` marks fields sometimes
null and sometimes missing: a failed profile fetch leaves `avatarUrl` unset; tokens
stored before expiry tracking lack `expiresAt`; an unverified user has
`verifiedAt: null`. The Phase 2 persistence layer (the plan's dual-write) added
`verifiedBy`, and gave every conversation an integer `id` from a counter it never
reuses, with `startedAt` and `messageCount`; records it numbered at its first start
predate those two fields.

Aliases, activations, tokens and conversations name personalities generated earlier
in the same run, and personalities are yielded first, so foreign keys hold in order.
A doc's `version` is the instant of its write in µs: what the Node publisher's hybrid
logical clock stamps, since JSON files keep no version of their own.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from examples._legacy import LegacyDoc, between, micros, optional
from examples.tzurot import _corpus as c
from examples.tzurot._shapes import Snowflakes, epoch_ms, iso

__all__ = ["ENTITIES", "SEPARATOR", "LegacyDoc", "generate"]

START: Final = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
END: Final = dt.datetime(2025, 6, 20, tzinfo=dt.UTC)
#: the Phase 2 deploy: records written before it lack the fields it added
PHASE2: Final = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)
#: Discord's public launch: the oldest account and channel snowflakes
_LAUNCH: Final = dt.datetime(2015, 5, 13, tzinfo=dt.UTC)
#: the bot's token lifetime (UserTokenManager: 30 days)
TOKEN_LIFETIME: Final = dt.timedelta(days=30)
#: joins the two levels of auth_tokens.json into one key; snowflakes are digits and
#: personality names ASCII letters, digits, spaces, `-`, `_`, `.`: neither holds a colon
SEPARATOR: Final = ":"
#: legacy files, as entities, in the order they are yielded (personalities first)
ENTITIES: Final = (
    "personalities", "personality_aliases", "auth_tokens", "nsfw_verifications",
    "conversations", "channel_activations",
)  # fmt: skip

#: (legacy key, record, instant of the write)
_Record = tuple[str, dict[str, Any], dt.datetime]


@dataclass(frozen=True, slots=True)
class _Personality:
    name: str
    stem: str
    display: str
    added: dt.datetime


class _Tzurot:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.flakes = Snowflakes(self.rng)
        self.owner = self.flakes.mint(between(self.rng, _LAUNCH, _LAUNCH + dt.timedelta(days=90)))
        self.users: list[str] = [self.owner]
        self.channels: list[str] = []
        self.dm_channels: dict[str, str] = {}
        self.personalities: list[_Personality] = []
        #: keys already used, per legacy file
        self.taken: defaultdict[str, set[str]] = defaultdict(set)
        self.conversation_id = 0

    def opt(self, doc: dict[str, Any], key: str, value: Any, missing: float = 0.1) -> None:
        optional(self.rng, doc, key, value, missing)

    def account(self, fresh: float) -> str:
        """A Discord user: a new account (probability `fresh`) or one seen before."""
        if self.rng.random() < fresh:
            self.users.append(self.flakes.mint(between(self.rng, _LAUNCH, START)))
            return self.users[-1]
        return self.rng.choice(self.users)

    def channel(self, fresh: float) -> str:
        """A guild text channel: a new one (probability `fresh`) or one seen before."""
        if not self.channels or self.rng.random() < fresh:
            self.channels.append(self.flakes.mint(between(self.rng, _LAUNCH, START)))
            return self.channels[-1]
        return self.rng.choice(self.channels)

    def claim(self, file: str, make: Callable[[], str]) -> str:
        """A key of `make` that `file` does not hold yet (JSON object keys are unique)."""
        while (key := make()) in self.taken[file]:
            pass
        self.taken[file].add(key)
        return key

    def full_name(self, stem: str) -> str:
        suffix = self.rng.choice(c.SUFFIXES)
        tag = self.rng.randbytes(2).hex() if self.rng.random() < 0.7 else ""
        return "-".join(p for p in (stem, suffix, tag) if p)

    def personality(self) -> _Record:
        r = self.rng
        stem, display = r.choice(c.PERSONAS)
        name = self.claim("personalities", lambda: self.full_name(stem))
        at = between(r, START, END - dt.timedelta(days=7))
        added_by = self.owner if r.random() < 0.45 else self.account(fresh=0.6)
        doc: dict[str, Any] = {
            "fullName": name,
            "addedBy": added_by,
            "addedAt": iso(at) if r.random() < 0.9 else epoch_ms(at),
        }
        if r.random() < 0.9:  # the profile service answered
            doc["displayName"] = display
            url = c.avatar_url(r, self.channel(0.2), self.flakes.mint(at), stem)
            self.opt(doc, "avatarUrl", url, missing=0.08)
        else:  # it did not: the bot falls back to the full name and sets no avatar
            doc["displayName"] = name
        if r.random() < 0.25:
            doc["errorMessage"] = r.choice(c.ERROR_MESSAGES)
        if r.random() < 0.1:  # a field of the bot's first version, still in old records
            channels = [self.channel(0.5) for _ in range(r.randint(0, 2))]
            doc["activatedChannels"] = list(dict.fromkeys(channels))
        self.personalities.append(_Personality(name, stem, doc["displayName"], at))
        return name, doc, at

    def alias(self) -> _Record:
        r = self.rng
        p = r.choice(self.personalities)
        forms = (p.display.lower(), p.stem, p.display.split()[0].lower(), p.name.replace("-", " "))
        alias = r.choice(forms)
        while alias in self.taken["aliases"] or alias == p.name:
            # The bot's collision fallback: the alias plus six random lowercase letters.
            alias = f"{r.choice(forms)}-{''.join(r.choices(string.ascii_lowercase, k=6))}"
        self.taken["aliases"].add(alias)
        return alias, {"value": p.name}, between(r, p.added, END)

    def auth_token(self) -> _Record:
        r = self.rng
        while True:  # one token per (user, personality): the file's two object levels
            user, p = self.account(fresh=0.5), r.choice(self.personalities)
            key = f"{user}{SEPARATOR}{p.name}"
            if key not in self.taken["auth_tokens"]:
                break
        self.taken["auth_tokens"].add(key)
        created = between(r, p.added, END)
        doc: dict[str, Any] = {"token": c.token(r), "createdAt": epoch_ms(created)}
        if r.random() < 0.9:  # tokens stored before expiry tracking have no expiresAt
            doc["expiresAt"] = epoch_ms(created + TOKEN_LIFETIME)
        used = between(r, created, END)
        self.opt(doc, "lastUsed", iso(used), missing=0.15)
        return key, doc, used if doc.get("lastUsed") else created

    def nsfw_verification(self) -> _Record:
        r = self.rng
        user = self.claim("nsfw_verified", lambda: self.account(fresh=0.7))
        at = between(r, START, END)
        verified = r.random() < 0.93
        doc: dict[str, Any] = {
            "verified": verified,
            "timestamp": epoch_ms(at),
            "verifiedAt": epoch_ms(at) if verified else None,
        }
        if at >= PHASE2:  # self-verified with the `verify` command, or by the bot owner
            by = (user if r.random() < 0.85 else self.owner) if verified else None
            doc["verifiedBy"] = by
        return user, doc, at

    def conversation(self) -> _Record:
        r = self.rng
        self.conversation_id += r.choice((1, 1, 1, 2, 3, 7))  # gaps: ended conversations
        p = r.choice(self.personalities)
        is_dm = r.random() < 0.3

        def make() -> str:
            user = self.account(fresh=0.4)
            if is_dm:
                dm = self.dm_channels.get(user) or self.flakes.mint(between(r, _LAUNCH, START))
                self.dm_channels[user] = dm
                return f"{user}-{dm}"
            return f"{user}-{self.channel(fresh=0.3)}"

        user, channel = self.claim("conversations", make).split("-")
        started = between(r, max(START, p.added), END - dt.timedelta(hours=2))
        last = between(r, started, started + dt.timedelta(hours=2 if is_dm else 1))
        chunks = r.choices((1, 2, 3), (8, 2, 1))[0]  # a long reply is split in chunks
        doc: dict[str, Any] = {
            "id": self.conversation_id,
            "userId": user,
            "channelId": channel,
            "personalityName": p.name,
            "messageIds": [self.flakes.mint(last) for _ in range(chunks)],
            "timestamp": epoch_ms(last),
            "isDM": is_dm,
            "isMentionOnly": not is_dm and r.random() < 0.4,
        }
        if started >= PHASE2:
            doc["startedAt"] = epoch_ms(started)
            doc["messageCount"] = r.randint(1, 80)
        return str(self.conversation_id), doc, last

    def activation(self) -> _Record:
        r = self.rng
        channel = self.claim("channel_activations", lambda: self.channel(fresh=0.8))
        p = r.choice(self.personalities)
        at = between(r, max(START, p.added), END)
        doc = {
            "personalityName": p.name,
            "activatedBy": self.account(fresh=0.3),
            "timestamp": epoch_ms(at),
        }
        return channel, doc, at

    def builders(self) -> dict[str, Callable[[], _Record]]:
        return {
            "personalities": self.personality,
            "personality_aliases": self.alias,
            "auth_tokens": self.auth_token,
            "nsfw_verifications": self.nsfw_verification,
            "conversations": self.conversation,
            "channel_activations": self.activation,
        }


#: conversations.json files a record under "<userId>-<channelId>"; its key is its `id`
FILE_KEYS: Final = {"conversations": lambda doc: f"{doc['userId']}-{doc['channelId']}"}


def generate(n_per_entity: int, seed: int = 0) -> Iterator[LegacyDoc]:
    """`n_per_entity` records of every legacy file, personalities first, from `seed`."""
    state = _Tzurot(seed)
    builders = state.builders()
    for entity in ENTITIES:
        make = builders[entity]
        for _ in range(n_per_entity):
            key, doc, at = make()
            yield LegacyDoc(entity, key, micros(at), doc)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from examples._stores import generator_main

    sys.exit(generator_main(Path(__file__).parent, generate, None, FILE_KEYS))
