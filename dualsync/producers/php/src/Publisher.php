<?php
// Publisher: what a legacy PHP application calls after each write, with the semantics of the
// Python SDK (dualsync/producers/publisher.py); the spool is in Spool.php.
//
// Happy path: one pipelined XADD round trip per call (phpredis). When Redis is unreachable
// the events are appended to a local spool file (flock-owned, fsynced) and the call still
// succeeds; while anything is spooled, new events are spooled behind it (per-key order
// holds). PHP has no background task: the drain runs at the next publish, flush() or close()
// once retryInterval has passed since Redis last failed (the time is shared through a marker
// file in the spool directory, so PHP-FPM requests do not each wait on a dead Redis).

declare(strict_types=1);

namespace Dualsync\Publisher;

/** Redis did not answer (connection refused, timeout, lost, or still loading its data). */
class UnreachableError extends \RuntimeException {}

/** What happened to one published event. */
final class Published
{
    public function __construct(
        public readonly string $eventId,
        public readonly string $stream,
        public readonly int $version,
        /** the stream entry id, or null while the event waits in the local spool */
        public readonly ?string $entryId,
        public readonly bool $spooled = false,
        public readonly bool $ref = false,
    ) {}
}

final class Publisher
{
    public const DRAIN_CHUNK = 500;
    /** the clock's high-water mark, kept in the spool directory */
    public const CLOCK_FILE = 'clock.hwm';

    public readonly EventBuilder $builder;
    private ?\Redis $redis;
    private bool $ownClient;
    private bool $connected = false;
    private ?Spool $spool;
    private bool $pending = false;
    private bool $closed = false;
    /** @var array<string, array<int, true>> per spool file: entry ends in Redis although their chunk failed part-way */
    private array $delivered = [];
    private float $retry;
    /** @var callable(string): void */
    private $log;

    /**
     * @param array{source: string, url?: string, host?: string, port?: int, timeout?: float,
     *   readTimeout?: float, password?: string, database?: int, redis?: \Redis, prefix?: string,
     *   shards?: int, maxPayloadBytes?: int, signKey?: string, spoolDir?: string,
     *   appVersions?: list<string>, retryInterval?: float, logger?: callable(string): void} $options
     */
    public function __construct(private array $options)
    {
        $spoolDir = $options['spoolDir'] ?? null;
        $this->builder = new EventBuilder(
            $options['source'] ?? '',
            $options['prefix'] ?? 'dualsync',
            $options['shards'] ?? 4,
            $options['maxPayloadBytes'] ?? 1048576,
            $options['signKey'] ?? null,
            $options['appVersions'] ?? [],
            $spoolDir !== null ? $spoolDir . '/' . self::CLOCK_FILE : null,
        );
        $this->redis = $options['redis'] ?? null;
        $this->ownClient = $this->redis === null;
        $this->connected = !$this->ownClient;
        $this->retry = (float) ($options['retryInterval'] ?? 1.0);
        $this->log = $options['logger'] ?? static function (string $m): void { error_log($m); };
        $this->spool = $spoolDir !== null ? new Spool($spoolDir, $this->log) : null;
        $this->pending = $this->spool !== null && $this->spool->adoptOrphans() > 0;
    }

    /** Publish one change event; never throws because Redis is down (with a spoolDir). */
    public function publish(string $entity, string $key, string $op = 'upsert', array|object|null $payload = null, ?int $version = null, ?string $traceId = null, \DateTimeInterface|string|null $occurredAt = null): Published
    {
        return $this->publishMany([compact('entity', 'key', 'op', 'payload', 'version', 'traceId', 'occurredAt')])[0];
    }

    /**
     * Publish many events in one pipelined round trip (order kept per key).
     * @param iterable<array{entity: string, key: string, op?: string, payload?: array|object|null,
     *   version?: int|null, traceId?: string|null, occurredAt?: \DateTimeInterface|string|null}> $specs
     * @return list<Published>
     */
    public function publishMany(iterable $specs): array
    {
        if ($this->closed) {
            throw new \LogicException('publisher is closed');
        }
        $built = $this->builder->buildMany($specs);
        if (!$built) {
            return [];
        }
        if ($this->pending) {
            $this->drainIfDue();
        }
        if (!$this->pending) {
            try {
                $ids = $this->xadd(array_map(static fn (BuiltEvent $b): array => [$b->stream, $b->fields], $built));
                return array_map(static fn (BuiltEvent $b, string $id): Published => new Published($b->eventId, $b->stream, $b->version, $id, false, $b->ref), $built, $ids);
            } catch (\RedisException|UnreachableError $e) {
                if ($this->spool === null) {
                    throw $e;
                }
                $this->failed();
                ($this->log)('dualsync: Redis unreachable, spooling ' . count($built) . ' event(s): ' . $e->getMessage());
            }
        }
        $this->spool->append(array_map(static fn (BuiltEvent $b): array => [$b->stream, $b->fields], $built));
        $this->pending = true;
        return array_map(static fn (BuiltEvent $b): Published => new Published($b->eventId, $b->stream, $b->version, null, true, $b->ref), $built);
    }

