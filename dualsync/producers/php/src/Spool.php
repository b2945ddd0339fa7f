<?php
// The local spool (dualsync/producers/spool.py's file protocol, so a Python or Node publisher
// can drain a PHP spool and the other way round): one JSON line `[stream, fields]` per event
// in `spool-<pid>-<uuid7>.jsonl`, owned through an flock and fsynced before append returns
// (a new file's directory entry too); the drain position is committed to `<name>.pos` (fsync,
// atomic rename, directory fsync) after each chunk reaches Redis; a drained file is removed.
// Only complete lines are events: a torn tail (a crash mid-append) is ignored and does not
// keep a drained file alive; a failed append is cut back at once; a corrupt line is moved to
// `<name>.bad`, logged by file and offset (never its content), and the drain goes on.

declare(strict_types=1);

namespace Dualsync\Publisher;

/** fsync a directory, so creates, renames and unlinks in it survive a power cut. */
function fsync_dir(string $dir): void
{
    $d = @fopen($dir, 'r');
    if ($d !== false) {
        fsync($d);
        fclose($d);
    }
}

/** Replace $path with $data: written and fsynced aside, renamed, directory fsynced. */
function write_atomic(string $path, string $data): void
{
    $tmp = $path . '.tmp';
    $f = fopen($tmp, 'w') ?: throw new \RuntimeException("cannot write {$tmp}");
    try {
        if (fwrite($f, $data) !== strlen($data) || !fflush($f) || !fsync($f)) {
            throw new \RuntimeException("cannot write {$tmp}");
        }
    } finally {
        fclose($f);
    }
    rename($tmp, $path) ?: throw new \RuntimeException("cannot rename {$tmp}");
    fsync_dir(dirname($path));
}

final class SpoolFile
{
    public readonly string $posPath;
    public readonly string $badPath;
    public int $pos;
    /** the offset after the last complete line; a torn tail lies beyond it */
    public int $end;

    /** @param resource $fh */
    public function __construct(public readonly string $path, public $fh, bool $new)
    {
        $base = substr($path, 0, -strlen('.jsonl'));
        $this->posPath = $base . '.pos';
        $this->badPath = $base . '.bad';
        $this->pos = $new ? 0 : self::readPos($this->posPath);
        $this->end = $new ? 0 : $this->completeEnd();
    }

    private static function readPos(string $path): int
    {
        if (!is_file($path)) {
            return 0;
        }
        $text = trim((string) file_get_contents($path));
        return ctype_digit($text) ? (int) $text : 0; // only an outside hand writes anything else
    }

    private function completeEnd(): int
    {
        $pos = $this->size();
        while ($pos > 0) {
            $start = max(0, $pos - 65536);
            fseek($this->fh, $start);
            $i = strrpos((string) fread($this->fh, $pos - $start), "\n");
            if ($i !== false) {
                return $start + $i + 1;
            }
            $pos = $start;
        }
        return 0;
    }

    public function size(): int
    {
        clearstatcache();
        return fstat($this->fh)['size'];
    }

    public function append(string $data): void
    {
        if ($this->size() !== $this->end) {
            ftruncate($this->fh, $this->end); // an earlier failed append could not be cut back
        }
        fseek($this->fh, $this->end);
        if (fwrite($this->fh, $data) !== strlen($data) || !fflush($this->fh) || !fsync($this->fh)) {
            ftruncate($this->fh, $this->end); // the append did not happen: no torn tail
            throw new \RuntimeException("cannot write spool file {$this->path}");
        }
        $this->end += strlen($data);
    }

    /** @return list<array{0: int, 1: string}> (offset, line) of complete lines after the position */
    public function lines(int $limit): array
    {
        fseek($this->fh, $this->pos);
        $offset = $this->pos;
        $out = [];
        while ($offset < $this->end && count($out) < $limit) {
            $line = fgets($this->fh);
            if ($line === false) {
                break;
            }
            $out[] = [$offset, $line];
            $offset += strlen($line);
        }
        return $out;
    }

    public function commit(int $pos): void
    {
        write_atomic($this->posPath, (string) $pos);
        $this->pos = $pos;
    }

