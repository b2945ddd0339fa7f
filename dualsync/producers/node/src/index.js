// @dualsync/publisher: publish dualsync change events to Redis Streams from Node, and follow
// the read path (legacy -> shadow -> postgres) of each entity.
export { EventBuilder } from './builder.js';
export { ClockStateError, HybridClock, canonical, clockFor, clockNow, formatTime, shardFor, signFields, streamKey, uuid7 } from './envelope.js';
export { EnvelopeError, UnreachableError, VersionDomainError, isUnreachable } from './errors.js';
export { dumpsPayload, ext } from './extjson.js';
export { CLOCK_FILE, DRAIN_CHUNK, MAX_BACKOFF, Publisher, createPublisher } from './publisher.js';
export { MODES, ReadPath, createReadPath, readpathChannel, readpathKey } from './readpath.js';
export { Spool } from './spool.js';
