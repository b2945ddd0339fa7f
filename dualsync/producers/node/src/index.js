// @dualsync/publisher: publish dualsync change events to Redis Streams from Node.
export { EventBuilder } from './builder.js';
export { ClockStateError, HybridClock, canonical, clockFor, clockNow, formatTime, shardFor, signFields, streamKey, uuid7 } from './envelope.js';
export { EnvelopeError, UnreachableError, VersionDomainError, isUnreachable } from './errors.js';
export { dumpsPayload, ext } from './extjson.js';
export { CLOCK_FILE, DRAIN_CHUNK, MAX_BACKOFF, Publisher, createPublisher } from './publisher.js';
export { Spool } from './spool.js';
