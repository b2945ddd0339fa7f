// `Publisher`: what a legacy Node application calls after each write; the semantics of the
// Python SDK's Publisher (dualsync/producers/publisher.py).
//
// Happy path: one pipelined round trip of XADDs per call. When Redis is unreachable the
// events go to the local fsynced spool and the call still resolves; while anything is
// spooled, new events are spooled behind it (per-key order holds); a background drain sends
// the spool, in order, once Redis answers. The drain never dies: an outage is waited out
// every retryInterval, any other error (a Redis error reply, a disk error) is logged and
// retried with exponential backoff. Spool appends and drains are serialised by one async
// lock; direct XADDs are not (node-redis writes commands in call order on one connection).

import { createClient } from 'redis';
import { join } from 'node:path';
import { EventBuilder } from './builder.js';
import { clockFor } from './envelope.js';
import { UnreachableError, isUnreachable } from './errors.js';
import { Spool } from './spool.js';

export const DRAIN_CHUNK = 500;
/** The longest wait between drain attempts after errors other than an outage (s). */
export const MAX_BACKOFF = 30;
/** The clock's high-water mark, kept in the spool directory (as the Python SDK does). */
export const CLOCK_FILE = 'clock.hwm';

class Lock {
  #tail = Promise.resolve();

  /** @template T @param {() => Promise<T>} fn @returns {Promise<T>} */
  run(fn) {
    const result = this.#tail.then(fn);
    this.#tail = result.then(
      () => {},
      () => {},
    );
    return result;
  }
}

const sleep = (/** @type {number} */ ms) =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });

const describe = (/** @type {any} */ err) => String(err?.message ?? err).slice(0, 200);

export class Publisher {
  #redis;
  #ownClient;
  #builder;
  #spool;
  #retry;
  #closeTimeout;
  #log;
  #lock = new Lock();
  #pending = false;
  #draining = false;
  #closed = false;
  /** @type {Promise<void>|null} */
  #connecting = null;
  /** per spool file: entry ends already in Redis although their chunk failed part-way */
  #delivered = new Map();