    /** @param callable(string): void $log */
    public function quarantine(int $offset, string $line, callable $log): void
    {
        $new = !is_file($this->badPath);
        $bad = fopen($this->badPath, 'a');
        fwrite($bad, $line);
        fflush($bad);
        fsync($bad);
        fclose($bad);
        if ($new) {
            fsync_dir(dirname($this->path));
        }
        $log("dualsync: corrupt spool line in {$this->path} at offset {$offset} (" . strlen($line) . " bytes) moved to {$this->badPath}");
        $this->commit($offset + strlen($line));
    }

    /** @param callable(string): void $log */
    public function remove(callable $log): void
    {
        $size = $this->size();
        if ($size > $this->end) {
            $log("dualsync: spool {$this->path}: torn tail of " . ($size - $this->end) . " bytes at {$this->end} dropped");
        }
        @unlink($this->path);
        fsync_dir(dirname($this->path)); // the data file is gone for good before its position
        @unlink($this->posPath);
        @unlink($this->posPath . '.tmp');
        $this->close();
    }

    public function close(): void
    {
        if (is_resource($this->fh)) {
            flock($this->fh, LOCK_UN);
            fclose($this->fh);
        }
    }
}

/**
 * The spool directory of one publisher: its own file plus adopted orphans (spool.py's
 * protocol: JSON lines `[stream, fields]`, `.pos` drain positions, flock ownership, torn
 * tails ignored, corrupt lines moved to `.bad`).
 */
final class Spool
{
    private ?SpoolFile $own = null;
    /** @var list<SpoolFile> in drain order */
    private array $files = [];
    /** @var callable(string): void */
    private $log;

    /** @param callable(string): void $log */
    public function __construct(public readonly string $directory, callable $log)
    {
        $this->log = $log;
    }

    /** @return resource|null the open, flock-ed file, or null when another publisher owns it */
    private static function lock(string $path, bool $create)
    {
        $fh = @fopen($path, $create ? 'x+' : 'r+');
        if ($fh === false) {
            return null;
        }
        if (!flock($fh, LOCK_EX | LOCK_NB)) {
            fclose($fh);
            return null;
        }
        if (fstat($fh)['nlink'] === 0) { // drained and removed by its owner meanwhile
            fclose($fh);
            return null;
        }
        return $fh;
    }

    private function ownFile(): SpoolFile
    {
        if ($this->own === null) {
            // A PHP request is short-lived: append behind the newest adopted file (we hold its
            // lock and it ends with a complete line) rather than leave one file per request.
            $last = end($this->files);
            if ($last !== false && $last->size() === $last->end) {
                return $this->own = $last;
            }
            if (!is_dir($this->directory)) {
                if (!@mkdir($this->directory, 0777, true) && !is_dir($this->directory)) {
                    throw new \RuntimeException("cannot create spool directory {$this->directory}");
                }
                fsync_dir(dirname($this->directory));
            }
            $path = $this->directory . '/spool-' . getmypid() . '-' . Clock::uuid7() . '.jsonl';
            $fh = self::lock($path, true) ?? throw new \RuntimeException("cannot lock new spool file {$path}");
            fsync_dir($this->directory); // the new name survives a power cut
            $this->own = new SpoolFile($path, $fh, true);
            $this->files[] = $this->own;
        }
        return $this->own;
    }

    /** Take over spool files whose owner died; return how many have entries to drain. */
    public function adoptOrphans(): int
    {
        $paths = glob($this->directory . '/spool-*.jsonl') ?: [];
        // Creation order: by the uuid7 after the pid (Python sorts by the whole name).
        $key = static fn (string $p): array => [preg_replace('/^spool-\d+-/', '', basename($p)), $p];
        usort($paths, static fn (string $a, string $b): int => $key($a) <=> $key($b));
        $known = array_map(static fn (SpoolFile $f): string => $f->path, $this->files);
        $adopted = 0;
        foreach ($paths as $path) {
            if (in_array($path, $known, true) || ($fh = self::lock($path, false)) === null) {
                continue;
            }
            $f = new SpoolFile($path, $fh, false);
            if ($f->pos >= $f->end) {
                $f->remove($this->log); // drained (its removal was lost) or only a torn tail
                continue;
            }
            array_splice($this->files, count($this->files) - ($this->own !== null ? 1 : 0), 0, [$f]);
            $adopted++;
        }
        return $adopted;
    }

