// Contract script of tests/test_node_publisher.py (and a worked example of the API):
//   node contract.mjs PLAN.json RESULTS.json
// publishes every call of the plan's groups (see tests/_polyglot.py) and writes what each
// call returned, or the error it threw. Plan values use typed markers ({"~": "date", ...})
// for what JSON cannot say; they become the JavaScript values an application would pass.
// A {"wait": true} step prints READY and waits for a line on stdin (the test starts Redis).

import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createPublisher, ext } from '../src/index.js';

const [planFile, outFile] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(planFile, 'utf8'));
const redisUrl = process.env.REDIS_URL;

/** A bson-like ObjectId, as the mongodb driver hands them out (duck-typed by _bsontype). */
class FakeObjectId {
  constructor(hex) {
    this.hex = hex;
  }
  get _bsontype() {
    return 'ObjectId';
  }
  toHexString() {
    return this.hex;
  }
  toJSON() {
    return this.hex; // what JSON.stringify would write: the type would be lost
  }
}

let flip = 0;
function toNode(v) {
  if (Array.isArray(v)) return v.map(toNode);
  if (v === null || typeof v !== 'object') return v;
  const kind = v['~'];
  if (kind === undefined) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toNode(x)]));
  const x = v.v;
  flip += 1;
  switch (kind) {
    case 'date':
      return new Date(x);
    case 'oid':
      return flip % 2 ? ext.oid(x) : new FakeObjectId(x);
    case 'decimal':
      return ext.decimal(x);
    case 'long':
    case 'bigint':
      return BigInt(x);
    case 'bytes': {
      const buf = Buffer.from(x, 'base64');
      return flip % 2 ? buf : new Uint8Array(buf);
    }
    case 'binary':
      return ext.binary(Buffer.from(x, 'base64'), v.sub);
    case 'uuid':
      return ext.uuid(x);
    case 'vector':
      return flip % 2 ? ext.vector(x) : ext.vector(Float64Array.from(x));
    case 'nan':
      return NaN;
    case 'inf':
      return Infinity;
    case '-inf':
      return -Infinity;
    case 'ejson':
      return x;
    case 'map':
      return new Map(x.map(([k, y]) => [k, toNode(y)]));
    case 'set':
      return new Set(x.map(toNode));
    default:
      throw new Error(`unknown marker ${kind}`);
  }
}

function toSpec(s) {
  const version = s.version == null ? null : BigInt(s.version) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(s.version) : BigInt(s.version);
  return {
    entity: s.entity,
    key: s.key,
    op: s.op,
    payload: s.payload == null ? null : toNode(s.payload),
    version,
    traceId: s.traceId,
    occurredAt: s.occurredAt,
  };
}

const kind = (err) => (err.name === 'VersionDomainError' ? err.name : err.name === 'EnvelopeError' ? `EnvelopeError:${err.field}` : err.name);
let lines = null;
const out = [];
const started = performance.now();
for (const group of plan.groups) {
  const o = group.publisher;
  const pub = await createPublisher({
    url: o.url ?? redisUrl,
    source: o.source,
    prefix: o.prefix,
    shards: o.shards,
    maxPayloadBytes: o.maxPayloadBytes,
    signKey: o.signKey,
    appVersions: o.appVersions,
    spoolDir: o.spoolDir,
    retryInterval: 50,
    logger: { warn: (m) => console.error(m), error: (m) => console.error(m), info() {} },
  });
  const calls = [];
  for (const call of group.calls) {
    if (call.flush) {
      await pub.flush();
      continue;
    }
    if (call.wait) {
      lines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
      process.stdout.write('READY\n');
      await lines.next();
      continue;
    }
    if (call.drained) {
      const deadline = Date.now() + 20_000;
      while (pub.spooling && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (pub.spooling) throw new Error('the spool did not drain within 20 s');
      continue;
    }
    try {
      const specs = call.specs.map(toSpec);
      const got = call.many
        ? await pub.publishMany(specs)
        : [await pub.publish(specs[0].entity, specs[0].key, specs[0].op, specs[0].payload, specs[0])];
      calls.push({ ok: true, published: got.map((p) => ({ ...p, version: String(p.version) })) });
    } catch (err) {
      if (!('field' in err)) throw err;
      calls.push({ ok: false, error: { kind: kind(err), message: err.message } });
    }
  }
  await pub.close();
  out.push({ name: group.name, calls });
}
writeFileSync(outFile, JSON.stringify({ groups: out, elapsedMs: performance.now() - started }));
process.exit(0); // stdin may still be open after a wait step
