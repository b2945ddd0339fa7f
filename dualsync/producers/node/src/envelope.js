// The wire contract, as dualsync/schema/{codec,signing,streams}.py and producers/clock.py
// define it: field encoding, HMAC signature, shard routing, UUIDv7 ids, the hybrid clock.

import { createHmac, randomFillSync } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import zlib from 'node:zlib';
import { isoMicros } from './extjson.js';

/** @type {(data: Buffer) => number} */
const crc32 =
  typeof (/** @type {any} */ (zlib).crc32) === 'function'
    ? /** @type {any} */ (zlib).crc32
    : (() => {
        const table = new Int32Array(256);
        for (let n = 0; n < 256; n++) {
          let c = n;
          for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
          table[n] = c;
        }
        return (/** @type {Buffer} */ data) => {
          let c = -1;
          for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
          return (c ^ -1) >>> 0;
        };
      })();

/** crc32(entity + "\x1f" + key) over UTF-8, modulo shards (zlib's crc32, as in Python). */
export function shardFor(entity, key, shards) {
  return crc32(Buffer.from(`${entity}\x1f${key}`, 'utf8')) % shards;
}

/** The stream of a shard, hash-tagged by shard number. */
export function streamKey(prefix, shard) {
  return `${prefix}:events:{${shard}}`;
}

/** The clock's high-water mark cannot be read; versions could regress. */
export class ClockStateError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ClockStateError';
  }
}

export const DEFAULT_LEASE_US = 1_000_000;

/** @param {string} path */
function readMark(path) {
  let text;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if (/** @type {any} */ (err).code === 'ENOENT') return 0;
    throw err;
  }
  if (!/^\d+$/.test(text)) {
    throw new ClockStateError(
      `clock state file ${path} holds ${JSON.stringify(text.slice(0, 30))}, not a µs version; it is only ` +
        'written by atomic rename, so something else changed it: restore it, or delete it if no ' +
        "publisher on this directory ever ran with its clock ahead of the wall",
    );
  }
  return Number(text);
}

/** fsync a directory, so creates, renames and unlinks in it survive a power cut. */
export function fsyncDirSync(dir) {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replace `path` with `data`: written and fsynced aside, renamed, directory fsynced. */
export function writeAtomicSync(path, data) {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDirSync(dirname(path));
}

/**
 * Hybrid logical clock in µs: max(wall µs, last + 1), strictly increasing, close to real time.
 * With a state file (the spool directory's `clock.hwm`, as the Python SDK keeps it) the
 * clock persists a reserve-ahead high-water mark: before passing the reserved value it writes
 * value + lease (fsync, rename, directory fsync), at most once per lease, and a clock started
 * on the same file begins above it, so versions do not regress across restarts even when the
 * wall clock is behind. Unlike Python, Node cannot flock: processes sharing the file merge by
 * keeping the highest value they read, without a lock.
 */
export class HybridClock {
  /** @param {string|null} [stateFile] @param {{leaseUs?: number}} [options] */
  constructor(stateFile = null, { leaseUs = DEFAULT_LEASE_US } = {}) {
    this.stateFile = stateFile;
    this.leaseUs = leaseUs;
    this.last = stateFile ? readMark(stateFile) : 0;
    this.reserved = this.last;
  }

  /** Next version: strictly greater than every one this clock (or its file) handed out. */
  now() {
    const wall = Date.now() * 1000;
    const next = wall > this.last ? wall : this.last + 1;
    if (this.stateFile && next > this.reserved) this.#reserve(next + this.leaseUs);
    this.last = next;
    return next;
  }

  /** Make later now() values exceed `version`. */
  observe(version) {
    this.last = Math.max(this.last, Number(version));
  }

  #reserve(value) {
    const file = /** @type {string} */ (this.stateFile);
    mkdirSync(dirname(file), { recursive: true });
    if (value > readMark(file)) writeAtomicSync(file, String(value));
    this.reserved = value;
  }
}

/** The process's clock without a state file: one for all publishers, like a wall clock. */
export const processClock = new HybridClock();
/** @type {Map<string, HybridClock>} one clock per state file in this process */
const fileClocks = new Map();

/** The clock of a state file (shared by the publishers of this process on it), or the process's. */
export function clockFor(stateFile) {
  if (!stateFile) return processClock;
  const path = resolve(stateFile);
  let clock = fileClocks.get(path);
  if (!clock) fileClocks.set(path, (clock = new HybridClock(path)));
  return clock;
}

/** Next version of the process's in-memory clock. */
export function clockNow() {
  return processClock.now();
}

// UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, 74 random bits, variant 10.
const pool = Buffer.allocUnsafe(10 * 512);
let poolPos = pool.length;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function uuid7() {
  if (poolPos + 10 > pool.length) {
    randomFillSync(pool);
    poolPos = 0;
  }
  const r = pool.subarray(poolPos, (poolPos += 10));
  const ms = Date.now();
  const hi = Math.floor(ms / 2 ** 16); // top 32 of the 48 bits
  const b = [
    (hi >>> 24) & 0xff, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff,
    (ms >>> 8) & 0xff, ms & 0xff,
    0x70 | (r[0] & 0x0f), r[1],
    0x80 | (r[2] & 0x3f), r[3], r[4], r[5], r[6], r[7], r[8], r[9],
  ];
  const h = b.map((x) => HEX[x]).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * `occurred_at` text: RFC 3339 UTC with microseconds and a `Z` (codec.format_time).
 * A Date has millisecond precision; an RFC 3339 string keeps its microseconds.
 * @param {Date|string} value
 */
export function formatTime(value) {
  if (value instanceof Date) return isoMicros(value);
  if (typeof value !== 'string') throw new TypeError('occurredAt must be a Date or an RFC 3339 string');
  const m = RFC3339.exec(value);
  if (!m) throw new TypeError(`occurredAt ${JSON.stringify(value.slice(0, 40))} is not RFC 3339`);
  const [, y, mo, d, h, mi, s, frac = '', zone] = m;
  let offsetMin = 0;
  if (zone.toUpperCase() !== 'Z') {
    offsetMin = (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  }
  const date = new Date(0);
  date.setUTCFullYear(+y, +mo - 1, +d); // not Date.UTC: it maps years 0-99 to 1900-1999
  date.setUTCHours(+h, +mi - offsetMin, +s, 0);
  const micros = frac.padEnd(6, '0').slice(0, 6);
  return `${isoMicros(date).slice(0, 19)}.${micros}Z`;
}

/** The bytes that are signed: sorted `name=value` lines, `sig` excluded (signing.py). */
export function canonical(fields) {
  return Object.keys(fields)
    .filter((k) => k !== 'sig')
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('\n');
}

/** Hex HMAC-SHA256 of the canonical envelope. */
export function signFields(fields, key) {
  return createHmac('sha256', key).update(canonical(fields), 'utf8').digest('hex');
}

/**
 * Stream fields of one event, in codec.build_fields' order.
 * @returns {Record<string, string>}
 */
export function buildFields({ eventId, source, entity, key, op, version, occurredAt, payloadJson, ref, traceId, signKey }) {
  /** @type {Record<string, string>} */
  const fields = {
    event_id: eventId,
    source,
    entity,
    key,
    op,
    version: String(version),
    occurred_at: occurredAt,
    schema_version: '1',
  };
  if (payloadJson != null) fields.payload = payloadJson;
  if (ref) fields.ref = 'true';
  if (traceId != null) fields.trace_id = traceId;
  if (signKey != null) fields.sig = signFields(fields, signKey);
  return fields;
}