    private function failed(): void
    {
        $this->connected = !$this->ownClient;
        $this->spool?->markFailure(microtime(true));
    }

    private function drainIfDue(): void
    {
        if (microtime(true) - $this->spool->lastFailure() < $this->retry) {
            return;
        }
        try {
            $this->flush();
        } catch (\RedisException|UnreachableError) {
            // still down: flush() marked the failure; the events queue behind the spool
        } catch (\RuntimeException $e) {
            $this->spool->markFailure(microtime(true)); // an error reply or a disk error: retried later
            ($this->log)('dualsync: spool drain failed: ' . substr($e->getMessage(), 0, 200));
        }
    }

    private function client(): \Redis
    {
        if ($this->connected && $this->redis !== null) {
            return $this->redis;
        }
        $this->redis?->close();
        $r = RedisConnect::open($this->options, 1.0, 5.0);
        $this->redis = $r;
        $this->connected = true;
        return $r;
    }

    /**
     * XADD every entry in one pipelined round trip; per entry its id, or the error reply
     * (like redis-py's execute(raise_on_error=False)). A lost connection throws.
     * @param list<array{0: string, 1: array<string, string>}> $entries
     * @return list<string|\RuntimeException>
     */
    private function send(array $entries): array
    {
        $r = $this->client();
        $p = $r->multi(\Redis::PIPELINE);
        foreach ($entries as [$stream, $fields]) {
            $p->xAdd($stream, '*', $fields);
        }
        $replies = $p->exec();
        if (!is_array($replies) || count($replies) !== count($entries)) {
            throw new UnreachableError('pipeline failed: ' . ($r->getLastError() ?? 'no reply'));
        }
        $out = [];
        foreach ($replies as $reply) {
            if (is_string($reply)) {
                $out[] = $reply;
                continue;
            }
            $err = (string) ($r->getLastError() ?? 'XADD failed');
            if (str_starts_with($err, 'LOADING')) {
                $r->clearLastError();
                throw new UnreachableError($err); // redis-py counts LOADING as a connection error
            }
            $out[] = new \RuntimeException("XADD failed: {$err}");
        }
        $r->clearLastError();
        return $out;
    }

    /**
     * @param list<array{0: string, 1: array<string, string>}> $entries
     * @return list<string> entry ids
     */
    private function xadd(array $entries): array
    {
        $ids = $this->send($entries);
        foreach ($ids as $id) {
            if ($id instanceof \RuntimeException) {
                throw $id;
            }
        }
        return $ids;
    }

    /**
     * Drain the spool to Redis now; return how many entries were sent. Throws (RedisException
     * or UnreachableError) while Redis is still down, or the first error reply of a chunk; the
     * entries stay spooled from the first one not yet in Redis.
     */
    public function flush(): int
    {
        if ($this->spool === null) {
            return 0;
        }
        $sent = 0;
        try {
            while (($next = $this->spool->nextChunk(self::DRAIN_CHUNK)) !== null) {
                [$f, $chunk] = $next;
                $sent += $this->sendChunk($f, $chunk);
            }
        } catch (\RedisException|UnreachableError $e) {
            $this->failed();
            throw $e;
        }
        $this->pending = false;
        if ($sent) {
            ($this->log)("dualsync: spool drained, {$sent} event(s) sent");
        }
        return $sent;
    }

    /** @param list<array{0: string, 1: array<string, string>, 2: int}> $chunk */
    private function sendChunk(SpoolFile $f, array $chunk): int
    {
        $done = $this->delivered[$f->path] ?? [];
        $todo = array_values(array_filter($chunk, static fn (array $e): bool => !isset($done[$e[2]])));
        $error = null;
        foreach ($this->send(array_map(static fn (array $e): array => [$e[0], $e[1]], $todo)) as $i => $reply) {
            if ($reply instanceof \RuntimeException) {
                $error ??= $reply;
            } else {
                $done[$todo[$i][2]] = true;
            }
        }
        $committed = 0;
        while ($committed < count($chunk) && isset($done[$chunk[$committed][2]])) {
            unset($done[$chunk[$committed][2]]); // the longest prefix now in Redis
            $committed++;
        }
        if ($committed) {
            $this->spool->commit($f, $chunk[$committed - 1][2]);
        }
        if ($done) {
            $this->delivered[$f->path] = $done;
        } else {
            unset($this->delivered[$f->path]);
        }
        if ($error !== null) {
            throw $error;
        }
        return $committed;
    }

    /** True while events wait in the local spool. */
    public function spooling(): bool
    {
        return $this->pending;
    }

    /** Entries waiting in the spool (reads the files). */
    public function spooled(): int
    {
        return $this->spool?->count() ?? 0;
    }

    /** Try a last drain (when due), release the spool (undrained entries stay on disk). */
    public function close(): void
    {
        if ($this->closed) {
            return;
        }
        if ($this->pending) {
            $this->drainIfDue();
        }
        $this->spool?->close();
        $this->spool = null;
        if ($this->ownClient && $this->connected) {
            try {
                $this->redis?->close();
            } catch (\RedisException) {
            }
        }
        $this->connected = false;
        $this->closed = true;
    }

    public function __destruct()
    {
        $this->close();
    }
}
