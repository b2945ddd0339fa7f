<?php
// Contract script of tests/test_php_publisher.py (and a worked example of the API):
//   php contract.php PLAN.json RESULTS.json
// publishes every call of the plan's groups (see tests/_polyglot.py) and writes what each
// call returned, or the error it threw. Plan values use typed markers ({"~": "date", ...})
// for what JSON cannot say; they become the PHP values an application would pass.
// A {"wait": true} step prints READY and waits for a line on stdin (the test starts Redis).

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Dualsync\Publisher\EnvelopeError;
use Dualsync\Publisher\Ext;
use Dualsync\Publisher\Publisher;
use Dualsync\Publisher\UnreachableError;

/** Like the mongodb extension's BSON types: JsonSerializable to Extended JSON. */
final class FakeObjectId implements JsonSerializable
{
    public function __construct(private string $hex) {}

    public function jsonSerialize(): array
    {
        return ['$oid' => $this->hex];
    }
}

$flip = 0;

function toPhp(mixed $v): mixed
{
    global $flip;
    if (is_array($v)) {
        return array_map('toPhp', $v);
    }
    if (!$v instanceof stdClass) {
        return $v;
    }
    $props = get_object_vars($v);
    if (!array_key_exists('~', $props)) {
        $out = array_map('toPhp', $props);
        // An application's documents are associative arrays; an empty object, or one whose
        // keys PHP would turn into a list ("0", "1", ...), has to stay an object.
        return ($out === [] || array_is_list($out)) ? (object) $out : $out;
    }
    $x = $props['v'] ?? null;
    $flip++;
    return match ($props['~']) {
        'date' => $flip % 2
            ? new DateTimeImmutable($x)
            : (new DateTime($x))->setTimezone(new DateTimeZone('Asia/Kolkata')),
        'oid' => $flip % 2 ? Ext::oid($x) : new FakeObjectId($x),
        'decimal' => Ext::decimal($x),
        'long' => (int) $x,
        'bytes' => Ext::binary(base64_decode($x)),
        'binary' => Ext::binary(base64_decode($x), $props['sub']),
        'uuid' => Ext::uuid($x),
        'vector' => Ext::vector($x),
        'nan' => NAN,
        'inf' => INF,
        '-inf' => -INF,
        'ejson' => toPhp($x),
        'map' => array_combine(array_map(fn ($p) => (string) $p[0], $x), array_map(fn ($p) => toPhp($p[1]), $x)),
        'set' => array_map('toPhp', $x),
    };
}

function kind(EnvelopeError $e): string
{
    $name = (new ReflectionClass($e))->getShortName();
    return $name === 'VersionDomainError' ? $name : "EnvelopeError:{$e->field}";
}

[$planFile, $outFile] = array_slice($argv, 1);
$plan = json_decode(file_get_contents($planFile), false, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
$started = hrtime(true);
$out = [];
foreach ($plan->groups as $group) {
    $o = $group->publisher;
    $options = [
        'url' => $o->url ?? getenv('REDIS_URL'),
        'source' => $o->source,
        'prefix' => $o->prefix,
        'shards' => $o->shards,
        'maxPayloadBytes' => $o->maxPayloadBytes,
        'appVersions' => $o->appVersions,
        'retryInterval' => 0.05,
        'logger' => static function (string $m): void { fwrite(STDERR, $m . "\n"); },
    ];
    if ($o->signKey !== null) {
        $options['signKey'] = $o->signKey;
    }
    if ($o->spoolDir !== null) {
        $options['spoolDir'] = $o->spoolDir;
    }
    $pub = new Publisher($options);
    $calls = [];
    foreach ($group->calls as $call) {
        if (isset($call->flush)) {
            $pub->flush();
            continue;
        }
        if (isset($call->wait)) {
            fwrite(STDOUT, "READY\n");
            fflush(STDOUT);
            fgets(STDIN);
            continue;
        }
        if (isset($call->drained)) { // PHP has no background task: retry the drain until it succeeds
            $deadline = microtime(true) + 20;
            while (true) {
                try {
                    $pub->flush();
                    break;
                } catch (RedisException|UnreachableError $e) {
                    if (microtime(true) > $deadline) {
                        throw $e;
                    }
                    usleep(50_000);
                }
            }
            continue;
        }
        $specs = array_map(static fn (stdClass $s): array => [
            'entity' => $s->entity,
            'key' => $s->key,
            'op' => $s->op,
            'payload' => $s->payload === null ? null : toPhp($s->payload),
            'version' => $s->version === null ? null : (int) $s->version,
            'traceId' => $s->traceId,
            'occurredAt' => $s->occurredAt,
        ], $call->specs);
        try {
            if ($call->many) {
                $got = $pub->publishMany($specs);
            } else {
                $s = $specs[0];
                $got = [$pub->publish($s['entity'], $s['key'], $s['op'], $s['payload'], $s['version'], $s['traceId'], $s['occurredAt'])];
            }
            $calls[] = ['ok' => true, 'published' => array_map(static fn ($p) => [
                'eventId' => $p->eventId,
                'stream' => $p->stream,
                'version' => (string) $p->version,
                'entryId' => $p->entryId,
                'spooled' => $p->spooled,
                'ref' => $p->ref,
            ], $got)];
        } catch (EnvelopeError $e) {
            $calls[] = ['ok' => false, 'error' => ['kind' => kind($e), 'message' => $e->getMessage()]];
        }
    }
    $pub->close();
    $out[] = ['name' => $group->name, 'calls' => $calls];
}
file_put_contents($outFile, json_encode(['groups' => $out, 'elapsedMs' => (hrtime(true) - $started) / 1e6], JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR));
