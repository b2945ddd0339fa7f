// `ReadPath`: where a Node application reads an entity from (legacy -> shadow -> postgres),
// with the caching rules of the Python SDK's client (dualsync/producers/readpath.py); the
// contract is dualsync/schema/readpath.py.
//
// A mode is cached for ttlMs; a subscriber on a duplicated connection refreshes it the moment
// on-call flips or rolls back (`<prefix>:readpath:changes`), so every instance follows within
// a second. When Redis is unreachable the client keeps its last known mode and says so once
// per outage: it never switches store on its own; an entity never seen is `legacy`.
//
// Concurrency decisions:
// - One HGET in flight per entity (callers share it, and one that timed out is waited on
//   again rather than sent anew): a flood of reads after a TTL expiry costs one round trip,
//   and during an outage an app client that queues commands offline (node-redis's default)
//   holds at most one queued HGET per entity, not one per read.
// - Each HGET is raced against commandTimeoutMs (node-redis's own `timeout` only covers a
//   command not yet written): a command that fails or hangs falls back to the cached mode,
//   and its answer, when it comes late, is still taken (it is what Redis holds by then).
// - A change message bumps the entity's generation; an HGET that was answered before the
//   flip but arrives after the message does not overwrite the newer mode.
// - When the subscriber loses Redis, changes may be missed: cached modes stop counting as
//   fresh (their values stay the last known ones) and are read again; while Redis does not
//   answer, a read gets the last known mode at once and the HGET runs in the background.

import { setTimeout as sleep } from 'node:timers/promises';

/** The modes, in cutover order (dualsync.schema.readpath.Mode). */
export const MODES = Object.freeze(['legacy', 'shadow', 'postgres']);
const KNOWN = new Set(MODES);

/** The hash entity -> mode (dualsync.schema.streams.readpath_key). */
export const readpathKey = (/** @type {string} */ prefix) => `${prefix}:readpath`;
/** The channel of change messages {"entity","mode","from"} (readpath_channel). */
export const readpathChannel = (/** @type {string} */ prefix) => `${prefix}:readpath:changes`;

const describe = (/** @type {any} */ err) => String(err?.message ?? err).slice(0, 200);

class ReadTimeoutError extends Error {
  constructor(ms) {
    super(`Redis did not answer within ${ms} ms`);
    this.name = 'ReadTimeoutError';
  }
}

/** The subscriber reconnects for ever (at most every 1 s) so that it resubscribes after an outage. */
const reconnect = (/** @type {number} */ retries) => Math.min(50 * 2 ** retries, 1000);

export class ReadPath {
  #redis;
  #prefix;
  #ttl;
  #timeout;
  #startTimeout;
  #log;
  /** @type {Map<string, {mode: string, at: number}>} */
  #known = new Map();
  /** @type {Map<string, Promise<string>>} */
  #inflight = new Map();
  /** @type {Map<string, Promise<string>>} HGETs not answered yet (a timed-out one is waited on again) */
  #asked = new Map();
  /** @type {Map<string, number>} */
  #generation = new Map();
  /** @type {Set<string>} "entity=raw" values already warned about */
  #unknownSeen = new Set();
  #outage = false;
  #sub = null;
  #closed = false;

  /**
   * @param {any} client the app's node-redis v4/v5 client (connected by the app, not closed by us)
   * @param {import('./index.js').ReadPathOptions} [options]
   */
  constructor(client, options = {}) {
    if (!client) throw new TypeError('ReadPath needs a node-redis client');
    const { prefix = 'dualsync', ttlMs = 1000, commandTimeoutMs = 500, startTimeoutMs = 1000 } = options;
    this.#redis = client;
    this.#prefix = prefix;
    this.#ttl = ttlMs;
    this.#timeout = commandTimeoutMs;
    this.#startTimeout = startTimeoutMs;
    this.#log = (options.logger === undefined ? console : options.logger) ?? {};
  }

