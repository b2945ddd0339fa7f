<?php
// The wire contract, as dualsync/schema/{codec,signing,streams,extjson}.py and
// dualsync/producers/{builder,clock}.py define it: validation, one version domain per entity,
// payload JSON with Extended JSON v2 wrappers, reference events, HMAC signatures, routing,
// UUIDv7 ids and the hybrid logical clock (µs).

declare(strict_types=1);

namespace Dualsync\Publisher;

/** A change event no worker could accept; nothing was sent. `$field` names the envelope field. */
class EnvelopeError extends \InvalidArgumentException
{
    public function __construct(string $message, public readonly string $field, public readonly string $reason = 'invalid_envelope')
    {
        parent::__construct("{$field}: {$message}");
    }
}

/**
 * An event's version would come from a different source than the entity's other events
 * (dualsync/producers/domains.py; same messages, with the option spelled appVersions).
 * Per entity a publisher uses one version domain: "app" (every event passes a version: a
 * counter, updatedAt in µs) or "clock" (none does). Mixing them gives a delete a µs clock
 * version (~1.7e15) that no later counter can beat, so a re-created key would stay deleted
 * forever. Thrown before anything is sent or spooled.
 */
class VersionDomainError extends EnvelopeError
{
    private const APP_EXAMPLE = [
        'delete' => 'the counter + 1 or the deletion time in µs',
        'upsert' => 'the counter or updatedAt in µs',
    ];

    public function __construct(public readonly string $entity, public readonly string $domain, string $op, bool $declared)
    {
        if ($domain === 'app') {
            $tail = $declared
                ? 'or remove it from appVersions and never pass versions for it'
                : 'or never pass versions for it';
            $example = self::APP_EXAMPLE[$op] ?? 'the app version';
            $message = "entity '{$entity}' takes versions from the app (counter/updatedAt); pass "
                . "version= for its {$op}s too (e.g. {$example}), {$tail}";
        } else {
            $message = "entity '{$entity}' takes versions from the publisher's clock (its first event had "
                . 'no version=); never pass version= for it, or pass version= for every one of its '
                . 'events, deletes included (declare it in appVersions to enforce that)';
        }
        parent::__construct($message, 'version', 'version_domain');
    }
}

/** The clock's high-water mark cannot be read; versions could regress. */
class ClockStateError extends \RuntimeException {}

/** Extended JSON v2 wrappers for values PHP has no type for (use them inside payloads). */
final class Ext
{
    public static function oid(string $hex): array { return ['$oid' => $hex]; }
    public static function decimal(string|int|float $value): array { return ['$numberDecimal' => (string) $value]; }
    public static function long(int|string $value): array { return ['$numberLong' => (string) $value]; }
    public static function int32(int $value): array { return ['$numberInt' => (string) $value]; }
    public static function double(float|string $value): array
    {
        $text = is_string($value) ? $value : (is_finite($value) ? json_encode($value, Json::FLAGS) : Json::doubleText($value));
        return ['$numberDouble' => $text];
    }
    public static function uuid(string $value): array { return ['$uuid' => $value]; }
    public static function binary(string $bytes, int $subType = 0): array
    {
        return ['$binary' => ['base64' => base64_encode($bytes), 'subType' => sprintf('%02x', $subType)]];
    }
    /**
     * A float32 vector (BSON binary subtype 9, dtype float32, little-endian): 4 bytes a
     * dimension where a JSON array takes ~20, and a `vector` column reads it without
     * parsing a number per dimension; byte for byte what pymongo's Binary.from_vector writes.
     *
     * @param list<int|float> $values
     */
    public static function vector(array $values): array
    {
        foreach ($values as $i => $v) {
            if (!is_int($v) && !is_float($v)) {
                throw new \TypeError("a vector holds numbers; element $i is " . get_debug_type($v));
            }
        }
        $packed = pack('g*', ...array_values($values));
        foreach (array_values(unpack('g*', $packed) ?: []) as $i => $f) {
            if (!is_finite($f)) {
                throw new \TypeError("a vector holds finite float32 numbers; element $i is not one");
            }
        }
        return self::binary("\x27\x00" . $packed, 9);
    }
    public static function date(\DateTimeInterface|string $value): array
    {
        return ['$date' => Json::isoMicros(is_string($value) ? new \DateTimeImmutable($value) : $value)];
    }
    public static function regex(string $pattern, string $options = ''): array
    {
        return ['$regularExpression' => ['pattern' => $pattern, 'options' => $options]];
    }
    public static function timestamp(int $t, int $i): array { return ['$timestamp' => ['t' => $t, 'i' => $i]]; }
    public static function minKey(): array { return ['$minKey' => 1]; }
    public static function maxKey(): array { return ['$maxKey' => 1]; }
}

