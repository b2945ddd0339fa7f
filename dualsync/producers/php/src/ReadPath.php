<?php
// ReadPath: where a PHP application reads an entity from (legacy -> shadow -> postgres); the
// contract is dualsync/schema/readpath.py, the caching rules those of the Python SDK's client
// (dualsync/producers/readpath.py) minus its pub/sub listener.
//
// PHP requests are short-lived, so nothing listens for change messages here: a mode is read
// from the Redis hash `<prefix>:readpath` (entity -> mode, absent = legacy) and cached in the
// process for `ttl` seconds (default 0.5); a long-running worker that calls mode() in a loop
// sees a flip within ttl plus one round trip. When Redis is unreachable (connect failure or
// RedisException, short timeouts) the last known mode stands, logged once per outage; it
// never switches store on its own. With a `stateFile` the last known modes also survive the
// process, so a new PHP-FPM request that starts during an outage keeps them too; without
// one, an entity this process never read is `legacy`.

declare(strict_types=1);

namespace Dualsync\Publisher;

final class ReadPath
{
    public const LEGACY = 'legacy';
    public const SHADOW = 'shadow';
    public const POSTGRES = 'postgres';
    public const MODES = [self::LEGACY, self::SHADOW, self::POSTGRES];

    private ?\Redis $redis;
    private bool $ownClient;
    private bool $connected;
    private string $prefix;
    private float $ttl;
    /** @var array<string, array{0: string, 1: float}> entity => [mode, when read (monotonic s)] */
    private array $known = [];
    private bool $outage = false;
    /** @var array<string, true> "entity=raw" values already warned about */
    private array $unknownSeen = [];
    /** @var array<string, string>|null the state file's modes, once read */
    private ?array $saved = null;
    /** @var callable(string): void */
    private $log;

    /**
     * @param array{url?: string, host?: string, port?: int, timeout?: float, readTimeout?: float,
     *   password?: string, database?: int, redis?: \Redis, prefix?: string, ttl?: float,
     *   stateFile?: string, logger?: callable(string): void} $options
     */
    public function __construct(private array $options = [])
    {
        $this->redis = $options['redis'] ?? null;
        $this->ownClient = $this->redis === null;
        $this->connected = !$this->ownClient;
        $this->prefix = $options['prefix'] ?? 'dualsync';
        $this->ttl = (float) ($options['ttl'] ?? 0.5);
        $this->log = $options['logger'] ?? static function (string $m): void { error_log($m); };
    }

    /** The hash entity -> mode (dualsync.schema.streams.readpath_key). */
    public static function key(string $prefix): string
    {
        return "{$prefix}:readpath";
    }

    /** The channel the cutover command announces changes on (not listened to by PHP). */
    public static function channel(string $prefix): string
    {
        return "{$prefix}:readpath:changes";
    }

    /** Where $entity is read from now: 'legacy', 'shadow' or 'postgres'. Never throws for Redis. */
    public function mode(string $entity): string
    {
        $now = hrtime(true) / 1e9;
        $hit = $this->known[$entity] ?? null;
        if ($hit !== null && $now - $hit[1] < $this->ttl) {
            return $hit[0];
        }
        try {
            $raw = $this->client()->hGet(self::key($this->prefix), $entity);
        } catch (\RedisException|UnreachableError $e) {
            $this->connected = !$this->ownClient;
            $last = $hit[0] ?? $this->savedModes()[$entity] ?? self::LEGACY;
            if (!$this->outage) {
                $this->outage = true;
                ($this->log)("dualsync: read path cannot reach Redis, keeping the last known mode ({$entity}={$last}): "
                    . substr($e->getMessage(), 0, 200) . '; it never switches store on its own');
            }
            $this->known[$entity] = [$last, $now]; // asked again after ttl, not at every call
            return $last;
        }
        $this->outage = false;
        $mode = ($raw === false || $raw === null || $raw === '') ? self::LEGACY : (string) $raw;
        if (!in_array($mode, self::MODES, true)) {
            $last = $hit[0] ?? self::LEGACY;
            if (!isset($this->unknownSeen["{$entity}={$mode}"])) {
                $this->unknownSeen["{$entity}={$mode}"] = true;
                ($this->log)('dualsync: read path found an unknown mode ' . json_encode(substr($mode, 0, 64))
                    . " for {$entity}; keeping {$last} (modes: " . implode(', ', self::MODES)
                    . "; set it with dualsync's cutover command, not by hand)");
            }
            $mode = $last;
        }
        $this->known[$entity] = [$mode, $now];
        $this->save($entity, $mode);
        return $mode;
    }

    /**
     * Read $key from where the mode says: $legacy($key) in `legacy` and `shadow`, $postgres($key)
     * in `postgres`. In `shadow` the answer is the legacy one; comparing it with Postgres is a
     * feature of the Python SDK only.
     */
    public function read(string $entity, string $key, callable $legacy, callable $postgres): mixed
    {
        return $this->mode($entity) === self::POSTGRES ? $postgres($key) : $legacy($key);
    }

    /** Close the client this ReadPath opened (an app's own `redis` stays open). */
    public function close(): void
    {
        if ($this->ownClient && $this->connected) {
            try {
                $this->redis?->close();
            } catch (\RedisException) {
            }
        }
        $this->connected = false;
    }

    private function client(): \Redis
    {
        if ($this->connected && $this->redis !== null) {
            return $this->redis;
        }
        if (!$this->ownClient) {
            throw new UnreachableError('the Redis client given to ReadPath is not usable');
        }
        $this->redis = RedisConnect::open($this->options, 0.25, 0.25);
        $this->connected = true;
        return $this->redis;
    }

    /** @return array<string, string> */
    private function savedModes(): array
    {
        $file = $this->options['stateFile'] ?? null;
        if ($this->saved === null) {
            $data = $file !== null && is_file($file) ? json_decode((string) @file_get_contents($file), true) : null;
            $this->saved = is_array($data) ? array_filter($data, static fn ($m): bool => in_array($m, self::MODES, true)) : [];
        }
        return $this->saved;
    }

    /** Keep the mode in the state file when it differs from what the file says (atomic rename). */
    private function save(string $entity, string $mode): void
    {
        $file = $this->options['stateFile'] ?? null;
        if ($file === null || ($this->savedModes()[$entity] ?? null) === $mode) {
            return;
        }
        $this->saved = null; // another process may have written since: merge into what is there now
        $this->savedModes();
        $this->saved[$entity] = $mode;
        $tmp = $file . '.' . getmypid() . '.tmp';
        if (@file_put_contents($tmp, json_encode($this->saved, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES)) === false || !@rename($tmp, $file)) {
            @unlink($tmp);
            ($this->log)("dualsync: read path cannot write its state file {$file}: check that the directory exists and is writable");
        }
    }

    public function __destruct()
    {
        $this->close();
    }
}
