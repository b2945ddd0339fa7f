<?php
// Follower script of tests/test_readpath_polyglot.py (and a worked example of ReadPath in a
// long-running PHP worker):
//   REDIS_URL=redis://... php readpath_follow.php PREFIX ENTITY TTL_S[,TTL_S...] [STATE_FILE]
// one ReadPath per TTL, polling mode(ENTITY) every 10 ms; JSON lines on stdout:
//   {"event":"ready","t":<epoch ms>,"modes":[...]}              all read once
//   {"event":"change","t":<epoch ms>,"client":i,"from":m,"mode":m} a client's mode changed
//   {"event":"report","t":<epoch ms>,"modes":[...]}             answer to a "report" line on stdin
// "quit" (or the end of stdin) exits 0. Warnings go to stderr (error_log of the CLI).

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Dualsync\Publisher\ReadPath;

[, $prefix, $entity, $ttls] = $argv + [null, null, null, null];
if ($prefix === null || $entity === null || $ttls === null) {
    fwrite(STDERR, "usage: php readpath_follow.php PREFIX ENTITY TTL_S[,TTL_S...] [STATE_FILE]\n");
    exit(2);
}
$options = ['url' => getenv('REDIS_URL') ?: 'redis://127.0.0.1:6379', 'prefix' => $prefix];
if (isset($argv[4])) {
    $options['stateFile'] = $argv[4];
}
$say = static function (array $line): void {
    echo json_encode($line + ['t' => (int) floor(microtime(true) * 1000)]), "\n";
};

$paths = array_map(static fn (string $ttl): ReadPath => new ReadPath($options + ['ttl' => (float) $ttl]), explode(',', $ttls));
$seen = array_map(static fn (ReadPath $p): string => $p->mode($entity), $paths);
$say(['event' => 'ready', 'modes' => $seen]);

stream_set_blocking(STDIN, false);
$buffer = '';
for (;;) {
    foreach ($paths as $i => $p) {
        $mode = $p->mode($entity);
        if ($mode !== $seen[$i]) {
            $say(['event' => 'change', 'client' => $i, 'from' => $seen[$i], 'mode' => $mode]);
            $seen[$i] = $mode;
        }
    }
    $read = [STDIN];
    $none = null;
    if (stream_select($read, $none, $none, 0, 10000) > 0) { // the 10 ms tick, woken by stdin
        $chunk = fread(STDIN, 4096);
        if ($chunk === '' || $chunk === false) {
            if (feof(STDIN)) {
                exit(0);
            }
            continue;
        }
        $buffer .= $chunk;
        while (($nl = strpos($buffer, "\n")) !== false) {
            $cmd = trim(substr($buffer, 0, $nl));
            $buffer = substr($buffer, $nl + 1);
            if ($cmd === 'report') {
                $say(['event' => 'report', 'modes' => $seen]);
            } elseif ($cmd === 'quit') {
                exit(0);
            }
        }
    }
}
