"""Shared harness of the Node and PHP publisher contract tests (tests/test_*_publisher.py).

A *plan* (JSON) describes publishers and the calls made on them; values the JSON cannot say
are typed markers (`{"~": "date", "v": ...}`, `{"~": "oid", ...}`, ...) that each side turns
into its own native values: Python here (for `EventBuilder` and `Publisher`, the reference),
JavaScript in `dualsync/producers/node/test/contract.mjs`, PHP in
`dualsync/producers/php/tests/contract.php`. The script publishes the plan against the real
test Redis and reports what each call returned; the tests read every entry back with
XRANGE, decode it with the worker's decoder and compare it field by field with what the
Python SDK builds for the same specs.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import math
import os
import random
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeAlias, cast

import psycopg
import redis
import redis.asyncio as aredis
from bson import Binary, ObjectId
from bson.binary import BinaryVectorDtype

from dualsync.ops.embedded import EmbeddedRedis, free_port
from dualsync.producers import EventSpec, Publisher, Spool
from dualsync.producers.builder import BuiltEvent, EventBuilder
from dualsync.producers.domains import VersionDomains
from dualsync.schema import decode_fields
from dualsync.schema.envelope import ChangeEvent, WireEnvelope
from dualsync.schema.errors import EnvelopeError
from dualsync.schema.legacy import InMemoryLegacyStore
from dualsync.schema.streams import shard_for, stream_keys
from tests.fix_shop import Shop

Json: TypeAlias = Any
REPO: Final = Path(__file__).resolve().parent.parent
NODE_DIR: Final = REPO / "dualsync" / "producers" / "node"
PHP_DIR: Final = REPO / "dualsync" / "producers" / "php"
SIGN_KEY: Final = "poly-signing-key-\u00e9"  # non-ASCII: the key is UTF-8 bytes everywhere
ROUTE_KEY: Final = "route-key"
SIGNED_SOURCE: Final = "poly-signed"
UUID7: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RFC3339_US: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
EMOJI: Final = [
    "\U0001f6d2",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a ZWJ family
    "\u0645\u0631\u062d\u0628\u0627",  # RTL Arabic
    "\u05e9\u05dc\u05d5\u05dd",  # RTL Hebrew
    "e\u0301\u0308",  # combining marks
    "\u6f22\u5b57",
    "\U0001f1eb\U0001f1f7",  # a flag: two regional indicators
    "\u202e\u202d",  # bidi overrides
    'tab\there, quote" back\\slash / solidus',
]


def mark(kind: str, v: Json = None, **extra: Json) -> dict[str, Json]:
    """A typed marker of the plan."""
    return {"~": kind, "v": v, **extra}


def vector_base64(values: list[float]) -> str:
    """The base64 of pymongo's float32 vector of `values` (what ext.vector must send)."""
    return base64.b64encode(Binary.from_vector(values, BinaryVectorDtype.FLOAT32)).decode()


#: the vector the `ext.vector` scripts print first, then one line per refused value
VECTOR_SAMPLE: Final = "[0.1, -2, 3e-9]"


def check_ext_vector(argv: list[str], cwd: Path) -> None:
    """Run a script that prints the base64 of its language's vector of `VECTOR_SAMPLE`, then
    the error name of each of four values a vector cannot hold: pymongo's bytes, then
    four TypeErrors (nothing sent)."""
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True, timeout=60)
    first, *rest = out.stdout.split()
    assert first == vector_base64(json.loads(VECTOR_SAMPLE))
    assert rest == ["TypeError"] * 4, out.stdout


