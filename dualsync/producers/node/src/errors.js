// Errors of the publisher, named like the Python SDK's (dualsync.schema.errors).

/** A change event no worker could accept; nothing was sent. `field` names the envelope field. */
export class EnvelopeError extends Error {
  /**
   * @param {string} message
   * @param {{field: string, reason?: string}} where
   */
  constructor(message, { field, reason = 'invalid_envelope' }) {
    super(`${field}: ${message}`);
    this.name = 'EnvelopeError';
    this.field = field;
    this.reason = reason;
  }
}

const APP_EXAMPLE = { delete: 'the counter + 1 or the deletion time in µs', upsert: 'the counter or updatedAt in µs' };

/**
 * An event's version would come from a different source than the entity's other events
 * (dualsync/producers/domains.py; same messages, with the option spelled appVersions).
 * Per entity a publisher uses one version domain: "app" (every event passes version: a
 * counter, updatedAt in µs) or "clock" (none does). Mixing them gives a delete a µs clock
 * version (~1.7e15) that no later counter can beat, so a re-created key would stay deleted
 * forever. Thrown before anything is sent or spooled.
 */
export class VersionDomainError extends EnvelopeError {
  /**
   * @param {string} entity
   * @param {'app'|'clock'} domain the entity's domain
   * @param {string} op the op of the refused event
   * @param {boolean} declared the entity is listed in appVersions
   */
  constructor(entity, domain, op, declared) {
    let message;
    if (domain === 'app') {
      const tail = declared
        ? 'or remove it from appVersions and never pass versions for it'
        : 'or never pass versions for it';
      message =
        `entity ${quote(entity)} takes versions from the app (counter/updatedAt); pass ` +
        `version= for its ${op}s too (e.g. ${APP_EXAMPLE[op] ?? 'the app version'}), ${tail}`;
    } else {
      message =
        `entity ${quote(entity)} takes versions from the publisher's clock (its first event had ` +
        'no version=); never pass version= for it, or pass version= for every one of its ' +
        'events, deletes included (declare it in appVersions to enforce that)';
    }
    super(message, { field: 'version', reason: 'version_domain' });
    this.name = 'VersionDomainError';
    this.entity = entity;
    this.domain = domain;
  }
}

/** Redis is not connected (raised by flush() and, without a spool, by publish()). */
export class UnreachableError extends Error {
  constructor(message = 'Redis is not connected') {
    super(message);
    this.name = 'UnreachableError';
  }
}

/** @param {string} s */
export function quote(s) {
  return `'${String(s).slice(0, 64).replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

// node-redis error classes that mean "Redis is not there right now", by name so that any
// node-redis v4/v5 instance (the app's own client included) is recognised.
const UNREACHABLE_NAMES = new Set([
  'ClientClosedError',
  'ClientOfflineError',
  'ConnectionTimeoutError',
  'DisconnectsClientError',
  'ReconnectStrategyError',
  'SocketClosedUnexpectedlyError',
  'SocketTimeoutError',
  'TimeoutError',
  'UnreachableError',
]);

/**
 * True for errors that mean "Redis unreachable" (spool, retry) as opposed to a bad command:
 * the counterpart of dualsync.schema.streams.UNREACHABLE. A LOADING reply counts, as redis-py's
 * BusyLoadingError is a ConnectionError.
 * @param {unknown} err
 */
export function isUnreachable(err) {
  if (!(err instanceof Error)) return false;
  const name = err.constructor?.name ?? err.name;
  if (UNREACHABLE_NAMES.has(name) || UNREACHABLE_NAMES.has(err.name)) return true;
  if (name === 'SimpleError' || name === 'ErrorReply' || name === 'BlobError') {
    return err.message.startsWith('LOADING');
  }
  // Node system errors (ECONNREFUSED, ECONNRESET, EHOSTUNREACH, ...) carry a syscall.
  return typeof (/** @type {any} */ (err).code) === 'string' && 'syscall' in err;
}