/** Payload JSON: DateTimeInterface -> $date (µs, UTC), NAN/INF -> $numberDouble, others as json_encode. */
final class Json
{
    public const FLAGS = JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION | JSON_THROW_ON_ERROR;

    public static function isoMicros(\DateTimeInterface $d): string
    {
        $utc = \DateTimeImmutable::createFromInterface($d)->setTimezone(new \DateTimeZone('UTC'));
        $year = (int) $utc->format('Y');
        if ($year < 1 || $year > 9999) {
            throw new \TypeError("cannot encode a date in year {$year} (1-9999)");
        }
        return $utc->format('Y-m-d\TH:i:s.u\Z');
    }

    public static function doubleText(float $v): string
    {
        return is_nan($v) ? 'NaN' : ($v > 0 ? 'Infinity' : '-Infinity');
    }

    /** The payload as the JSON text that is published (and signed). */
    public static function dumps(array|object $payload): string
    {
        if ($payload === []) {
            return '{}'; // the document is an object, even when empty
        }
        $precision = ini_set('serialize_precision', '-1'); // shortest round-trip floats, whatever php.ini says
        try {
            return json_encode(self::walk($payload, 0), self::FLAGS);
        } catch (\JsonException $e) {
            throw new \TypeError('cannot encode the payload as JSON: ' . $e->getMessage() . ' (wrap binary strings in Ext::binary())');
        } finally {
            if ($precision !== false && $precision !== '-1') {
                ini_set('serialize_precision', $precision);
            }
        }
    }

    private static function walk(mixed $v, int $depth): mixed
    {
        if ($depth > 512) {
            throw new \TypeError('payload nested deeper than 512 levels (a cycle?)');
        }
        if (is_float($v)) {
            return is_finite($v) ? $v : ['$numberDouble' => self::doubleText($v)];
        }
        if ($v === null || is_scalar($v)) {
            return $v;
        }
        if (is_array($v)) {
            foreach ($v as $k => $x) {
                if (!is_scalar($x) || is_float($x)) {
                    $v[$k] = self::walk($x, $depth + 1);
                }
            }
            return $v;
        }
        if ($v instanceof \DateTimeInterface) {
            return ['$date' => self::isoMicros($v)];
        }
        if ($v instanceof \JsonSerializable) { // mongodb extension BSON types give Extended JSON here
            return self::walk($v->jsonSerialize(), $depth + 1);
        }
        if ($v instanceof \stdClass) {
            $o = new \stdClass();
            foreach (get_object_vars($v) as $k => $x) {
                $o->{$k} = self::walk($x, $depth + 1);
            }
            return $o;
        }
        if ($v instanceof \Traversable) {
            return self::walk(iterator_to_array($v), $depth + 1);
        }
        if (is_object($v)) {
            return self::walk((object) get_object_vars($v), $depth + 1);
        }
        throw new \TypeError('cannot encode a value of type ' . get_debug_type($v) . ' into an event payload');
    }
}

/**
 * Hybrid logical clock in µs, one per process: max(wall µs, last + 1); and UUIDv7 ids.
 *
 * With a state file (the spool directory's `clock.hwm`, which the Python and Node SDKs keep
 * too) every batch reads and raises the high-water mark under an flock of `clock.hwm.lock`,
 * so versions keep increasing across PHP requests and processes on one machine, even when
 * the wall clock steps back. PHP requests are short: instead of reserving a lease ahead (as
 * long-lived Python/Node processes do, which would push the clock ahead by a lease per
 * request) it stores the exact highest value handed out, by atomic rename without fsync:
 * after a power cut the wall clock is past that value anyway.
 */
final class Clock
{
    private static int $last = 0;

    public static function wallMicros(): int
    {
        $t = gettimeofday();
        return $t['sec'] * 1_000_000 + $t['usec'];
    }

    public static function now(): int
    {
        $wall = self::wallMicros();
        self::$last = $wall > self::$last ? $wall : self::$last + 1;
        return self::$last;
    }