  /**
   * Subscribe to changes on a duplicated connection. Resolves once subscribed, or after
   * startTimeoutMs when Redis does not answer (it keeps trying in the background).
   */
  async start() {
    if (this.#sub || this.#closed) return this;
    const socket = { ...(this.#redis.options?.socket ?? {}), reconnectStrategy: reconnect };
    const sub = this.#redis.duplicate({ socket });
    this.#sub = sub;
    sub.on('error', () => {}); // each failure shows in mode(); an 'error' without a listener would crash the app
    // Changes may have been missed while not subscribed: what is cached is read again. A
    // reconnect resubscribes before 'ready'; the first subscription is awaited below.
    sub.on('ready', () => this.#expireAll());
    sub.on('reconnecting', () => this.#expireAll());
    const subscribed = (async () => {
      await sub.connect();
      await sub.subscribe(readpathChannel(this.#prefix), (/** @type {string} */ msg) => this.#onMessage(msg));
      this.#expireAll();
    })();
    const outcome = await Promise.race([
      subscribed.then(() => 'ok', (err) => err),
      sleep(this.#startTimeout, 'timeout', { ref: false }),
    ]);
    if (outcome !== 'ok' && !this.#closed) {
      this.#warnOutage(`change listener not subscribed yet (${outcome === 'timeout' ? 'Redis did not answer' : describe(outcome)}); retrying in the background`);
    }
    subscribed.catch(() => {}); // a close() during connect
    return this;
  }

  /** Where `entity` is read from now: 'legacy', 'shadow' or 'postgres'. Never rejects. */
  async mode(entity) {
    const hit = this.#known.get(entity);
    if (hit && performance.now() - hit.at < this.#ttl) return hit.mode;
    let pending = this.#inflight.get(entity);
    if (!pending) {
      pending = this.#fetch(entity).finally(() => this.#inflight.delete(entity));
      this.#inflight.set(entity, pending);
    }
    // During an outage a read does not wait on Redis for what it knows: the last mode now,
    // the HGET goes on in the background.
    return this.#outage && hit ? hit.mode : pending;
  }

  /**
   * Read `key` from where the mode says: `legacyFn(key)` in `legacy` and `shadow`,
   * `postgresFn(key)` in `postgres`. In `shadow` the answer is the legacy one; comparing it
   * with Postgres is a feature of the Python SDK only.
   * @template T
   * @param {string} entity
   * @param {string} key
   * @param {(key: string) => Promise<T> | T} legacyFn
   * @param {(key: string) => Promise<T> | T} postgresFn
   * @returns {Promise<T>}
   */
  async read(entity, key, legacyFn, postgresFn) {
    return (await this.mode(entity)) === 'postgres' ? postgresFn(key) : legacyFn(key);
  }

  /** Stop listening (the app's client stays open). */
  async close() {
    this.#closed = true;
    const sub = this.#sub;
    this.#sub = null;
    if (!sub) return;
    if (sub.isReady) {
      await sub.close().catch(() => sub.destroy());
    } else if (sub.isOpen) {
      sub.destroy(); // still connecting: stop the reconnect loop
    }
  }

  async #fetch(entity) {
    const generation = this.#generation.get(entity) ?? 0;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new ReadTimeoutError(this.#timeout)), this.#timeout);
      timer.unref?.();
    });
    try {
      return await Promise.race([this.#ask(entity), timeout]);
    } catch (err) {
      const last = this.#known.get(entity)?.mode ?? 'legacy';
      this.#warnOutage(`keeping the last known mode (${entity}=${last}): ${describe(err)}`);
      return this.#stamp(entity, last, generation); // asked again after ttlMs, not at every read
    } finally {
      clearTimeout(timer);
    }
  }

  /** The entity's HGET, sent unless one is still unanswered; its answer is taken even when late. */
  #ask(entity) {
    let asked = this.#asked.get(entity);
    if (!asked) {
      const generation = this.#generation.get(entity) ?? 0; // when it was sent
      asked = Promise.resolve()
        .then(() => this.#redis.hGet(readpathKey(this.#prefix), entity))
        .then((raw) => this.#accept(entity, raw, generation));
      this.#asked.set(entity, asked);
      asked.then(
        () => this.#asked.delete(entity),
        () => this.#asked.delete(entity), // the failure went to whoever waited
      );
    }
    return asked;
  }

  #accept(entity, raw, generation) {
    this.#outage = false;
    if ((this.#generation.get(entity) ?? 0) !== generation) {
      return this.#known.get(entity)?.mode ?? 'legacy'; // a change message arrived meanwhile: it is newer
    }
    const text = raw == null ? null : String(raw);
    if (text === null || text === '') return this.#stamp(entity, 'legacy', generation);
    if (KNOWN.has(text)) return this.#stamp(entity, text, generation);
    const last = this.#known.get(entity)?.mode ?? 'legacy';
    this.#warnUnknown(entity, text, last);
    return this.#stamp(entity, last, generation);
  }

  #stamp(entity, mode, generation) {
    if ((this.#generation.get(entity) ?? 0) === generation) {
      this.#known.set(entity, { mode, at: performance.now() });
    }
    return this.#known.get(entity)?.mode ?? mode;
  }

  #onMessage(message) {
    let data;
    try {
      data = JSON.parse(message);
    } catch {
      this.#log.warn?.(`dualsync: read path ignored a change message that is not JSON: ${String(message).slice(0, 200)}`);
      return;
    }
    const entity = data?.entity;
    if (typeof entity !== 'string') return;
    this.#generation.set(entity, (this.#generation.get(entity) ?? 0) + 1);
    const mode = String(data.mode);
    if (!KNOWN.has(mode)) {
      const last = this.#known.get(entity)?.mode ?? 'legacy';
      this.#warnUnknown(entity, mode, last);
      this.#known.set(entity, { mode: last, at: -Infinity }); // read the hash again at the next mode()
      return;
    }
    this.#known.set(entity, { mode, at: performance.now() });
  }

  #expireAll() {
    for (const hit of this.#known.values()) hit.at = -Infinity;
  }

  #warnOutage(detail) {
    if (this.#outage) return;
    this.#outage = true;
    this.#log.warn?.(`dualsync: read path cannot reach Redis, ${detail}; it never switches store on its own`);
  }

  #warnUnknown(entity, raw, last) {
    const seen = `${entity}=${raw}`;
    if (this.#unknownSeen.has(seen)) return;
    this.#unknownSeen.add(seen);
    this.#log.warn?.(
      `dualsync: read path found an unknown mode ${JSON.stringify(raw.slice(0, 64))} for ${entity}; keeping ${last} ` +
        `(modes: ${MODES.join(', ')}; set it with dualsync's cutover command, not by hand)`,
    );
  }
}

/** A ReadPath, started (subscribed, or retrying in the background when Redis is down). */
export async function createReadPath(client, options) {
  return new ReadPath(client, options).start();
}