  /** @param {import('./index.js').PublisherOptions} options */
  constructor(options) {
    const { url, client, spoolDir, retryInterval = 1000, connectTimeout = 1000, closeTimeout = 5000, redisOptions = {} } = options;
    const logger = options.logger === undefined ? console : options.logger;
    this.#log = logger ?? {};
    const clock = clockFor(spoolDir ? join(spoolDir, CLOCK_FILE) : null);
    this.#builder = new EventBuilder({ ...options, clock });
    if (client) {
      this.#redis = client;
      this.#ownClient = false;
    } else {
      this.#redis = createClient({
        url: url ?? 'redis://127.0.0.1:6379',
        ...redisOptions,
        disableOfflineQueue: true, // fail fast when disconnected: the spool takes the events
        socket: { connectTimeout, ...redisOptions.socket, reconnectStrategy: false },
      });
      this.#redis.on('error', () => {}); // surfaced by the failing command, not as a crash
      this.#ownClient = true;
    }
    this.#spool = spoolDir ? new Spool(spoolDir, this.#log) : null;
    this.#retry = retryInterval;
    this.#closeTimeout = closeTimeout;
  }

  /** Adopt orphaned spool files (their drain starts now) and connect; a Redis that is down is no error here. */
  async open() {
    if (this.#spool && (await this.#spool.adoptOrphans()) > 0) {
      this.#pending = true;
      this.#startDrainer();
    }
    if (this.#ownClient) {
      await this.#ready().catch((err) => {
        if (!isUnreachable(err)) throw err;
      });
    }
    return this;
  }

  /** The event builder (routing, versions, signing) this publisher uses. */
  get builder() {
    return this.#builder;
  }

  /** True while events wait in the local spool. */
  get spooling() {
    return this.#pending;
  }

  /** Publish one change event; never rejects because Redis is down (with a spoolDir). */
  async publish(entity, key, op = 'upsert', payload = null, { version = null, traceId = null, occurredAt = null } = {}) {
    return (await this.publishMany([{ entity, key, op, payload, version, traceId, occurredAt }]))[0];
  }

  /** Publish many events in one pipelined round trip (order kept per key). */
  async publishMany(specs) {
    if (this.#closed) throw new Error('publisher is closed');
    const built = this.#builder.buildMany(specs);
    if (!built.length) return [];
    if (!this.#pending) {
      try {
        const results = await this.#send(built);
        const failed = results.find((r) => r.status === 'rejected');
        if (failed) throw results.find((r) => r.status === 'rejected' && isUnreachable(r.reason))?.reason ?? failed.reason;
        return built.map((b, i) => published(b, results[i].value, false));
      } catch (err) {
        if (!this.#spool || !isUnreachable(err)) throw err;
        this.#log.warn?.(`dualsync: Redis unreachable, spooling ${built.length} event(s): ${describe(err)}`);
      }
    }
    await this.#lock.run(async () => {
      await this.#spool?.append(built.map((b) => [b.stream, b.fields]));
      this.#pending = true;
    });
    this.#startDrainer();
    return built.map((b) => published(b, null, true));
  }

  async #ready() {
    const r = this.#redis;
    if (r.isReady) return;
    if (!this.#ownClient) throw new UnreachableError('the Redis client is not ready');
    this.#connecting ??= (async () => {
      try {
        if (r.isOpen) r.destroy(); // a half-open socket from a failed attempt
        await r.connect();
      } finally {
        this.#connecting = null;
      }
    })();
    await this.#connecting;
  }

  /**
   * XADD every entry in one round trip: commands issued in one tick go out in one write
   * (node-redis pipelines them), and each settles on its own, like redis-py's
   * execute(raise_on_error=False).
   * @param {{stream: string, fields: Record<string,string>}[]} entries
   */
  async #send(entries) {
    await this.#ready();
    return Promise.allSettled(entries.map((e) => this.#redis.xAdd(e.stream, '*', e.fields)));
  }

  #startDrainer() {
    if (this.#draining || this.#closed || !this.#spool) return;
    this.#draining = true;
    (async () => {
      let failures = 0;
      let waiting = false;
      while (this.#pending && !this.#closed) {
        try {
          await this.flush();
          failures = 0;
          waiting = false;
        } catch (err) {
          if (isUnreachable(err)) {
            if (!waiting) this.#log.warn?.(`dualsync: spool drain waiting for Redis: ${describe(err)}`);
            waiting = true;
            await sleep(this.#retry);
          } else {
            failures += 1;
            const delay = Math.min(this.#retry * 2 ** Math.min(failures - 1, 30), Math.max(MAX_BACKOFF * 1000, this.#retry));
            this.#log.error?.(`dualsync: spool drain failed (attempt ${failures}, retry in ${delay} ms): ${describe(err)}`);
            await sleep(delay);
          }
        }
      }
    })().finally(() => {
      this.#draining = false;
    });
  }

  /**
   * Drain the spool to Redis now; resolves to how many entries were sent. Rejects with an
   * unreachable error while Redis is still down, or with the first error reply of a chunk
   * (the entries stay spooled from the first one not yet in Redis).
   */
  async flush() {
    const spool = this.#spool;
    if (!spool) return 0;
    const sent = await this.#lock.run(async () => {
      let n = 0;
      for (;;) {
        const next = await spool.nextChunk(DRAIN_CHUNK);
        if (next === null) {
          this.#pending = false;
          return n;
        }
        n += await this.#sendChunk(spool, next.file, next.entries);
      }
    });
    if (sent) this.#log.info?.(`dualsync: spool drained, ${sent} event(s) sent`);
    return sent;
  }

  async #sendChunk(spool, file, chunk) {
    const done = this.#delivered.get(file.path) ?? new Set();
    this.#delivered.set(file.path, done);
    const todo = chunk.filter((e) => !done.has(e.end));
    const results = await this.#send(todo);
    let error = null;
    results.forEach((r, i) => {
      if (r.status === 'rejected') error ??= r.reason;
      else done.add(todo[i].end);
    });
    let committed = 0;
    while (committed < chunk.length && done.has(chunk[committed].end)) committed += 1; // the prefix in Redis
    if (committed) {
      await spool.commit(file, chunk[committed - 1].end);
      for (const e of chunk.slice(0, committed)) done.delete(e.end);
    }
    if (!done.size) this.#delivered.delete(file.path);
    if (error) throw error;
    return committed;
  }

  /** Entries waiting in the spool (reads the files). */
  async spooled() {
    return this.#spool ? this.#lock.run(() => this.#spool.count()) : 0;
  }

  /**
   * Stop the drainer, try a last drain for at most closeTimeout ms, release the spool (what
   * is undrained stays on disk for the next publisher) and the publisher's own client.
   */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#pending) {
      let timer;
      const timeout = new Promise((resolve) => {
        timer = setTimeout(resolve, this.#closeTimeout, 'timeout');
      });
      const outcome = await Promise.race([this.flush().then(() => 'ok', (err) => err), timeout]);
      clearTimeout(timer);
      if (outcome !== 'ok') {
        this.#log.warn?.(`dualsync: spool left for the next publisher: ${outcome === 'timeout' ? 'Redis did not answer' : describe(outcome)}`);
        if (outcome === 'timeout' && this.#ownClient && this.#redis.isOpen) this.#redis.destroy(); // fails the hung commands
      }
    }
    const release = this.#lock.run(async () => this.#spool?.close());
    if (this.#ownClient || !this.#pending) await release;
    else await Promise.race([release, sleep(this.#closeTimeout)]); // the app's client may hang on
    if (this.#ownClient && this.#redis.isOpen) await this.#redis.close().catch(() => this.#redis.destroy());
  }
}

function published(b, entryId, spooled) {
  return { eventId: b.eventId, stream: b.stream, version: b.version, entryId, spooled, ref: b.ref };
}

/** A publisher, opened: orphaned spool files adopted (and draining), connected when Redis answers. */
export async function createPublisher(options) {
  return new Publisher(options).open();
}