    /**
     * Run $fn (which calls now()) with the state file's mark folded in before and raised after.
     * @template T
     * @param callable(): T $fn
     * @return T
     */
    public static function withState(?string $stateFile, callable $fn): mixed
    {
        if ($stateFile === null) {
            return $fn();
        }
        $dir = dirname($stateFile);
        if (!is_dir($dir)) {
            @mkdir($dir, 0777, true);
        }
        $lock = @fopen($stateFile . '.lock', 'c');
        if ($lock === false || !flock($lock, LOCK_EX)) {
            throw new ClockStateError("cannot lock {$stateFile}.lock");
        }
        try {
            $mark = self::readMark($stateFile);
            self::$last = max(self::$last, $mark);
            $before = self::$last;
            $result = $fn();
            if (self::$last > $before || self::$last > $mark) {
                $tmp = $stateFile . '.tmp';
                if (@file_put_contents($tmp, (string) self::$last) === false || !@rename($tmp, $stateFile)) {
                    throw new ClockStateError("cannot write {$stateFile}");
                }
            }
            return $result;
        } finally {
            flock($lock, LOCK_UN);
            fclose($lock);
        }
    }

    private static function readMark(string $path): int
    {
        clearstatcache(true, $path);
        if (!is_file($path)) {
            return 0;
        }
        $text = trim((string) file_get_contents($path));
        if (!ctype_digit($text)) {
            throw new ClockStateError(
                "clock state file {$path} holds '" . substr($text, 0, 30) . "', not a µs version; it is only "
                . 'written by atomic rename, so something else changed it: restore it, or delete it if no '
                . 'publisher on this directory ever ran with its clock ahead of the wall'
            );
        }
        return (int) $text;
    }

    /** A UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, 74 random bits, variant 10. */
    public static function uuid7(): string
    {
        $t = gettimeofday();
        $ms = $t['sec'] * 1000 + intdiv($t['usec'], 1000);
        $r = random_bytes(10);
        $b = substr(pack('J', $ms), 2) . chr(0x70 | (ord($r[0]) & 0x0f)) . $r[1] . chr(0x80 | (ord($r[2]) & 0x3f)) . substr($r, 3);
        $h = bin2hex($b);
        return substr($h, 0, 8) . '-' . substr($h, 8, 4) . '-' . substr($h, 12, 4) . '-' . substr($h, 16, 4) . '-' . substr($h, 20);
    }
}

/** One ready-to-send stream entry. */
final class BuiltEvent
{
    /** @param array<string, string> $fields */
    public function __construct(
        public readonly string $stream,
        public readonly array $fields,
        public readonly string $eventId,
        public readonly int $version,
        public readonly bool $ref,
    ) {}
}

/** Validates, versions, routes, sizes and signs events (dualsync/producers/builder.py). */
final class EventBuilder
{
    private const ENTITY = '/^[a-z][a-z0-9_]{0,62}\z/';
    private const SOURCE = '/^[A-Za-z0-9_.:-]{1,128}\z/';

    /** @var array<string, string> entity => 'app' | 'clock' */
    public array $domains = [];
    /** @var array<string, true> entities declared upfront in appVersions */
    private array $declared = [];

    /** @param list<string> $appVersions entities whose versions always come from the app */
    public function __construct(
        public readonly string $source,
        public readonly string $prefix = 'dualsync',
        public readonly int $shards = 4,
        public readonly int $maxPayloadBytes = 1048576,
        public readonly ?string $signKey = null,
        array $appVersions = [],
        public readonly ?string $clockFile = null,
    ) {
        if (!preg_match(self::SOURCE, $source)) {
            throw new EnvelopeError("'{$source}' is not a source name", 'source');
        }
        if ($shards < 1) {
            throw new \InvalidArgumentException('shards must be a positive integer');
        }
        foreach ($appVersions as $e) {
            $this->domains[$e] = 'app';
            $this->declared[$e] = true;
        }
    }

    public static function shardFor(string $entity, string $key, int $shards): int
    {
        return crc32("{$entity}\x1f{$key}") % $shards;
    }

    public static function streamKey(string $prefix, int $shard): string
    {
        return "{$prefix}:events:{{$shard}}";
    }

    /** The bytes that are signed: sorted `name=value` lines, `sig` excluded (signing.py). */
    public static function canonical(array $fields): string
    {
        unset($fields['sig']);
        ksort($fields, SORT_STRING);
        $lines = [];
        foreach ($fields as $k => $v) {
            $lines[] = "{$k}={$v}";
        }
        return implode("\n", $lines);
    }

    public static function formatTime(\DateTimeInterface|string $t): string
    {
        return Json::isoMicros(is_string($t) ? new \DateTimeImmutable($t) : $t);
    }

