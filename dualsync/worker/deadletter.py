"""Dead letters: a poison event leaves the stream for `<prefix>:dlq`, with its reason.

The DLQ stream entry is what operators read (`dualsync dlq list/show`): reason code,
error text, entity, key, event_id, delivery count and the original fields with secrets
redacted. The unredacted original, needed to replay, goes to the hash
`<prefix>:dlq:raw` (field = DLQ entry id), which no command prints. Then the source
entry is acked: the poison never blocks the events behind it.

Crash safety. The DLQ entry, its raw original and the index entry
`<prefix>:dlq:index` (source stream + entry id -> DLQ id) are written by one Lua script,
atomically (all three or none; the script first looks the source entry up in the
index). The XACK of the source entry follows. A crash in between leaves the entry
pending; when it is redelivered and dead-lettered again, the script finds it in the
index and writes nothing: one dead letter, with its original, never a duplicate
without one. On a Redis Cluster the three DLQ keys lie in different slots and no script
can span them: there the same guarantee comes from separate steps made idempotent
through the index (`worker.deadletter_cluster`, which says why that is still crash-safe).

Redaction. Payloads are shown through the entity's mapping (`EntityMapping.redact`:
secret names anywhere, secret paths through nested objects and arrays, credential-like
names); an entity the mapping does not know gets the name rules alone. A payload that is
not valid JSON is not shown at all (text that cannot be parsed cannot be redacted
reliably), only its length and hash. Error text is scrubbed of the event's secret
values, since messages (a database's, a library's) may quote a value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
import redis.asyncio as aredis

from dualsync.errors import DualsyncError
from dualsync.redact import REDACTED, is_secret_name, redact_document, redact_url, scrub
from dualsync.redisconn import AnyRedis
from dualsync.schema.extjson import dumps_payload
from dualsync.schema.jsonexact import JSONTextError, loads_exact
from dualsync.schema.mapping import EntityMapping, MappingSet
from dualsync.schema.streams import dlq_index_field, dlq_index_key, dlq_key, dlq_raw_key
from dualsync.worker.deadletter_cluster import write_letter_cluster
from dualsync.worker.entry import Entry

__all__ = ["DeadLetter", "Redactor", "dead_letter", "error_text", "traceback_text"]

MAX_ERROR = 2000
MAX_TRACEBACK = 8000
MAX_PAYLOAD_SHOWN = 64 * 1024

# KEYS: DLQ stream, raw hash, index hash. ARGV: index field, raw original, then the DLQ
# entry's field/value pairs. Returns the DLQ id (the existing one if already written).
_WRITE_LETTER = """
local known = redis.call('HGET', KEYS[3], ARGV[1])
if known and #redis.call('XRANGE', KEYS[1], known, known) > 0 then
  return known
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
redis.call('HSET', KEYS[2], id, ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], id)
return id
"""


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
    """A one-line description of an error, without what is known to quote values.

    psycopg's DETAIL lines quote row values ("Key (token)=(...)"), so database errors
    contribute only their primary message and constraint name. The caller scrubs the
    event's secret values from it (`Redactor.scrub`).
    """
    if isinstance(exc, psycopg.Error) and exc.diag is not None:
        primary = exc.diag.message_primary or type(exc).__name__
        constraint = exc.diag.constraint_name
        text = f"{primary} (constraint {constraint})" if constraint else primary
    elif isinstance(exc, DualsyncError):
        text = str(exc)  # our messages leave secret values out where they are built
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact_url(" ".join(text.split()))[:MAX_ERROR]


def traceback_text(exc: BaseException) -> str:
    """The traceback of an unforeseen error, for the log (the caller scrubs it)."""
    text = "".join(traceback.format_exception(exc))
    return redact_url(text)[-MAX_TRACEBACK:]


def _payload_note(raw: bytes, what: str) -> str:
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return f"<not shown: {what}, {len(raw)} bytes, sha256 {digest}>"


class Redactor:
    """How a worker shows an event: its mapping's redaction, per entity."""

    def __init__(self, mappings: MappingSet | None = None) -> None:
        self._entities: Mapping[str, EntityMapping] = mappings.entities if mappings else {}

    def _mapping(self, entity: str) -> EntityMapping | None:
        return self._entities.get(entity)

    def document(self, entity: str, doc: Any) -> Any:
        """A redacted copy of a document of `entity`."""
        em = self._mapping(entity)
        if em is not None and isinstance(doc, dict):
            return em.redact(doc)
        names = em.secret_fields if em is not None else frozenset()
        return redact_document(doc, names=names)

    def secrets(self, entity: str, doc: Any) -> list[str]:
        """The secret values of a document (what `document` replaces), as text."""
        em = self._mapping(entity)
        if em is not None:
            return em.secret_values(doc)
        found: list[str] = []
        redact_document(doc, found=found)
        return found

    def entry_secrets(self, entity: str, entries: Iterable[Entry]) -> list[str]:
        """The secret values of the payloads of some entries."""
        out: list[str] = []
        for e in entries:
            raw = e.fields.get(b"payload")
            if raw is None:
                continue
            try:
                doc = loads_exact(raw)
            except JSONTextError:
                continue
            out += self.secrets(entity, doc)
        return out

    def scrub(
        self, text: str, entity: str, entries: Iterable[Entry], docs: Iterable[Any] = ()
    ) -> str:
        """`text` without the secret values of these entries' payloads (and of `docs`,
        documents read from the legacy store for reference events)."""
        secrets = self.entry_secrets(entity, entries)
        for d in docs:
            secrets += self.secrets(entity, d)
        return scrub(text, secrets) if secrets else text

    def payload(self, entity: str, raw: bytes) -> str:
        """A payload as shown: redacted JSON, or a note when it cannot be redacted."""
        try:
            doc = loads_exact(raw)
        except JSONTextError:
            return _payload_note(raw, "not valid JSON")
        if not isinstance(doc, dict | list):
            return _payload_note(raw, f"a JSON {type(doc).__name__}, not an object")
        text = dumps_payload(self.document(entity, doc)).decode()
        if len(text) > MAX_PAYLOAD_SHOWN:
            text = text[:MAX_PAYLOAD_SHOWN] + "...(truncated)"
        return text

    def fields(self, entity: str, fields: Mapping[bytes, bytes]) -> dict[str, str]:
        """An entry's fields as shown: the payload through `payload`, secret-named fields
        (`sig`) replaced."""
        em = self._mapping(entity)
        names = em.secret_fields if em is not None else frozenset()
        out: dict[str, str] = {}
        for k, v in fields.items():
            name = k.decode(errors="replace")
            if name == "payload":
                out[name] = self.payload(entity, v)
            elif is_secret_name(name, names):
                out[name] = REDACTED
            else:
                out[name] = v.decode(errors="replace")
        return out


