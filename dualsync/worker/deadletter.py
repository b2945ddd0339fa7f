"""Dead letters: a poison event leaves the stream for `<prefix>:dlq`, with its reason.

The DLQ stream entry is what operators read (`dualsync dlq list/show`): reason code,
error text, entity, key, event_id, delivery count and the original fields with secrets
redacted. The unredacted original, needed to replay, goes to the hash
`<prefix>:dlq:raw` (field = DLQ entry id), which no command prints. Then the source
entry is acked: the poison never blocks the events behind it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import psycopg
import redis.asyncio as aredis

from dualsync.errors import DualsyncError
from dualsync.redact import REDACTED, is_secret_name, redact_url, redact_value
from dualsync.schema.streams import dlq_key
from dualsync.worker.entry import Entry

__all__ = ["DeadLetter", "dead_letter", "error_text", "redacted_fields"]

MAX_ERROR = 2000
MAX_PAYLOAD_SHOWN = 64 * 1024
_JSON_SECRET = re.compile(r'("([^"\\]*)"\s*:\s*)"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why one entry is dead-lettered."""

    entry: Entry
    reason: str
    error: str
    entity: str = ""
    key: str = ""
    event_id: str = ""


def error_text(exc: BaseException) -> str:
    """A one-line, secret-free description of an error.

    psycopg's DETAIL lines quote row values ("Key (token)=(...)"), so database errors
    contribute only their primary message and constraint name.
    """
    if isinstance(exc, psycopg.Error) and exc.diag is not None:
        primary = exc.diag.message_primary or type(exc).__name__
        constraint = exc.diag.constraint_name
        text = f"{primary} (constraint {constraint})" if constraint else primary
    elif isinstance(exc, DualsyncError):
        text = str(exc)  # our messages redact secrets where they are built
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact_url(" ".join(text.split()))[:MAX_ERROR]


def _redact_json_text(text: str, extra: frozenset[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        return f'{m.group(1)}"{REDACTED}"' if is_secret_name(m.group(2), extra) else m.group(0)

    return _JSON_SECRET.sub(repl, text)


def redacted_fields(fields: dict[bytes, bytes], secret_names: Iterable[str] = ()) -> dict[str, str]:
    """The entry's fields as text with secrets redacted (payload parsed when it is JSON)."""
    extra = frozenset(secret_names)
    out: dict[str, str] = {}
    for k, v in fields.items():
        name = k.decode(errors="replace")
        text = v.decode(errors="replace")
        if name == "payload":
            try:
                text = orjson.dumps(redact_value(orjson.loads(v), extra)).decode()
            except orjson.JSONDecodeError:
                text = _redact_json_text(text, extra)
            if len(text) > MAX_PAYLOAD_SHOWN:
                text = text[:MAX_PAYLOAD_SHOWN] + "...(truncated)"
        elif is_secret_name(name, extra):
            text = REDACTED
        out[name] = text
    return out


async def dead_letter(
    client: aredis.Redis,
    prefix: str,
    group: str,
    consumer: str,
    letters: list[DeadLetter],
    secret_names: dict[str, frozenset[str]],
) -> None:
    """Write each letter to the DLQ (and its raw original to the raw hash), then ack it."""
    if not letters:
        return
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    async with client.pipeline(transaction=False) as pipe:
        for d in letters:
            shown = redacted_fields(d.entry.fields, secret_names.get(d.entity, frozenset()))
            pipe.xadd(
                dlq_key(prefix),
                {
                    "reason": d.reason,
                    "error": d.error,
                    "entity": d.entity,
                    "key": d.key,
                    "event_id": d.event_id,
                    "deliveries": str(d.entry.deliveries),
                    "stream": d.entry.stream,
                    "entry_id": d.entry.id,
                    "consumer": consumer,
                    "failed_at": now,
                    "fields": orjson.dumps(shown).decode(),
                },
            )
        ids = await pipe.execute()
    raw = {
        (i.decode() if isinstance(i, bytes) else str(i)): orjson.dumps(
            {
                k.decode(errors="replace"): v.decode(errors="replace")
                for k, v in d.entry.fields.items()
            }
        )
        for i, d in zip(ids, letters, strict=True)
    }
    async with client.pipeline(transaction=False) as pipe:
        pipe.hset(f"{dlq_key(prefix)}:raw", mapping=raw)
        for d in letters:
            pipe.xack(d.entry.stream, group, d.entry.id)
        await pipe.execute()