    /**
     * Build a batch, all or nothing; events without occurredAt share one timestamp. Like the
     * Python builder: every op is checked, then every version domain, then each event is
     * built; the domains of entities new in the batch are remembered only when all of it was.
     * @param iterable<array<string, mixed>> $specs
     * @return list<BuiltEvent>
     */
    public function buildMany(iterable $specs): array
    {
        $items = [];
        foreach ($specs as $spec) {
            $op = $spec['op'] ?? 'upsert';
            if ($op !== 'upsert' && $op !== 'delete') {
                throw new EnvelopeError("must be 'upsert' or 'delete', got " . var_export($op, true), 'op');
            }
            $items[] = [$spec, $op];
        }
        $fresh = [];
        foreach ($items as [$spec, $op]) {
            $entity = $spec['entity'] ?? null;
            if (!is_string($entity)) {
                continue; // refused by the entity check below
            }
            $domain = ($spec['version'] ?? null) === null ? 'clock' : 'app';
            $known = $this->domains[$entity] ?? $fresh[$entity] ?? null;
            if ($known === null) {
                $fresh[$entity] = $domain;
            } elseif ($known !== $domain) {
                throw new VersionDomainError($entity, $known, $op, isset($this->declared[$entity]));
            }
        }
        $now = self::formatTime(new \DateTimeImmutable('now'));
        $out = Clock::withState($this->clockFile, function () use ($items, $now): array {
            $built = [];
            foreach ($items as [$spec, $op]) {
                $built[] = $this->build($spec, $op, $now);
            }
            return $built;
        });
        foreach ($fresh as $entity => $domain) {
            $this->domains[$entity] = $domain;
        }
        return $out;
    }

    private static function textOk(mixed $s, int $max): bool
    {
        return is_string($s) && $s !== '' && !str_contains($s, "\0") && preg_match('//u', $s) === 1
            && (strlen($s) <= $max || preg_match_all('/./su', $s) <= $max);
    }

    /** @param array<string, mixed> $spec */
    private function build(array $spec, string $op, string $now): BuiltEvent
    {
        $entity = $spec['entity'] ?? null;
        $key = $spec['key'] ?? null;
        $payload = $spec['payload'] ?? null;
        $version = $spec['version'] ?? null;
        $traceId = $spec['traceId'] ?? null;
        if (!is_string($entity) || !preg_match(self::ENTITY, $entity)) {
            throw new EnvelopeError(var_export($entity, true) . ' is not an entity name', 'entity');
        }
        if (!self::textOk($key, 512)) {
            throw new EnvelopeError('must be 1-512 characters (UTF-8) without NUL', 'key');
        }
        if ($op === 'upsert' && $payload === null) {
            throw new EnvelopeError('an upsert needs the full document', 'payload');
        }
        if ($op === 'upsert' && !(is_object($payload) || (is_array($payload) && ($payload === [] || !array_is_list($payload))))) {
            throw new EnvelopeError('must be an object (the document): an associative array or an object', 'payload');
        }
        if ($traceId !== null && !self::textOk($traceId, 128)) {
            throw new EnvelopeError('must be 1-128 characters (UTF-8) without NUL', 'trace_id');
        }
        if ($version !== null && (!is_int($version) || $version < 0)) {
            throw new EnvelopeError('must be a non-negative integer', 'version');
        }

        $payloadJson = null;
        $ref = false;
        if ($op === 'upsert') {
            $raw = Json::dumps($payload);
            if (strlen($raw) > $this->maxPayloadBytes) {
                $ref = true; // too big for the stream: the worker re-reads the legacy record
            } else {
                $payloadJson = $raw;
            }
        }
        $v = $version ?? Clock::now(); // app versions never feed the clock
        $eventId = Clock::uuid7();
        $occurred = isset($spec['occurredAt']) ? self::formatTime($spec['occurredAt']) : $now;
        $fields = [
            'event_id' => $eventId,
            'source' => $this->source,
            'entity' => $entity,
            'key' => $key,
            'op' => $op,
            'version' => (string) $v,
            'occurred_at' => $occurred,
            'schema_version' => '1',
        ];
        if ($payloadJson !== null) {
            $fields['payload'] = $payloadJson;
        }
        if ($ref) {
            $fields['ref'] = 'true';
        }
        if ($traceId !== null) {
            $fields['trace_id'] = $traceId;
        }
        if ($this->signKey !== null) {
            $fields['sig'] = hash_hmac('sha256', self::canonical($fields), $this->signKey);
        }
        $stream = self::streamKey($this->prefix, self::shardFor($entity, $key, $this->shards));
        return new BuiltEvent($stream, $fields, $eventId, $v, $ref);
    }
}