    /** @param list<array{0: string, 1: array<string, string>}> $entries appended durably (fsync), or not at all */
    public function append(array $entries): void
    {
        $data = '';
        foreach ($entries as $e) {
            $data .= json_encode($e, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR) . "\n";
        }
        $this->ownFile()->append($data);
    }

    public function pending(): bool
    {
        foreach ($this->files as $f) {
            if ($f->pos < $f->end) {
                return true;
            }
        }
        return false;
    }

    /** @return array{0: string, 1: array<string, string>}|null */
    private static function parse(string $line): ?array
    {
        $v = json_decode($line, true);
        if (!is_array($v) || !array_is_list($v) || count($v) !== 2 || !is_string($v[0]) || !is_array($v[1])) {
            return null;
        }
        if ($v[1] !== [] && array_is_list($v[1])) {
            return null;
        }
        foreach ($v[1] as $k => $x) {
            if (!is_string($x)) {
                return null;
            }
        }
        return [$v[0], array_combine(array_map('strval', array_keys($v[1])), $v[1])];
    }

    /** @return list<array{0: string, 1: array<string, string>, 2: int}> */
    private function chunk(SpoolFile $f, int $limit): array
    {
        while (true) {
            $chunk = [];
            $corrupt = null;
            foreach ($f->lines($limit) as [$offset, $line]) {
                $parsed = self::parse($line);
                if ($parsed === null) {
                    $corrupt = [$offset, $line];
                    break;
                }
                $chunk[] = [$parsed[0], $parsed[1], $offset + strlen($line)];
            }
            if ($chunk || $corrupt === null) {
                return $chunk; // a corrupt line after the chunk waits for the next call
            }
            $f->quarantine($corrupt[0], $corrupt[1], $this->log);
        }
    }

    /**
     * The oldest undrained entries of the first file that has any; adopted files with nothing
     * left to send are removed.
     * @return array{0: SpoolFile, 1: list<array{0: string, 1: array<string, string>, 2: int}>}|null
     */
    public function nextChunk(int $limit): ?array
    {
        foreach ($this->files as $f) {
            $chunk = $this->chunk($f, $limit);
            if ($chunk) {
                return [$f, $chunk];
            }
            if ($f !== $this->own) {
                $this->drop($f);
            }
        }
        return null;
    }

    private function drop(SpoolFile $f): void
    {
        if ($f === $this->own) {
            $this->own = null;
        }
        $this->files = array_values(array_filter($this->files, static fn (SpoolFile $x): bool => $x !== $f));
        $f->remove($this->log);
    }

    /** Record that everything before $pos in $f reached Redis; tidy drained files. */
    public function commit(SpoolFile $f, int $pos): void
    {
        $f->commit($pos);
        if ($pos >= $f->end && in_array($f, $this->files, true)) {
            $this->drop($f);
        }
    }

    /** Entries not yet drained (reads the files: for status and tests). */
    public function count(): int
    {
        $n = 0;
        foreach ($this->files as $f) {
            foreach ($f->lines(PHP_INT_MAX) as [, $line]) {
                $n += self::parse($line) !== null ? 1 : 0;
            }
        }
        return $n;
    }

    /** When Redis last failed for any publisher on this directory (0: never). */
    public function lastFailure(): float
    {
        $mark = $this->directory . '/redis-unreachable.mark';
        clearstatcache(true, $mark);
        return is_file($mark) ? (float) file_get_contents($mark) : 0.0;
    }

    public function markFailure(float $at): void
    {
        if (is_dir($this->directory)) {
            @file_put_contents($this->directory . '/redis-unreachable.mark', sprintf('%.6F', $at));
        }
    }

    /** Release the locks (undrained files stay for the next publisher). */
    public function close(): void
    {
        foreach ($this->files as $f) {
            $f->close();
        }
        $this->files = [];
        $this->own = null;
    }
}
