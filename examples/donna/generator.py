"""Realistic legacy JSON files of Donna, a PHP assistant, deterministic from a seed.

The assumed legacy layout (plan 002, "Current Data Structures"), as PHP's `json_encode`
writes it; the legacy key of each file is its name:

    /data/memory/<clerk_id>.json          one per user  -> users (+ user_memory)
        {clerk_id, email?, name?, profile?: {...}|[], preferences?: {...}|[], status?,
         created_at, updated_at, last_active_at?, api_token?,
         memories?: [{type, key, value: any JSON, created_at, updated_at, expires_at?}]}
    /data/chat_sessions/<chat_id>.json    one per chat  -> chat_sessions (+ messages)
        {chat_id, user_id?: clerk id, title?, profile?, metadata?: {...}|[],
         created_at, updated_at, last_message_at?, message_count?, status?,
         messages: [{role: user|assistant|system, content, timestamp, metadata?: {...}|[],
                     token_count?, abuse_flagged?: bool | 0 | 1}]}
    /api/logs/donna-YYYY-MM-DD.log        JSON lines    -> system_logs, key "<file>:<line>"
        {timestamp, level, message, context?: {...}|[], trace_id?, ip?, user_agent?,
         request_uri?}

`?` marks fields that may be absent (older files, anonymous chats, CLI log lines); most
of them are also sometimes null, and nested objects hold nulls too. Ids are PHP's: Clerk
user ids (`user_2...`), `uniqid('chat_')` chat ids, `uniqid('req_')` trace ids. Dates are
PHP strings in three shapes (see `_php`); `time()` integers occur only inside jsonb.
Memory entries are a list with one entry per (type, key), as `setUserMemory` upserts
them; a chat's `user_id` names a user generated earlier, so foreign keys hold when
files are loaded in order. `message_count`, when present, equals the messages' count.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from examples._legacy import LegacyDoc, Unique, between, micros, optional
from examples.donna import _corpus as c
from examples.donna._nested import (
    memories,
    message_metadata,
    preferences,
    profile,
    session_metadata,
)
from examples.donna._php import atom, clerk_user_id, rfc3339_ms, token, uniqid, ymd_his

__all__ = ["ENTITIES", "LegacyDoc", "generate"]

START: Final = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
END: Final = dt.datetime(2025, 9, 30, tzinfo=dt.UTC)
#: the deploy after which user files got `created_at` as DATE_ATOM instead of 'Y-m-d H:i:s'
ATOM_SINCE: Final = dt.datetime(2024, 11, 4, tzinfo=dt.UTC)
#: legacy file kinds in the order they are yielded (parents first)
ENTITIES: Final = ("users", "chat_sessions", "system_logs")
#: PHP's mb_substr length of a title taken from the first user message
_TITLE_CHARS: Final = 50
_LEVELS: Final = ("DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _User:
    clerk_id: str
    created: dt.datetime
    #: minutes east of UTC of the user's timezone (messages are stamped in it)
    offset: int


def _seconds(at: dt.datetime) -> dt.datetime:
    """What a second-resolution PHP stamp keeps of an instant."""
    return at.replace(microsecond=0)


class _Donna:
    def __init__(self, seed: int, n_logs: int) -> None:
        self.rng = random.Random(seed)
        self.users: list[_User] = []
        self.chats: list[tuple[str, dt.datetime]] = []
        #: values already taken: legacy keys, unique columns
        self.unique = Unique()
        # Log lines are appended in time order over the app's life: draw the instants up front.
        self.log_times = iter(sorted(between(self.rng, START, END) for _ in range(n_logs)))
        self.log_lines: dict[str, int] = {}

    def opt(self, doc: dict[str, Any], key: str, value: Any, missing: float = 0.1) -> None:
        optional(self.rng, doc, key, value, missing)

    def user(self) -> tuple[str, int, dict[str, Any]]:
        r = self.rng
        at = between(r, START, END - dt.timedelta(days=90))
        updated = between(r, at, END)
        clerk = self.unique(lambda: clerk_user_id(r))
        tz, offset = r.choice(c.TIMEZONES)
        doc: dict[str, Any] = {
            "clerk_id": clerk,
            "created_at": ymd_his(at) if at < ATOM_SINCE else atom(at),
            "updated_at": atom(updated),
        }
        i = len(self.users)
        mail = r.choice(("gmail.com", "icloud.com", "proton.me", "outlook.fr"))
        self.opt(doc, "email", f"{r.choice(c.HANDLES)}{i}@{mail}")  # phone-only sign-ups: none
        self.opt(doc, "name", r.choice(c.NAMES))
        self.opt(doc, "profile", profile(r, tz))
        self.opt(doc, "preferences", preferences(r))
        self.opt(doc, "status", r.choices(("active", "inactive", "suspended"), (90, 8, 2))[0])
        self.opt(doc, "last_active_at", atom(between(r, at, updated), offset), missing=0.15)
        if r.random() < 0.3:
            doc["api_token"] = token(r, "dna_live_", 24)
        if r.random() < 0.9:
            doc["memories"] = memories(r, at, updated)
        self.users.append(_User(clerk, at, offset))
        return clerk, micros(_seconds(updated)), doc

    def message(self, role: str, content: str, at: dt.datetime, offset: int) -> dict[str, Any]:
        r = self.rng
        msg: dict[str, Any] = {"role": role, "content": content, "timestamp": atom(at, offset)}
        self.opt(msg, "metadata", message_metadata(r, role), missing=0.15)
        if role == "assistant":
            self.opt(msg, "token_count", r.randint(12, 900), missing=0.1)
        elif r.random() < 0.3:
            msg["token_count"] = None  # the usage API reports no count for user turns
        roll = r.random()
        if roll < 0.6:
            msg["abuse_flagged"] = role == "user" and r.random() < 0.03
        elif roll < 0.75:  # the first moderation code stored (int) $flagged
            msg["abuse_flagged"] = int(role == "user" and r.random() < 0.03)
        return msg

    def session(self) -> tuple[str, int, dict[str, Any]]:
        r = self.rng
        user = r.choice(self.users) if r.random() < 0.88 else None
        at = between(r, user.created if user else START, END - dt.timedelta(days=1))
        chat_id = self.unique(
            lambda: uniqid("chat_", at + dt.timedelta(microseconds=r.randrange(1000)))
        )
        offset = user.offset if user else 0
        messages, t = [], at
        if r.random() < 0.1:
            messages.append(self.message("system", c.SYSTEM_PROMPT, t, offset))
        for _ in range(r.choices((0, 1, 2, 4, 8, 15), (1, 3, 4, 4, 3, 1))[0]):
            question, answer = r.choice(c.TURNS)
            t += dt.timedelta(seconds=r.randint(5, 1800))
            messages.append(self.message("user", question, t, offset))
            if r.random() < 0.95:  # else the reply failed: the file ends with the question
                t += dt.timedelta(milliseconds=r.randint(800, 20_000))
                messages.append(self.message("assistant", answer, t, offset))
        doc: dict[str, Any] = {
            "chat_id": chat_id,
            "created_at": ymd_his(at),
            "updated_at": ymd_his(t),
        }
        if user is not None:
            doc["user_id"] = user.clerk_id
        else:
            self.opt(doc, "user_id", None, missing=0.5)  # anonymous: null or absent
        first = next((m["content"] for m in messages if m["role"] == "user"), None)
        title = None
        if first is not None:
            title = first if len(first) <= _TITLE_CHARS else first[:_TITLE_CHARS] + "…"
        self.opt(doc, "title", title, missing=0.15)
        self.opt(doc, "profile", r.choice(c.PROFILES))
        self.opt(doc, "metadata", session_metadata(r, at))
        if messages:
            doc["last_message_at"] = ymd_his(t)
        if r.random() < 0.8:  # files written before the counter existed have none
            doc["message_count"] = len(messages)
        self.opt(doc, "status", r.choices(("active", "archived"), (8, 2))[0])
        doc["messages"] = messages
        self.chats.append((chat_id, at))
        return chat_id, micros(_seconds(t)), doc

    def log_line(self) -> tuple[str, int, dict[str, Any]]:
        r = self.rng
        at = next(self.log_times)
        name = f"donna-{at:%Y-%m-%d}.log"
        line = self.log_lines[name] = self.log_lines.get(name, 0) + 1
        level = r.choices(_LEVELS, (10, 50, 8, 15, 12, 5))[0]
        user = next((u.clerk_id for u in self.sample(self.users) if u.created <= at), None)
        chat = next((k for k, t in self.sample(self.chats) if t <= at), None)
        message, context = self.log_event(level, user, chat)
        doc: dict[str, Any] = {"timestamp": rfc3339_ms(at), "level": level, "message": message}
        self.opt(doc, "context", context, missing=0.2)
        if r.random() < 0.15:  # cron jobs run from the CLI: no request, no client
            self.opt(doc, "trace_id", None, missing=0.7)
        else:
            doc["trace_id"] = uniqid("req_", at + dt.timedelta(microseconds=r.randrange(1000)))
            self.opt(doc, "ip", self.ip(), missing=0.05)
            self.opt(doc, "user_agent", r.choice(c.USER_AGENTS), missing=0.05)
            uri = r.choice(c.URIS)
            doc["request_uri"] = uri.format(chat=chat) if chat or "{" not in uri else c.URIS[0]
        return f"{name}:{line}", 1, doc  # a log line is written once: version 1

    def ip(self) -> str:
        r = self.rng
        return r.choice(
            (
                f"203.0.113.{r.randrange(1, 255)}",
                f"198.51.100.{r.randrange(1, 255)}",
                f"2001:db8:{r.randrange(1 << 16):x}::{r.randrange(1 << 16):x}",
                f"::ffff:192.0.2.{r.randrange(1, 255)}",  # IPv4 client on a dual-stack socket
            )
        )

    def sample(self, items: list[_T]) -> list[_T]:
        """A few random items (to find one that existed at some instant)."""
        return self.rng.sample(items, k=min(8, len(items)))

    def log_event(
        self, level: str, user: str | None, chat: str | None
    ) -> tuple[str, dict[str, Any] | list[Any]]:
        """A LogManager message and its context (`[]` when the call passed none)."""
        r = self.rng
        if level in {"DEBUG", "INFO"}:
            processed = {
                "chat_id": chat, "user_id": user, "duration_ms": r.randint(200, 15_000),
                "model": r.choice(c.MODELS),
            }  # fmt: skip
            cron = r.random() < 0.3
            return (
                ("Cron: expired memories swept", [])
                if cron
                else ("Chat message processed", processed)
            )
        if level == "NOTICE":
            return "User memory pruned", {"user_id": user, "removed": r.randint(1, 6)}
        if level == "WARNING" and r.random() < 0.5:
            return "Abuse filter flagged message", {
                "chat_id": chat, "categories": ["harassment"], "score": round(r.random(), 3),
            }  # fmt: skip
        if level == "WARNING":
            return "Clerk session verification failed", {
                "reason": r.choice(("token-expired", "token-invalid-signature")),
                "session_token": token(r, "eyJhbGciOiJSUzI1NiJ9.", 90),
                "headers": {"authorization": "Bearer " + token(r, "sk_live_", 24)},
            }  # fmt: skip
        if level == "ERROR":
            where = f"chat_sessions/{chat}.json" if chat else "memory/.lock"
            path = f"/var/www/donna/data/{where}"
            return f"Failed to write {path}", {
                "error": f"file_put_contents({path}): Failed to open stream: Permission denied",
                "input": r.choice(("明天下午三点", "rendez-vous à 15h", "غدًا")),
            }  # fmt: skip
        return "Uncaught exception", {
            "exception": {
                "class": "RuntimeException",
                "message": "OpenAI API returned HTTP 502",
                "file": "/var/www/donna/api/chat.php",
                "line": r.randint(40, 400),
                "trace": [
                    "#0 /var/www/donna/api/chat.php(88): Donna\\Llm->complete()",
                    "#1 {main}",
                ],
            },
        }

    def builders(self) -> dict[str, Callable[[], tuple[str, int, dict[str, Any]]]]:
        return {"users": self.user, "chat_sessions": self.session, "system_logs": self.log_line}


def generate(n_per_entity: int, seed: int = 0) -> Iterator[LegacyDoc]:
    """`n_per_entity` files of every legacy kind, parents first, from `seed`.

    A document's version is its file's last write (`updated_at`) in µs; log lines,
    written once, have version 1.
    """
    state = _Donna(seed, n_per_entity)
    builders = state.builders()
    for entity in ENTITIES:
        make = builders[entity]
        for _ in range(n_per_entity):
            key, version, doc = make()
            yield LegacyDoc(entity, key, version, doc)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from examples._stores import generator_main

    sys.exit(generator_main(Path(__file__).parent, generate, None))
