// Turn what an application says ("users/42 changed to this document") into stream entries:
// validation, versions (one version domain per entity), reference events, signatures and
// routing, exactly as dualsync/producers/builder.py does.

import { EnvelopeError, VersionDomainError, quote } from './errors.js';
import { buildFields, formatTime, processClock, shardFor, streamKey, uuid7 } from './envelope.js';
import { dumpsPayload } from './extjson.js';

const ENTITY = /^[a-z][a-z0-9_]{0,62}$/;
const SOURCE = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_KEY = 512;
const MAX_VERSION = 2n ** 63n;

/** @param {string} s */
function codePoints(s, stop) {
  let n = 0;
  for (const _ of s) if (++n > stop) break;
  return n;
}

/** @param {unknown} s */
function textOk(s, max) {
  return (
    typeof s === 'string' && s.length > 0 && !s.includes('\x00') && s.isWellFormed?.() !== false &&
    (s.length <= max || codePoints(s, max) <= max)
  );
}

/** @param {unknown} v */
function checkVersion(v) {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return;
  if (typeof v === 'bigint' && v >= 0n && v < MAX_VERSION) return;
  throw new EnvelopeError('must be a non-negative integer below 2^63 (a safe integer number or a bigint)', {
    field: 'version',
  });
}

export class EventBuilder {
  /**
   * @param {{source: string, prefix?: string, shards?: number, maxPayloadBytes?: number,
   *   signKey?: string|Uint8Array|null, appVersions?: Iterable<string>}} options
   */
  constructor({ source, prefix = 'dualsync', shards = 4, maxPayloadBytes = 1024 * 1024, signKey = null, appVersions = [], clock = processClock }) {
    if (typeof source !== 'string' || !SOURCE.test(source)) {
      throw new EnvelopeError(`${quote(source)} is not a source name (${SOURCE.source})`, { field: 'source' });
    }
    if (!Number.isInteger(shards) || shards < 1) throw new RangeError('shards must be a positive integer');
    this.source = source;
    this.prefix = prefix;
    this.shards = shards;
    this.maxPayloadBytes = maxPayloadBytes;
    this.clock = clock;
    this.signKey = signKey == null ? null : typeof signKey === 'string' ? Buffer.from(signKey, 'utf8') : Buffer.from(signKey);
    if (typeof appVersions === 'string' || appVersions instanceof Uint8Array) {
      throw new TypeError(
        `appVersions must be a collection of entity names, not ${quote(appVersions)}: write appVersions: [${quote(appVersions)}]`,
      );
    }
    /** @type {Set<string>} entities declared upfront as app-versioned */
    this.declared = new Set(appVersions);
    /** @type {Map<string, 'app'|'clock'>} the version domain of each entity seen or declared */
    this.domains = new Map([...this.declared].map((e) => [e, /** @type {const} */ ('app')]));
  }

  /**
   * Build a batch, all or nothing; events without occurredAt share one timestamp. Like the
   * Python builder: every op is checked, then every version domain, then each event is built;
   * the domains of entities new in the batch are remembered only when all of it was built.
   * @param {Iterable<import('./index.js').EventSpec>} specs
   */
  buildMany(specs) {
    const items = [...specs];
    const ops = items.map((s) => {
      const op = s.op ?? 'upsert';
      if (op !== 'upsert' && op !== 'delete') {
        throw new EnvelopeError(`must be 'upsert' or 'delete', got ${quote(op)}`, { field: 'op' });
      }
      return op;
    });
    /** @type {Map<string, 'app'|'clock'>} */
    const fresh = new Map();
    items.forEach((s, i) => {
      const domain = s.version == null ? 'clock' : 'app';
      const known = this.domains.get(s.entity) ?? fresh.get(s.entity);
      if (known === undefined) fresh.set(s.entity, domain);
      else if (known !== domain) throw new VersionDomainError(s.entity, known, ops[i], this.declared.has(s.entity));
    });
    const now = formatTime(new Date());
    const out = items.map((s, i) => this.#build(s, ops[i], now));
    for (const [entity, domain] of fresh) this.domains.set(entity, domain);
    return out;
  }

  /** @param {import('./index.js').EventSpec} spec @param {'upsert'|'delete'} op @param {string} now */
  #build(spec, op, now) {
    const { entity, key, payload = null, version = null, traceId = null, occurredAt = null } = spec;
    if (typeof entity !== 'string' || !ENTITY.test(entity)) {
      throw new EnvelopeError(`${quote(entity)} is not an entity name`, { field: 'entity' });
    }
    if (!textOk(key, MAX_KEY)) {
      throw new EnvelopeError('must be 1-512 characters without NUL', { field: 'key' });
    }
    if (op === 'upsert' && payload == null) {
      throw new EnvelopeError('an upsert needs the full document', { field: 'payload' });
    }
    if (op === 'upsert' && (typeof payload !== 'object' || Array.isArray(payload))) {
      throw new EnvelopeError('must be an object (the document)', { field: 'payload' });
    }
    if (traceId != null && !textOk(traceId, 128)) {
      throw new EnvelopeError('must be 1-128 characters without NUL', { field: 'trace_id' });
    }
    if (version != null) checkVersion(version);

    let payloadJson = null;
    let ref = false;
    if (op === 'upsert') {
      const raw = dumpsPayload(payload);
      if (Buffer.byteLength(raw, 'utf8') > this.maxPayloadBytes) ref = true; // the worker re-reads the record
      else payloadJson = raw;
    }
    const v = version ?? this.clock.now(); // app versions never feed the clock
    const eventId = uuid7();
    const fields = buildFields({
      eventId,
      source: this.source,
      entity,
      key,
      op,
      version: v,
      occurredAt: occurredAt == null ? now : formatTime(occurredAt),
      payloadJson,
      ref,
      traceId,
      signKey: this.signKey,
    });
    const stream = streamKey(this.prefix, shardFor(entity, key, this.shards));
    return { stream, fields, eventId, version: v, ref };
  }
}