def _letter(
    d: DeadLetter, consumer: str, now: str, redactor: Redactor
) -> tuple[dict[str, str], bytes]:
    """The DLQ entry's fields (redacted) and the raw original of one letter."""
    entry = {
        "reason": d.reason,
        "error": redactor.scrub(d.error, d.entity, [d.entry]),
        "entity": d.entity,
        "key": d.key,
        "event_id": d.event_id,
        "deliveries": str(d.entry.deliveries),
        "stream": d.entry.stream,
        "entry_id": d.entry.id,
        "consumer": consumer,
        "failed_at": now,
        "fields": orjson.dumps(redactor.fields(d.entity, d.entry.fields)).decode(),
    }
    raw = orjson.dumps(
        {k.decode(errors="replace"): v.decode(errors="replace") for k, v in d.entry.fields.items()}
    )
    return entry, raw


async def dead_letter(
    client: AnyRedis,
    prefix: str,
    group: str,
    consumer: str,
    letters: list[DeadLetter],
    redactor: Redactor,
) -> list[str]:
    """Write each letter (DLQ entry, raw original, index: atomically, once), then ack it.

    Returns the DLQ ids, in order (an existing id when the entry was already there).
    On a Redis Cluster the write takes `write_letter_cluster` (same guarantee, by steps).
    """
    if not letters:
        return []
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    ids: list[str] = []
    if not isinstance(client, aredis.Redis):  # a RedisCluster
        for d in letters:
            entry, raw = _letter(d, consumer, now, redactor)
            field = dlq_index_field(d.entry.stream, d.entry.id)
            ids.append(
                await write_letter_cluster(
                    client, prefix, field, d.entry.stream, d.entry.id, raw, entry
                )
            )
    else:
        write = client.register_script(_WRITE_LETTER)
        keys = [dlq_key(prefix), dlq_raw_key(prefix), dlq_index_key(prefix)]
        for d in letters:
            entry, raw = _letter(d, consumer, now, redactor)
            args: list[str | bytes] = [dlq_index_field(d.entry.stream, d.entry.id), raw]
            args += [x for kv in entry.items() for x in kv]
            got = await write(keys=keys, args=args)
            ids.append(got.decode() if isinstance(got, bytes) else str(got))
    async with client.pipeline(transaction=False) as pipe:
        for d in letters:
            pipe.xack(d.entry.stream, group, d.entry.id)
        await pipe.execute()
    return ids
