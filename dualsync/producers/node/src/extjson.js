// Payload serialisation: JSON with MongoDB Extended JSON v2 wrappers for rich types, as the
// Python worker decodes them (dualsync/schema/extjson.py).
//
//   Date                       -> {"$date": "2024-01-02T03:04:05.123000Z"} (µs, UTC, like Python)
//   BigInt within int64        -> {"$numberLong": "..."}; beyond 64 bits -> the exact digits
//   Buffer / Uint8Array / ...  -> {"$binary": {"base64": "...", "subType": "00"}}
//   NaN, Infinity, -Infinity   -> {"$numberDouble": "NaN" | "Infinity" | "-Infinity"}
//   Map -> object, Set -> array; objects with toJSON() as JSON.stringify does
//   bson values (mongodb driver: ObjectId, Decimal128, Long, Binary, UUID, Timestamp, ...)
//       -> their canonical Extended JSON (toExtendedJSON), recognised by `_bsontype`
//   ext.oid(hex), ext.decimal("1.50"), ext.uuid(s), ext.binary(buf, subType), ... build the
//   wrappers by hand; a literal {"$oid": "..."} passes through as written.
//   ext.vector(numbers): a float32 vector as MongoDB stores one (BSON binary subtype 9),
//   byte for byte what pymongo's Binary.from_vector(values, FLOAT32) writes.
//
// `undefined` is skipped in objects and null in arrays (JSON.stringify's rule); functions,
// symbols, cycles, invalid Dates and strings with lone surrogates (which Python cannot encode
// either) throw TypeError: nothing is dropped silently.

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** @param {string} s */
const wellFormed =
  typeof String.prototype.isWellFormed === 'function'
    ? (s) => s.isWellFormed()
    : (s) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

/** @param {string} s */
function str(s) {
  if (!wellFormed(s)) throw new TypeError('cannot encode a string with a lone surrogate (invalid UTF-16)');
  return JSON.stringify(s);
}

/**
 * RFC 3339 UTC with microseconds and a `Z`, like Python's format_time / Extended JSON dates.
 * @param {Date} d
 */
export function isoMicros(d) {
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new TypeError('cannot encode an invalid Date');
  const year = d.getUTCFullYear();
  if (year < 1 || year > 9999) throw new TypeError(`cannot encode a Date in year ${year} (1-9999)`);
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  return `${iso.slice(0, -1)}000Z`;
}

/** @param {Uint8Array} bytes @param {number} subType */
function binary(bytes, subType) {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  return `{"$binary":{"base64":"${b64}","subType":"${subType.toString(16).padStart(2, '0')}"}}`;
}

/** @param {number} n */
function number(n) {
  if (Number.isFinite(n)) return JSON.stringify(n);
  const v = Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity';
  return `{"$numberDouble":"${v}"}`;
}

/**
 * @param {unknown} v
 * @param {Set<object>} stack objects being written (cycle check)
 * @returns {string | undefined} undefined for a value JSON has no word for (skipped)
 */
