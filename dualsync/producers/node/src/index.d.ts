// Types of @dualsync/publisher (the implementation is plain ESM JavaScript in this folder).
import type { RedisClientOptions, RedisClientType } from 'redis';

export type Op = 'upsert' | 'delete';

/** One change, as the legacy application describes it. */
export interface EventSpec {
  entity: string;
  key: string;
  op?: Op;
  /** The full after-image (required for upsert, ignored for delete). */
  payload?: Record<string, unknown> | null;
  /** The store's own counter or updatedAt in µs; omitted: the publisher's clock (µs). */
  version?: number | bigint | null;
  traceId?: string | null;
  /** Time of the legacy write (default: now); a string is RFC 3339 and keeps its µs. */
  occurredAt?: Date | string | null;
}

/** What happened to one published event. */
export interface Published {
  eventId: string;
  stream: string;
  version: number | bigint;
  /** The stream entry id, or null while the event waits in the local spool. */
  entryId: string | null;
  spooled: boolean;
  ref: boolean;
}

export interface Logger {
  error?(message: string): void;
  warn?(message: string): void;
  info?(message: string): void;
}

export interface PublisherOptions {
  /** redis://host:port/db (default redis://127.0.0.1:6379); the publisher owns that client. */
  url?: string;
  /** An existing node-redis v4/v5 client instead (connected by the app, not closed by us). */
  client?: RedisClientType<any, any, any, any, any> | any;
  /** The producing application (`^[A-Za-z0-9_.:-]{1,128}$`). */
  source: string;
  prefix?: string;
  shards?: number;
  /** Payloads above this many bytes become reference events (ref, no payload). */
  maxPayloadBytes?: number;
  /** HMAC-SHA256 key: every event gets a `sig`. */
  signKey?: string | Uint8Array | null;
  /** Local fsynced spool while Redis is unreachable (without it, publish rejects then). */
  spoolDir?: string | null;
  /** Entities whose versions always come from the app (one version domain per entity). */
  appVersions?: Iterable<string>;
  /** Milliseconds between drain attempts while Redis is down (default 1000). */
  retryInterval?: number;
  /** Connect timeout in ms of the publisher's own client (default 1000). */
  connectTimeout?: number;
  /** close() gives the last drain at most this many ms (default 5000); the rest stays spooled. */
  closeTimeout?: number;
  /** More createClient options for the publisher's own client. */
  redisOptions?: RedisClientOptions;
  /** Where spooling and drain messages go (default console; null: nowhere). */
  logger?: Logger | null;
}

export interface BuiltEvent {
  stream: string;
  fields: Record<string, string>;
  eventId: string;
  version: number | bigint;
  ref: boolean;
}

export class EventBuilder {
  constructor(options: PublisherOptions & { clock?: HybridClock });
  readonly source: string;
  readonly prefix: string;
  readonly shards: number;
  readonly domains: Map<string, 'app' | 'clock'>;
  buildMany(specs: Iterable<EventSpec>): BuiltEvent[];
}

export class Publisher {
  constructor(options: PublisherOptions);
  open(): Promise<this>;
  readonly builder: EventBuilder;
  /** True while events wait in the local spool. */
  readonly spooling: boolean;
  publish(
    entity: string,
    key: string,
    op?: Op,
    payload?: Record<string, unknown> | null,
    options?: { version?: number | bigint | null; traceId?: string | null; occurredAt?: Date | string | null },
  ): Promise<Published>;
  publishMany(specs: Iterable<EventSpec>): Promise<Published[]>;
  /** Drain the spool now; rejects while Redis is still unreachable. */
  flush(): Promise<number>;
  spooled(): Promise<number>;
  close(): Promise<void>;
}

export function createPublisher(options: PublisherOptions): Promise<Publisher>;

export class EnvelopeError extends Error {
  constructor(message: string, where: { field: string; reason?: string });
  readonly field: string;
  readonly reason: string;
}
export class VersionDomainError extends EnvelopeError {
  constructor(entity: string, domain: 'app' | 'clock', op: string, declared: boolean);
  readonly entity: string;
  readonly domain: 'app' | 'clock';
}
export class UnreachableError extends Error {}
export function isUnreachable(err: unknown): boolean;

