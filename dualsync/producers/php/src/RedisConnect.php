<?php
// RedisConnect: the connection options shared by Publisher and ReadPath (host/port or url,
// timeouts, password, database), turned into a connected \Redis.

declare(strict_types=1);

namespace Dualsync\Publisher;

final class RedisConnect
{
    /**
     * A connected \Redis, or UnreachableError / RedisException when Redis does not answer.
     * @param array{url?: string, host?: string, port?: int, timeout?: float, readTimeout?: float,
     *   password?: string, database?: int} $o
     */
    public static function open(array $o, float $timeout, float $readTimeout): \Redis
    {
        $host = $o['host'] ?? '127.0.0.1';
        $port = $o['port'] ?? 6379;
        $password = $o['password'] ?? null;
        $db = $o['database'] ?? 0;
        if (isset($o['url'])) {
            $u = parse_url($o['url']) ?: throw new \InvalidArgumentException('url must be redis://[:password@]host[:port][/db]');
            $host = $u['host'] ?? $host;
            $port = $u['port'] ?? $port;
            $password = isset($u['pass']) ? rawurldecode($u['pass']) : $password;
            $db = isset($u['path']) && trim($u['path'], '/') !== '' ? (int) trim($u['path'], '/') : $db;
        }
        $r = new \Redis();
        if (!$r->connect($host, (int) $port, (float) ($o['timeout'] ?? $timeout), null, 0, (float) ($o['readTimeout'] ?? $readTimeout))) {
            throw new UnreachableError("cannot connect to Redis at {$host}:{$port}");
        }
        if ($password !== null && $password !== '') {
            $r->auth($password);
        }
        if ($db) {
            $r->select($db);
        }
        return $r;
    }
}