function write(v, stack) {
  switch (typeof v) {
    case 'string':
      return str(v);
    case 'number':
      return number(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v >= INT64_MIN && v <= INT64_MAX ? `{"$numberLong":"${v}"}` : v.toString();
    case 'undefined':
      return undefined;
    case 'function':
    case 'symbol':
      throw new TypeError(`cannot encode a ${typeof v} into an event payload`);
    default:
  }
  if (v === null) return 'null';
  const o = /** @type {any} */ (v);
  if (o instanceof Date) return `{"$date":"${isoMicros(o)}"}`;
  if (typeof o._bsontype === 'string') return write(bson(o), stack);
  if (ArrayBuffer.isView(o)) {
    const bytes = o instanceof Uint8Array ? o : new Uint8Array(o.buffer, o.byteOffset, o.byteLength);
    return binary(bytes, 0);
  }
  if (o instanceof ArrayBuffer) return binary(new Uint8Array(o), 0);
  if (stack.has(o)) throw new TypeError('cannot encode a circular structure into an event payload');
  stack.add(o);
  try {
    if (Array.isArray(o) || o instanceof Set) {
      const parts = [];
      for (const x of o) parts.push(write(x, stack) ?? 'null');
      return `[${parts.join(',')}]`;
    }
    if (o instanceof Map) {
      const parts = [];
      for (const [k, x] of o) {
        const w = write(x, stack);
        if (w !== undefined) parts.push(`${str(String(k))}:${w}`);
      }
      return `{${parts.join(',')}}`;
    }
    if (typeof o.toJSON === 'function') return write(o.toJSON(''), stack);
    const parts = [];
    for (const k of Object.keys(o)) {
      const w = write(o[k], stack);
      if (w !== undefined) parts.push(`${str(k)}:${w}`);
    }
    return `{${parts.join(',')}}`;
  } finally {
    stack.delete(o);
  }
}

/** A bson value (mongodb driver) as canonical Extended JSON. @param {any} o */
function bson(o) {
  if ((o._bsontype === 'ObjectId' || o._bsontype === 'ObjectID') && typeof o.toHexString === 'function') {
    return { $oid: o.toHexString() };
  }
  if (typeof o.toExtendedJSON === 'function') return o.toExtendedJSON({ relaxed: false });
  throw new TypeError(`cannot encode a bson ${o._bsontype} without toExtendedJSON()`);
}

/**
 * The payload as the JSON text that is published (and signed).
 * @param {unknown} payload
 * @returns {string}
 */
export function dumpsPayload(payload) {
  return write(payload, new Set()) ?? 'null';
}

/** Extended JSON v2 wrappers for values JavaScript has no type for. */
export const ext = Object.freeze({
  /** @param {string} hex 24 hex digits */
  oid: (hex) => ({ $oid: String(hex) }),
  /** @param {string|number} value exact decimal text, e.g. "12.50" */
  decimal: (value) => ({ $numberDecimal: String(value) }),
  /** @param {bigint|number|string} value a 64-bit integer */
  long: (value) => ({ $numberLong: String(value) }),
  /** @param {number} value */
  int32: (value) => ({ $numberInt: String(value) }),
  /** @param {number|string} value a double, also "NaN", "Infinity", "-Infinity" */
  double: (value) => ({ $numberDouble: String(value) }),
  /** @param {string} value canonical UUID text */
  uuid: (value) => ({ $uuid: String(value) }),
  /** @param {Uint8Array} bytes @param {number} [subType] */
  binary: (bytes, subType = 0) => ({
    $binary: {
      base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
      subType: subType.toString(16).padStart(2, '0'),
    },
  }),
  /**
   * A float32 vector (BSON binary subtype 9, dtype float32, little-endian): 4 bytes a
   * dimension where a JSON array takes ~20, and a `vector` column reads it without parsing
   * a number per dimension. Values are rounded to float32 as Python's struct does.
   * @param {ArrayLike<number>} values
   */
  vector: (values) => {
    const f = Float32Array.from(values, Number);
    const bytes = new Uint8Array(2 + 4 * f.length);
    bytes[0] = 0x27; // dtype float32; bytes[1] = 0: no padding
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < f.length; i += 1) {
      if (!Number.isFinite(f[i])) {
        throw new TypeError(`a vector holds finite float32 numbers; element ${i} is not one`);
      }
      view.setFloat32(2 + 4 * i, f[i], true);
    }
    return ext.binary(bytes, 9);
  },
  /** @param {Date|string|number} value */
  date: (value) => ({ $date: isoMicros(value instanceof Date ? value : new Date(value)) }),
  /** @param {string} pattern @param {string} [options] */
  regex: (pattern, options = '') => ({ $regularExpression: { pattern, options } }),
  /** @param {number} t seconds @param {number} i increment */
  timestamp: (t, i) => ({ $timestamp: { t, i } }),
  minKey: () => ({ $minKey: 1 }),
  maxKey: () => ({ $maxKey: 1 }),
});