export function dumpsPayload(payload: unknown): string;
export const ext: {
  oid(hex: string): { $oid: string };
  decimal(value: string | number): { $numberDecimal: string };
  long(value: bigint | number | string): { $numberLong: string };
  int32(value: number): { $numberInt: string };
  double(value: number | string): { $numberDouble: string };
  uuid(value: string): { $uuid: string };
  binary(bytes: Uint8Array, subType?: number): { $binary: { base64: string; subType: string } };
  /** A float32 vector (BSON binary subtype 9): what a `vector` column reads fastest. */
  vector(values: ArrayLike<number>): { $binary: { base64: string; subType: string } };
  date(value: Date | string | number): { $date: string };
  regex(pattern: string, options?: string): { $regularExpression: { pattern: string; options: string } };
  timestamp(t: number, i: number): { $timestamp: { t: number; i: number } };
  minKey(): { $minKey: 1 };
  maxKey(): { $maxKey: 1 };
};

export const DRAIN_CHUNK: number;
export const MAX_BACKOFF: number;
export const CLOCK_FILE: string;

/** max(wall µs, last + 1); with a state file, a reserve-ahead high-water mark survives restarts. */
export class HybridClock {
  constructor(stateFile?: string | null, options?: { leaseUs?: number });
  now(): number;
  observe(version: number | bigint): void;
}
export class ClockStateError extends Error {}
/** The clock of a state file (one per file in this process), or the process's in-memory clock. */
export function clockFor(stateFile?: string | null): HybridClock;
export function shardFor(entity: string, key: string, shards: number): number;
export function streamKey(prefix: string, shard: number): string;
export function uuid7(): string;
export function clockNow(): number;
export function formatTime(value: Date | string): string;
export function canonical(fields: Record<string, string>): string;
export function signFields(fields: Record<string, string>, key: string | Uint8Array): string;

export class Spool {
  constructor(directory: string, log?: Logger | null);
  adoptOrphans(): Promise<number>;
  count(): Promise<number>;
  close(): Promise<void>;
}

/** Where an entity's reads go (dualsync/schema/readpath.py). */
export type Mode = 'legacy' | 'shadow' | 'postgres';
export const MODES: readonly Mode[];
/** `<prefix>:readpath`: the hash entity -> mode (an absent entity is legacy). */
export function readpathKey(prefix: string): string;
/** `<prefix>:readpath:changes`: the channel of change messages `{"entity","mode","from"}`. */
export function readpathChannel(prefix: string): string;

export interface ReadPathOptions {
  /** Key prefix (default 'dualsync'). */
  prefix?: string;
  /** How long a mode read from Redis is trusted without a change message (default 1000 ms). */
  ttlMs?: number;
  /** An HGET that has not answered by then falls back to the last known mode (default 500 ms). */
  commandTimeoutMs?: number;
  /** start() resolves after at most this long when Redis does not answer (default 1000 ms). */
  startTimeoutMs?: number;
  /** Where outage and unknown-mode warnings go (default console; null: nowhere). */
  logger?: Logger | null;
}

/** The read-path client of one Node process; the caching rules of the Python SDK's ReadPath. */
export class ReadPath {
  /** `client`: the app's node-redis v4/v5 client (connected by the app, never closed by us). */
  constructor(client: RedisClientType<any, any, any, any, any> | any, options?: ReadPathOptions);
  /** Subscribe on a duplicated connection (resolves within startTimeoutMs even if Redis is down). */
  start(): Promise<this>;
  /** Where `entity` is read from now; never rejects (Redis down: the last known mode, else legacy). */
  mode(entity: string): Promise<Mode>;
  /** legacyFn in legacy and shadow (shadow comparison is a Python-SDK feature), postgresFn in postgres. */
  read<T>(
    entity: string,
    key: string,
    legacyFn: (key: string) => Promise<T> | T,
    postgresFn: (key: string) => Promise<T> | T,
  ): Promise<T>;
  /** Stop listening; the app's client stays open. */
  close(): Promise<void>;
}

/** A ReadPath, started. */
export function createReadPath(client: RedisClientType<any, any, any, any, any> | any, options?: ReadPathOptions): Promise<ReadPath>;