def to_python(value: Json) -> Any:
    """A plan value as the Python application would pass it to the SDK."""
    if isinstance(value, list):
        return [to_python(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("~")
    if kind is None:
        return {k: to_python(v) for k, v in value.items()}
    v: Any = value.get("v")
    simple: dict[str, Any] = {
        "oid": lambda: ObjectId(v),
        "decimal": lambda: Decimal(v),
        "long": lambda: int(v),
        "bigint": lambda: int(v),
        "bytes": lambda: base64.b64decode(v),
        "binary": lambda: Binary(base64.b64decode(v), value["sub"]),
        "uuid": lambda: uuid.UUID(v),
        "vector": lambda: Binary.from_vector([float(x) for x in v], BinaryVectorDtype.FLOAT32),
        "nan": lambda: math.nan,
        "inf": lambda: math.inf,
        "-inf": lambda: -math.inf,
        "ejson": lambda: v,
        "map": lambda: {str(k): to_python(x) for k, x in v},
        "set": lambda: [to_python(x) for x in v],
    }
    if kind == "date":
        return dt.datetime.fromisoformat(v)
    return simple[kind]()


# ---------------------------------------------------------------------------------- plan


@dataclasses.dataclass
class Group:
    """One publisher of the plan and the calls made on it."""

    name: str
    source: str
    prefix: str
    shards: int = 4
    max_payload_bytes: int = 1024 * 1024
    sign_key: str | None = None
    app_versions: list[str] = dataclasses.field(default_factory=list)
    url: str | None = None
    spool_dir: str | None = None
    #: each call: {"many": bool, "specs": [...]} or a step {"flush": true} / {"wait": true} /
    #: {"drained": true}
    calls: list[dict[str, Json]] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Json]:
        return {
            "name": self.name,
            "publisher": {
                "source": self.source,
                "prefix": self.prefix,
                "shards": self.shards,
                "maxPayloadBytes": self.max_payload_bytes,
                "signKey": self.sign_key,
                "appVersions": self.app_versions,
                "url": self.url,
                "spoolDir": self.spool_dir,
            },
            "calls": self.calls,
        }


def spec(
    entity: str,
    key: str,
    op: str = "upsert",
    payload: Json = None,
    version: int | None = None,
    trace_id: str | None = None,
    occurred_at: str | None = None,
) -> dict[str, Json]:
    """A spec of the plan (versions as strings: JSON numbers lose precision in JavaScript)."""
    return {
        "entity": entity,
        "key": key,
        "op": op,
        "payload": payload,
        "version": None if version is None else str(version),
        "traceId": trace_id,
        "occurredAt": occurred_at,
    }


def py_spec(s: Mapping[str, Json]) -> EventSpec:
    """The same spec for the Python SDK."""
    occurred = s.get("occurredAt")
    return EventSpec(
        s["entity"],
        s["key"],
        s.get("op", "upsert"),
        None if s.get("payload") is None else to_python(s["payload"]),
        None if s.get("version") is None else int(s["version"]),
        s.get("traceId"),
        None if occurred is None else dt.datetime.fromisoformat(occurred),
    )


def many(*specs: dict[str, Json]) -> dict[str, Json]:
    return {"many": True, "specs": list(specs)}


def one(s: dict[str, Json]) -> dict[str, Json]:
    return {"many": False, "specs": [s]}


@dataclasses.dataclass
class Plan:
    """The groups of one script run, and what the apply test needs to know."""

    groups: list[Group]
    apply_prefix: str
    #: reference events: the legacy store's documents
    legacy: dict[tuple[str, str], Json]

    def events(self) -> int:
        return sum(len(c["specs"]) for g in self.groups for c in g.calls if "specs" in c)

    def to_json(self) -> dict[str, Json]:
        return {"groups": [g.to_json() for g in self.groups]}


class _Gen:
    """Deterministic documents with every type the Python side accepts."""

    def __init__(self, lang: str, seed: int) -> None:
        self.lang = lang
        self.rng = random.Random(seed)

    def text(self) -> str:
        r = self.rng
        return " ".join(r.choice(EMOJI) for _ in range(r.randint(1, 3))) + f" {r.randint(0, 999)}"

    def date(self) -> str:
        base = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        d = base + dt.timedelta(seconds=self.rng.randint(0, 10**8))
        us = self.rng.randint(0, 999_999)
        if self.lang == "node":
            us -= us % 1000  # a JavaScript Date holds milliseconds
        return (d + dt.timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")

    def float(self) -> float:
        while True:
            f = round(self.rng.uniform(-1e6, 1e6), self.rng.randint(1, 6))
            if f != int(f):
                return f

    def jsonb_value(self) -> Json:
        """A value a jsonb column can store (no NaN, no binary subtypes)."""
        r = self.rng
        choices: list[Any] = [
            lambda: mark("date", self.date()),
            lambda: mark("oid", f"{r.getrandbits(96):024x}"),
            lambda: mark("decimal", f"{r.randint(-(10**6), 10**6)}.{r.randint(0, 99):02d}"),
            lambda: mark("long", str(r.randint(2**53, 2**63 - 1) * r.choice([1, -1]))),
            lambda: mark("bytes", base64.b64encode(r.randbytes(r.randint(0, 24))).decode()),
            lambda: mark("uuid", str(uuid.UUID(int=r.getrandbits(128)))),
            self.text,
            self.float,
            lambda: r.randint(-(2**53), 2**53),
            lambda: r.choice([True, False, None]),
            lambda: [self.text(), r.randint(0, 9), {"deep": [self.float(), {"x": None}]}],
            dict,
            list,
        ]
        return r.choice(choices)()

    def exotic(self) -> Json:
        """Values a jsonb column refuses but the stream contract carries."""
        r = self.rng
        pool: list[Json] = [
            mark("nan"),
            mark("inf"),
            mark("-inf"),
            mark("binary", base64.b64encode(r.randbytes(8)).decode(), sub=r.choice([5, 0x80])),
            mark("binary", base64.b64encode(r.randbytes(16)).decode(), sub=4),
            mark(
                "vector", [*(self.float() / 9e5 for _ in range(r.randint(0, 6))), r.randint(0, 9)]
            ),
            mark("ejson", {"$regularExpression": {"pattern": "^a.*[b]$", "options": "im"}}),
            mark("ejson", {"$timestamp": {"t": r.randint(1, 2**31), "i": r.randint(1, 99)}}),
            mark("ejson", {"$minKey": 1}),
            mark("ejson", {"$maxKey": 1}),
            mark("ejson", {"$numberInt": str(r.randint(-(2**31), 2**31 - 1))}),
            mark("ejson", {"$numberDouble": "1.5"}),
            mark("ejson", {"$numberLong": str(r.randint(0, 2**62))}),
            mark("ejson", {"$date": {"$numberLong": str(r.randint(0, 2 * 10**12))}}),
            mark("ejson", {"$code": "function () { return 1; }"}),
            mark("ejson", {"$symbol": "sym"}),
            mark("ejson", {"$binary": "aGk=", "$type": "00"}),
            mark("map", [["a", 1], ["b", [self.text()]]]),
            mark("set", [1, "two", 3.5]),
        ]
        if self.lang == "node":
            pool.append(mark("bigint", str(r.randint(2**64, 2**80))))
        if self.lang == "php":
            pool.append(2.0)  # PHP keeps the zero fraction (JSON_PRESERVE_ZERO_FRACTION)
        return r.choice(pool)

    def customer(self, i: int) -> dict[str, Json]:
        r = self.rng
        created = mark("date", self.date()) if r.random() < 0.5 else self.date()
        profile = {f"f{j}": self.jsonb_value() for j in range(r.randint(1, 6))}
        profile["name"] = f"Customer {i} {self.text()}"
        return {
            "email": f"c{i}.{r.randint(0, 99)}@shop.test",
            "tier": r.choice(["free", "pro"]),
            "profile": profile,
            "apiToken": f"tok-{i}-{r.getrandbits(32):08x}",
            "createdAt": created,
        }

    def order(self, i: int, customer_key: str) -> dict[str, Json]:
        r = self.rng
        total: Json = f"{r.randint(0, 9999)}.{r.randint(0, 99):02d}"
        if r.random() < 0.3:
            total = mark("decimal", total)
        return {
            "customerId": customer_key,
            "total": total,
            "note": f"order {i} {r.choice(EMOJI)}"[:40],
            "items": [
                {"sku": f"sku-{i}-{j}-{r.choice(EMOJI)}", "qty": r.randint(1, 9)}
                for j in range(r.randint(0, 4))
            ],
        }


def _batched(specs: list[dict[str, Json]], rng: random.Random) -> Iterator[dict[str, Json]]:
    i = 0
    while i < len(specs):
        n = 1 if rng.random() < 0.4 else rng.randint(2, 40)
        chunk = specs[i : i + n]
        yield one(chunk[0]) if len(chunk) == 1 else many(*chunk)
        i += n


def _apply_groups(g: _Gen, prefix: str, legacy: dict[tuple[str, str], Json]) -> list[Group]:
    r = g.rng
    specs: list[dict[str, Json]] = []
    alive: list[str] = []
    for i in range(120):
        key = f"c{i}"
        for v in range(1, r.randint(2, 5)):
            if r.random() < 0.2:
                specs.append(spec("customers", key, "delete", version=v))
            else:
                specs.append(spec("customers", key, payload=g.customer(i), version=v))
        if specs[-1]["op"] == "upsert":
            alive.append(key)
    r.shuffle(specs)  # interleave keys; per key, versions still say which one wins
    plain = Group("apply-app", "poly-plain", prefix, app_versions=["customers"])
    plain.calls = list(_batched(specs, r))

    orders: list[dict[str, Json]] = []
    for i in range(80):
        key = f"o{i}"
        for _ in range(r.randint(1, 5)):
            if r.random() < 0.2:
                orders.append(spec("orders", key, "delete", trace_id=f"trace-{i}"))
            else:
                orders.append(spec("orders", key, payload=g.order(i, r.choice(alive))))
    signed = Group("apply-signed", SIGNED_SOURCE, prefix, sign_key=SIGN_KEY)
    signed.calls = list(_batched(orders, r))

    big = Group("apply-ref", "poly-plain", prefix, max_payload_bytes=2048)
    for k in ("big1", "big2"):
        doc = g.customer(900)
        doc["profile"] = {"blob": "\U0001f6d2" * 1000, "name": g.text()}
        legacy[("customers", k)] = doc
        big.calls.append(one(spec("customers", k, payload=doc, version=7)))
    big.calls.append(one(spec("customers", "small1", payload=g.customer(901), version=1)))
    return [plain, signed, big]


def _route_key(r: random.Random, n: int) -> str:
    kinds = [
        lambda: f"k{n}",
        lambda: f"{r.choice(EMOJI)}-{n}",
        lambda: f"{n}\x1fsep",
        lambda: f"sp ace '{n}' \"q\" \\",
        lambda: f"line\n{n}",
        lambda: (r.choice(EMOJI[:2]) * 300)[:511] + str(n % 10),  # many UTF-16 units
        lambda: "x" * 511 + str(n % 10),
        lambda: f"{r.getrandbits(96):024x}",
    ]
    return r.choice(kinds)()


def _route_group(g: _Gen, prefix: str, count: int) -> Group:
    r = g.rng
    grp = Group("route", "poly-route", prefix, shards=7, sign_key=ROUTE_KEY)
    specs: list[dict[str, Json]] = []
    users_version = 0
    for n in range(count):
        key = _route_key(r, n)
        if n % 2:
            users_version += r.randint(1, 10**15)
            v = users_version if n != 1 else 2**63 - 1 - count * 10**15
            payload = {"doc": g.exotic(), "more": [g.exotic(), g.jsonb_value()], "t": g.text()}
            specs.append(
                spec(
                    "users",
                    key,
                    "delete" if n % 7 == 0 else "upsert",
                    None if n % 7 == 0 else payload,
                    version=v,
                    trace_id=f"tr-{n}-{r.choice(EMOJI)}" if n % 3 == 0 else None,
                    occurred_at=r.choice(
                        [
                            None,
                            "2024-02-29T23:59:59.123456+05:30",
                            "2001-01-01T00:00:00Z",
                            "1999-12-31T23:00:00.5-01:00",
                        ]
                    ),
                )
            )
        else:
            op = "delete" if n % 5 == 0 else "upsert"
            payload = {"v": g.jsonb_value(), "x": g.exotic(), "nested": {"a": [g.exotic()]}}
            specs.append(spec("notes", key, op, payload if op == "upsert" else None))
    grp.calls = list(_batched(specs, r))
    return grp


def _error_group(prefix: str) -> Group:
    """Version-domain and envelope errors: no event of these calls reaches Redis."""
    grp = Group("errors", "poly-dom", prefix, shards=7, app_versions=["accounts"])
    doc = {"a": 1}
    grp.calls = [
        one(spec("accounts", "1", payload=doc)),  # declared app: no version
        one(spec("accounts", "1", "delete")),
        one(spec("accounts", "1", payload=doc, version=1)),  # ok
        one(spec("notes", "n1", payload=doc, version=5)),  # ok: notes -> app
        one(spec("notes", "n1", "delete")),  # the README's old bug
        one(spec("charts", "c1", payload=doc)),  # ok: charts -> clock
        one(spec("charts", "c1", "delete", version=7)),
        many(spec("tags", "t1", payload=doc, version=1), spec("tags", "t1", "delete")),
        one(spec("tags", "t2", payload=doc)),  # ok: the refused batch pinned nothing
        many(spec("alpha", "a", payload=doc), spec("beta", "b", payload=doc, version=3)),  # ok
        one(spec("Users!", "1", payload=doc)),
        one(spec("users", "", payload=doc)),
        one(spec("users", "a\x00b", payload=doc)),
        one(spec("users", "y" * 513, payload=doc)),
        one(spec("users", "\U0001f6d2" * 513, payload=doc)),
        one(spec("users", "1")),  # an upsert without its document
        one(spec("users", "1", "merge", doc)),
        many(spec("gamma", "g", payload=doc), spec("gamma", "g", "delete", version=2)),
        one(spec("gamma", "g2", "delete", version=2)),  # ok: gamma was not pinned
    ]
    return grp


def make_plan(lang: str, base: str, total: int = 1000, seed: int = 20240601) -> Plan:
    """About `total` events: the shop entities (applied later) and a routing/types group."""
    g = _Gen(lang, seed)
    legacy: dict[tuple[str, str], Json] = {}
    apply_prefix = f"{base}a"
    groups = _apply_groups(g, apply_prefix, legacy)
    errors = _error_group(f"{base}e")
    used = sum(len(c["specs"]) for grp in groups for c in grp.calls)
    ok_errors = 7  # the calls of the error group that succeed publish 7 events
    groups.append(_route_group(g, f"{base}c", total - used - ok_errors))
    groups.append(errors)
    return Plan(groups, apply_prefix, legacy)


# ------------------------------------------------------------------------------- running


@dataclasses.dataclass
class Run:
    """What a script run reported, and how long it took."""

    results: list[dict[str, Json]]
    elapsed_s: float
    stderr: str


def run_script(
    cmd: list[str],
    plan: Mapping[str, Json],
    tmp: Path,
    redis_url: str,
    *,
    on_ready: Callable[[], object] | None = None,
    timeout: float = 60,
) -> Run:
    """Run a contract script on `plan` against `redis_url`; fail with its stderr if it fails.

    `on_ready` runs when the script reaches a `{"wait": true}` step (it prints READY); the
    script goes on when it returns.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    plan_file, out_file = tmp / "plan.json", tmp / "results.json"
    plan_file.write_text(json.dumps(plan, ensure_ascii=False))
    env = {**os.environ, "REDIS_URL": redis_url, "NODE_NO_WARNINGS": "1"}
    started = time.monotonic()
    with subprocess.Popen(
        [*cmd, str(plan_file), str(out_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        if on_ready is not None:
            line = proc.stdout.readline()
            assert line.strip() == "READY", (line, proc.stderr.read() if proc.stderr else "")
            on_ready()
            proc.stdin.write("go\n")
            proc.stdin.flush()
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise AssertionError(f"{cmd[0]} failed ({proc.returncode}):\n{stderr[-4000:]}")
    data = json.loads(out_file.read_text())
    return Run(cast("list[dict[str, Json]]", data["groups"]), elapsed, stderr)


Entry: TypeAlias = tuple[str, str, dict[str, str]]  # stream, entry id, fields


def read_entries(url: str, prefix: str, shards: int) -> dict[str, Entry]:
    """Every entry of a prefix's shard streams, by event id."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        out: dict[str, Entry] = {}
        for stream in stream_keys(prefix, shards):
            rows = cast("list[tuple[str, dict[str, str]]]", client.xrange(stream))
            for entry_id, fields in rows:
                out[fields["event_id"]] = (stream, entry_id, fields)
        return out
    finally:
        client.close()


# ----------------------------------------------------------------------------- comparing


def canon(v: Any) -> Any:  # noqa: PLR0911 - one branch per decoded type
    """A decoded payload in a form `==` compares exactly: types kept, NaN equal to NaN."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, float):
        return ("float", "nan" if math.isnan(v) else repr(v))
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    if isinstance(v, list):
        return [canon(x) for x in v]
    if isinstance(v, dt.datetime):
        return ("datetime", v.isoformat())
    if isinstance(v, Decimal):
        return ("Decimal", str(v))
    if isinstance(v, Binary):
        return ("Binary", v.subtype, bytes(v))
    return (type(v).__name__, repr(v))


def outcome_kind(exc: BaseException) -> str:
    """`VersionDomainError` / `EnvelopeError:<field>`; Python's Op() ValueError is the op check."""
    if type(exc).__name__ == "VersionDomainError":
        return "VersionDomainError"
    if isinstance(exc, EnvelopeError):
        return f"EnvelopeError:{exc.field}"
    if isinstance(exc, ValueError) and "Op" in str(exc):
        return "EnvelopeError:op"
    return type(exc).__name__


def as_polyglot(python_message: str) -> str:
    """A Python SDK message with its option spelled as Node and PHP spell it."""
    return python_message.replace("app_versions=", "appVersions").replace(
        "app_versions", "appVersions"
    )


def python_builder(group: Group) -> EventBuilder:
    return EventBuilder(
        source=group.source,
        prefix=group.prefix,
        shards=group.shards,
        max_payload_bytes=group.max_payload_bytes,
        sign_key=None if group.sign_key is None else group.sign_key.encode(),
        domains=VersionDomains(group.app_versions),
    )


@dataclasses.dataclass
class Checked:
    """Counts of a comparison, for the report."""

    events: int = 0
    identical_payload_bytes: int = 0
    errors: int = 0


def _near_now(us: int) -> bool:
    return abs(us - time.time_ns() // 1000) < 600 * 10**6


def compare_event(
    got: Mapping[str, Json],
    entry: Entry,
    want: BuiltEvent,
    s: Mapping[str, Json],
    group: Group,
) -> tuple[ChangeEvent, bool]:
    """One published event against the Python SDK's build of the same spec."""
    stream, entry_id, fields = entry
    assert got["stream"] == stream == want.stream
    assert got["entryId"] == entry_id
    assert stream.endswith(f"{{{shard_for(s['entity'], s['key'], group.shards)}}}")
    assert set(fields) == set(want.fields), (sorted(fields), sorted(want.fields))
    for name in ("source", "entity", "key", "op", "schema_version", "ref", "trace_id"):
        assert fields.get(name) == want.fields.get(name), name
    assert UUID7.match(fields["event_id"]), fields["event_id"]
    assert _near_now(int(fields["event_id"].replace("-", "")[:12], 16) * 1000)
    if s.get("version") is not None:
        assert fields["version"] == want.fields["version"] == s["version"]
    else:
        assert _near_now(int(fields["version"])), fields["version"]
    assert RFC3339_US.match(fields["occurred_at"]), fields["occurred_at"]
    if s.get("occurredAt") is not None:
        assert fields["occurred_at"] == want.fields["occurred_at"]
    WireEnvelope.model_validate(fields)
    keys = {group.source: group.sign_key.encode()} if group.sign_key else None
    ev = decode_fields(fields, signing_keys=keys, require_signature=keys is not None)
    assert (ev.sig is not None) == (group.sign_key is not None)
    ref = decode_fields(want.fields)
    assert canon(ev.payload) == canon(ref.payload), (s, fields.get("payload"))
    return ev, fields.get("payload") == want.fields.get("payload")


def compare_run(plan: Plan, run: Run, url: str) -> Checked:
    """Every call of every group: same outcome as the Python SDK, same events in Redis."""
    checked = Checked()
    assert [g["name"] for g in run.results] == [g.name for g in plan.groups]
    streams = {(g.prefix, g.shards) for g in plan.groups}
    entries = {k: e for p, n in streams for k, e in read_entries(url, p, n).items()}
    seen: set[str] = set()
    last_clock = 0  # one clock per process (no spool directory here)
    for group, result in zip(plan.groups, run.results, strict=True):
        builder = python_builder(group)
        calls = [c for c in group.calls if "specs" in c]
        assert len(result["calls"]) == len(calls), group.name
        for call, got in zip(calls, result["calls"], strict=True):
            try:
                want: list[BuiltEvent] | BaseException = builder.build_many(
                    [py_spec(s) for s in call["specs"]]
                )
            except (EnvelopeError, ValueError) as exc:
                want = exc
            if isinstance(want, BaseException):
                assert not got["ok"], (group.name, call, "Python refused it:", want)
                assert got["error"]["kind"] == outcome_kind(want), (got["error"], want)
                if outcome_kind(want) == "VersionDomainError":
                    assert got["error"]["message"] == as_polyglot(str(want))
                checked.errors += 1
                continue
            assert got["ok"], (group.name, call, got.get("error"))
            published = got["published"]
            assert len(published) == len(want)
            occurred = set()
            for p, w, s in zip(published, want, call["specs"], strict=True):
                entry = entries[p["eventId"]]
                _, same = compare_event(p, entry, w, s, group)
                checked.events += 1
                checked.identical_payload_bytes += same
                seen.add(p["eventId"])
                if s.get("version") is None:
                    assert int(p["version"]) > last_clock, "clock versions must increase"
                    last_clock = int(p["version"])
                if s.get("occurredAt") is None:
                    occurred.add(entry[2]["occurred_at"])
            assert len(occurred) <= 1, "a batch shares one occurred_at"
    assert set(entries) == seen, "entries in Redis that no call reported"
    return checked


# ------------------------------------------------------------------------ apply and spool


async def rows(shop: Shop) -> dict[str, list[tuple[Any, ...]]]:
    """The shop's tables; versions only where the app chose them (clock ones differ by run)."""
    return {
        "customers": await shop.rows(
            "select id, email, tier::text, profile, api_token, created_at"
            " from shop.customers order by id"
        ),
        "orders": await shop.rows(
            "select id, customer_id, total, note from shop.orders order by id"
        ),
        "items": await shop.rows(
            "select order_id, position, sku, qty from shop.order_items order by 1, 2"
        ),
        "state": await shop.rows(
            "select entity, key, deleted, case when entity = 'customers' then version end"
            " from dualsync.row_state order by 1, 2"
        ),
    }


async def truncate(shop: Shop) -> None:
    async with await psycopg.AsyncConnection.connect(shop.db, autocommit=True) as conn:
        await conn.execute(
            "truncate shop.order_items, shop.orders, shop.customers, dualsync.row_state"
        )


async def apply_both(plan: Plan, shop: Shop) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rows from the script's events, then from the Python SDK's events of the same plan."""
    store = InMemoryLegacyStore()
    for (entity, key), doc in plan.legacy.items():
        store.put(entity, key, to_python(doc))
    keys = {SIGNED_SOURCE: SIGN_KEY.encode()}
    await truncate(shop)
    wctx = await shop.drain(
        prefix=plan.apply_prefix, legacy=store, signing_keys=keys, batch_size=5000
    )
    assert (wctx.crashed, wctx.stats.dead_lettered) == (None, 0)
    theirs = await rows(shop)
    await truncate(shop)
    py_prefix = f"{plan.apply_prefix}py"
    for g in plan.groups:
        if g.prefix != plan.apply_prefix:
            continue
        sign = None if g.sign_key is None else g.sign_key.encode()
        pub = Publisher(
            shop.redis,
            source=g.source,
            prefix=py_prefix,
            shards=g.shards,
            max_payload_bytes=g.max_payload_bytes,
            sign_key=sign,
            app_versions=g.app_versions,
        )
        for call in g.calls:
            await pub.publish_many([py_spec(s) for s in call["specs"]])
        await pub.aclose()
    wctx = await shop.drain(prefix=py_prefix, legacy=store, signing_keys=keys, batch_size=5000)
    assert (wctx.crashed, wctx.stats.dead_lettered) == (None, 0)
    ours = await rows(shop)
    await delete_prefix(shop.redis_url, py_prefix)
    return theirs, ours


async def delete_prefix(url: str, prefix: str) -> None:
    client = aredis.Redis.from_url(url)
    try:
        found = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if found:
            await client.delete(*found)
    finally:
        await client.aclose()


def spool_group(name: str, prefix: str, url: str, spool_dir: Path, n: int, first: int) -> Group:
    """`n` clock-versioned events over 20 keys, single and pipelined."""
    g = Group(name, "poly-spool", prefix, url=url, spool_dir=str(spool_dir))
    specs = [
        spec("users", f"k{i % 20}\U0001f6d2", payload={"i": i, "t": EMOJI[i % len(EMOJI)]})
        for i in range(first, first + n)
    ]
    g.calls = list(_batched(specs, random.Random(first)))
    return g


def spool_lines(spool_dir: Path) -> list[tuple[str, dict[str, str]]]:
    """Every line of the spool files, checked to be `[stream, fields]` of valid events."""
    out = []
    for path in sorted(spool_dir.glob("spool-*.jsonl")):
        for line in path.read_bytes().splitlines():
            stream, fields = json.loads(line)
            decode_fields(fields)
            out.append((stream, fields))
    return out


def check_delivered(url: str, prefix: str, published: list[str]) -> list[ChangeEvent]:
    """All published events in Redis exactly once, and per key in version order."""
    events = []
    for stream, _, fields in read_entries_in_order(url, prefix, 4):
        ev = decode_fields(fields)
        assert stream.endswith(f"{{{shard_for(ev.entity, ev.key, 4)}}}")
        events.append(ev)
    ids = [e.event_id for e in events]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert sorted(ids) == sorted(published), (
        len(ids),
        len(published),
        len(set(ids) - set(published)),
        len(set(published) - set(ids)),
    )
    per_key: dict[str, list[int]] = {}
    for e in events:
        per_key.setdefault(e.key, []).append(e.version)
    for versions in per_key.values():
        assert versions == sorted(versions), "per-key order broken"
    return events


def read_entries_in_order(url: str, prefix: str, shards: int) -> list[Entry]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return [
            (stream, entry_id, fields)
            for stream in stream_keys(prefix, shards)
            for entry_id, fields in cast("list[tuple[str, dict[str, str]]]", client.xrange(stream))
        ]
    finally:
        client.close()


def published_ids(run: Run) -> list[str]:
    return [p["eventId"] for g in run.results for c in g["calls"] for p in c["published"]]


def _published(run: Run) -> list[dict[str, Json]]:
    return [p for g in run.results for c in g["calls"] for p in c["published"]]


def check_spool_then_drain(cmd: list[str], redis_url: str, prefix: str, tmp: Path) -> None:
    """Redis unreachable: every event fsynced to the spool (readable by Python's Spool);
    the next publisher on the directory drains it, new events behind it, in order."""
    spool_dir = tmp / "spool"
    down = f"redis://127.0.0.1:{free_port()}/0"
    first = run_script(
        cmd, {"groups": [spool_group("down", prefix, down, spool_dir, 300, 0).to_json()]},
        tmp / "r1", redis_url,
    )  # fmt: skip
    assert all(p["spooled"] and p["entryId"] is None for p in _published(first))
    assert [f["event_id"] for _, f in spool_lines(spool_dir)] == published_ids(first)
    assert (spool_dir / "clock.hwm").read_text().isdigit()
    probe = Spool(spool_dir)  # the Python spool reads it
    assert probe.adopt_orphans() >= 1
    assert probe.count() == 300
    probe.close()

    up = spool_group("up", prefix, redis_url, spool_dir, 100, 300)
    up.calls.append({"flush": True})
    second = run_script(cmd, {"groups": [up.to_json()]}, tmp / "r2", redis_url)
    events = check_delivered(redis_url, prefix, published_ids(first) + published_ids(second))
    assert len(events) == 400
    assert not list(spool_dir.glob("spool-*"))
    before = max(int(p["version"]) for p in _published(first))
    assert min(int(p["version"]) for p in _published(second)) > before


async def check_cross_drain(cmd: list[str], redis_url: str, prefix: str, tmp: Path) -> None:
    """Python drains the script's spool; the script drains a Python publisher's spool."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    theirs = tmp / "their-spool"
    run = run_script(
        cmd, {"groups": [spool_group("n", prefix, down, theirs, 50, 0).to_json()]},
        tmp / "r1", redis_url,
    )  # fmt: skip
    client = aredis.Redis.from_url(redis_url)
    async with Publisher(client, source="py", prefix=prefix, spool_dir=theirs) as pub:
        await pub.flush()  # its drainer may have sent some already
    await client.aclose()

    ours = tmp / "py-spool"
    dead = aredis.Redis.from_url(down, socket_connect_timeout=0.5)
    pub = Publisher(dead, source="py", prefix=prefix, spool_dir=ours, close_timeout=0.5)
    out = await pub.publish_many(
        [EventSpec("users", f"p{i % 5}", payload={"i": i, "t": EMOJI[i % 9]}) for i in range(50)]
    )
    assert all(p.spooled for p in out)
    await pub.aclose()
    await dead.aclose()
    drain = Group("drain", "poly-spool", prefix, url=redis_url, spool_dir=str(ours))
    drain.calls = [{"drained": True}]
    run_script(cmd, {"groups": [drain.to_json()]}, tmp / "r2", redis_url)
    events = check_delivered(redis_url, prefix, published_ids(run) + [p.event_id for p in out])
    assert len(events) == 100
    assert not list(ours.glob("spool-*"))
    assert not list(theirs.glob("spool-*"))


def check_outage(cmd: list[str], prefix: str, tmp: Path) -> None:
    """Redis comes back while the script runs: spooled events first, then the new ones."""
    server = EmbeddedRedis(port=free_port())
    spool_dir = tmp / "spool"
    g = spool_group("outage", prefix, server.url, spool_dir, 150, 0)
    g.calls += [{"wait": True}, *spool_group("x", prefix, server.url, spool_dir, 150, 150).calls]
    g.calls += [{"drained": True}, *spool_group("y", prefix, server.url, spool_dir, 50, 300).calls]

    def while_spooling() -> None:
        probe = Spool(spool_dir)  # the live publisher's flock keeps its file from adoption
        assert probe.adopt_orphans() == 0
        probe.close()
        assert len(spool_lines(spool_dir)) == 150
        server.start()

    try:
        run = run_script(
            cmd, {"groups": [g.to_json()]}, tmp / "r", server.url, on_ready=while_spooling
        )
        published = _published(run)
        assert all(p["spooled"] for p in published[:150])
        assert all(p["entryId"] for p in published[-50:])  # direct again once drained
        events = check_delivered(server.url, prefix, published_ids(run))
        assert len(events) == 350
        assert not list(spool_dir.glob("spool-*"))
    finally:
        server.close()
