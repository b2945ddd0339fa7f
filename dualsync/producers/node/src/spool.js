// A local, fsynced spool for events that could not reach Redis: the format and the file
// protocol of dualsync/producers/spool.py, so a Python (or PHP) publisher can drain a Node
// spool and the other way round.
//
// One JSON line `[stream, fields]` per event in `spool-<pid>-<uuid7>.jsonl`, fsynced before
// append() resolves (a new file's directory entry too); the drain position is committed to
// `<name>.pos` (fsync, atomic rename, directory fsync) after each chunk reaches Redis; a
// drained file is removed. Only complete lines are events: a torn tail (a crash mid-append)
// is ignored and does not keep a drained file alive; a failed append is cut back at once; a
// corrupt line is moved to `<name>.bad`, logged by file and offset, and the drain goes on.
//
// A file belongs to one publisher through an flock, as in Python and PHP. Node has no flock
// call, so a tiny `flock(1)` child (util-linux) holds it, fed by a pipe that closes when this
// process dies, which releases the lock. Without flock(1) a file counts as owned while the
// process named in it is alive.

import { spawn } from 'node:child_process';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirSync, uuid7, writeAtomicSync } from './envelope.js';

let haveFlock = process.platform !== 'win32';

/** @typedef {{release(): Promise<unknown> | void}} Lock */

/** Try to take the flock of `path` without waiting. @returns {Promise<Lock|null>} */
function tryLock(path) {
  if (!haveFlock) return Promise.resolve(pidLock(path));
  return new Promise((resolve) => {
    let done = false;
    const child = spawn('flock', ['-xn', path, '-c', 'echo locked; exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const finish = (/** @type {Lock|null} */ lock) => {
      if (!done) {
        done = true;
        resolve(lock);
      }
    };
    child.on('error', (err) => {
      if (/** @type {any} */ (err).code === 'ENOENT') haveFlock = false;
      finish(haveFlock ? null : pidLock(path));
    });
    child.on('exit', () => finish(null)); // busy (exit 1) before it said "locked"
    child.stdout.once('data', () => {
      child.stdout.destroy();
      child.unref();
      /** @type {any} */ (child.stdin).unref?.(); // the lock must not keep the event loop alive
      const exited = new Promise((res) => {
        if (child.exitCode !== null || child.signalCode !== null) res(undefined);
        else child.once('exit', res);
      });
      finish({
        // Resolves once flock(1) has exited, i.e. the lock is free for the next publisher.
        release: () => {
          child.ref(); // keep the event loop until it has exited
          child.stdin.end();
          return Promise.race([exited, new Promise((res) => setTimeout(res, 2000).unref())]);
        },
      });
    });
  });
}

/** @param {number} pid */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {any} */ (err).code === 'EPERM';
  }
}

/** Fallback without flock(1): a file is free when the process named in it is dead. */
function pidLock(path) {
  const m = /spool-(\d+)-[^/]*$/.exec(path);
  const pid = m ? Number(m[1]) : 0;
  if (pid && pid !== process.pid && alive(pid)) return null;
  return { release() {} };
}

/** `[stream, {field: value}]` with strings only, or null for a corrupt line. */
function parse(text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string') return null;
  const fields = v[1];
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) return null;
  for (const k of Object.keys(fields)) if (typeof fields[k] !== 'string') return null;
  return { stream: v[0], fields };
}

/** @param {import('node:fs/promises').FileHandle} fh the offset just after the last newline */
async function completeEnd(fh) {
  let pos = (await fh.stat()).size;
  const block = Buffer.allocUnsafe(1 << 16);
  while (pos > 0) {
    const start = Math.max(0, pos - block.length);
    const { bytesRead } = await fh.read(block, 0, pos - start, start);
    const i = block.subarray(0, bytesRead).lastIndexOf(10);
    if (i >= 0) return start + i + 1;
    pos = start;
  }
  return 0;
}

class SpoolFile {
  /**
   * @param {string} path @param {import('node:fs/promises').FileHandle} fh @param {Lock} lock
   * @param {number} pos committed drain position @param {number} end after the last complete line
   */
  constructor(path, fh, lock, pos, end) {
    this.path = path;
    this.posPath = path.replace(/\.jsonl$/, '.pos');
    this.badPath = path.replace(/\.jsonl$/, '.bad');
    this.fh = fh;
    this.lock = lock;
    this.pos = pos;
    this.end = end;
  }

  async append(data) {
    if ((await this.fh.stat()).size !== this.end) await this.fh.truncate(this.end); // an earlier failed append
    try {
      const buf = Buffer.from(data, 'utf8');
      let off = 0;
      while (off < buf.length) off += (await this.fh.write(buf, off, buf.length - off, this.end + off)).bytesWritten;
      await this.fh.sync();
      this.end += buf.length;
    } catch (err) {
      await this.fh.truncate(this.end).catch(() => {}); // the append did not happen: no torn tail
      throw err;
    }
  }

  /** (offset, line text) of complete lines after the committed position, at most `limit`. */
  async lines(limit) {
    /** @type {Array<[number, string]>} */
    const out = [];
    const buf = Buffer.allocUnsafe(1 << 20);
    let offset = this.pos;
    let carry = Buffer.alloc(0);
    while (out.length < limit && offset + carry.length < this.end) {
      const want = Math.min(buf.length, this.end - offset - carry.length);
      const { bytesRead } = await this.fh.read(buf, 0, want, offset + carry.length);
      if (bytesRead === 0) break;
      const data = carry.length ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      let start = 0;
      let nl;
      while (out.length < limit && (nl = data.indexOf(10, start)) !== -1) {
        out.push([offset, data.toString('utf8', start, nl + 1)]);
        offset += nl + 1 - start;
        start = nl + 1;
      }
      carry = Buffer.from(data.subarray(start));
    }
    return out;
  }

  commit(pos) {
    writeAtomicSync(this.posPath, String(pos));
    this.pos = pos;
  }

  async quarantine(offset, line, log) {
    let isNew = false;
    await stat(this.badPath).catch(() => (isNew = true));
    const bad = await open(this.badPath, 'a');
    try {
      await bad.write(line);
      await bad.sync();
    } finally {
      await bad.close();
    }
    if (isNew) fsyncDirSync(join(this.path, '..'));
    log.error?.(`dualsync: corrupt spool line in ${this.path} at offset ${offset} (${Buffer.byteLength(line)} bytes) moved to ${this.badPath}`);
    this.commit(offset + Buffer.byteLength(line));
  }

  async remove(log) {
    const size = (await this.fh.stat()).size;
    if (size > this.end) log?.warn?.(`dualsync: spool ${this.path}: torn tail of ${size - this.end} bytes at ${this.end} dropped`);
    await unlink(this.path).catch(() => {});
    fsyncDirSync(join(this.path, '..')); // the data file is gone for good before its position
    for (const p of [this.posPath, `${this.posPath}.tmp`]) await unlink(p).catch(() => {});
    await this.close();
  }

  async close() {
    await this.fh.close().catch(() => {});
    await this.lock.release();
  }
}

/** Python sorts orphans by name (pid first); here by the uuid7 after the pid: creation order. */
const byCreation = (/** @type {string} */ a, /** @type {string} */ b) => {
  const ka = a.replace(/^spool-\d+-/, '');
  const kb = b.replace(/^spool-\d+-/, '');
  return ka < kb ? -1 : ka > kb ? 1 : a < b ? -1 : 1;
};

export class Spool {
  /** @param {string} directory @param {import('./index.js').Logger|null} [log] */
  constructor(directory, log = null) {
    this.directory = directory;
    this.log = log ?? {};
    /** @type {SpoolFile|null} */
    this.own = null;
    /** @type {SpoolFile[]} files in drain order: adopted orphans, then our own */
    this.files = [];
  }

  async #ownFile() {
    while (this.own === null) {
      await mkdir(this.directory, { recursive: true });
      const path = join(this.directory, `spool-${process.pid}-${uuid7()}.jsonl`);
      const fh = await open(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o644);
      const lock = await tryLock(path);
      if (lock === null) {
        await fh.close(); // someone adopted it in between: take another name
        continue;
      }
      fsyncDirSync(this.directory); // the new name survives a power cut
      this.own = new SpoolFile(path, fh, lock, 0, 0);
      this.files.push(this.own);
    }
    return this.own;
  }

  /** Take over spool files whose owner died; resolves to how many have entries to drain. */
  async adoptOrphans() {
    const names = await readdir(this.directory).catch(() => /** @type {string[]} */ ([]));
    const known = new Set(this.files.map((f) => f.path));
    let adopted = 0;
    for (const name of names.filter((n) => /^spool-.*\.jsonl$/.test(n)).sort(byCreation)) {
      const path = join(this.directory, name);
      if (known.has(path)) continue;
      const lock = await tryLock(path);
      if (lock === null) continue;
      const fh = await open(path, fsc.O_RDWR).catch(() => null);
      if (fh === null || (await fh.stat()).nlink === 0 || (await stat(path).catch(() => null)) === null) {
        await fh?.close(); // drained and removed by its owner meanwhile
        await lock.release();
        continue;
      }
      const pos = await readFile(path.replace(/\.jsonl$/, '.pos'), 'utf8').then(
        (t) => (/^\d+$/.test(t.trim()) ? Number(t) : 0),
        () => 0,
      );
      const f = new SpoolFile(path, fh, lock, pos, await completeEnd(fh));
      if (f.pos >= f.end) {
        await f.remove(this.log); // drained (its removal was lost) or only a torn tail
        continue;
      }
      this.files.splice(this.files.length - (this.own ? 1 : 0), 0, f);
      adopted += 1;
    }
    return adopted;
  }

  /** Append entries durably (fsync) before resolving; on error nothing is appended. */
  async append(entries) {
    const data = entries.map((e) => `${JSON.stringify(e)}\n`).join('');
    await (await this.#ownFile()).append(data);
  }

  pending() {
    return this.files.some((f) => f.pos < f.end);
  }

  /**
   * The oldest undrained entries of the first file that has any. Corrupt lines met first are
   * moved aside; adopted files with nothing left to send are removed.
   */
  async nextChunk(limit) {
    for (const f of [...this.files]) {
      const entries = await this.#chunk(f, limit);
      if (entries.length) return { file: f, entries };
      if (f !== this.own) {
        this.files.splice(this.files.indexOf(f), 1);
        await f.remove(this.log);
      }
    }
    return null;
  }

  async #chunk(f, limit) {
    for (;;) {
      /** @type {{stream: string, fields: Record<string,string>, end: number}[]} */
      const chunk = [];
      let corrupt = null;
      for (const [offset, line] of await f.lines(limit)) {
        const parsed = parse(line);
        if (parsed === null) {
          corrupt = [offset, line];
          break;
        }
        chunk.push({ ...parsed, end: offset + Buffer.byteLength(line) });
      }
      if (chunk.length || corrupt === null) return chunk; // a corrupt line after the chunk waits
      await f.quarantine(corrupt[0], corrupt[1], this.log);
    }
  }

  /** Record that everything before `pos` in `f` reached Redis; tidy drained files. */
  async commit(f, pos) {
    f.commit(pos);
    if (pos >= f.end && this.files.includes(f)) {
      if (f === this.own) this.own = null;
      this.files.splice(this.files.indexOf(f), 1);
      await f.remove(this.log);
    }
  }

  /** Entries not yet drained (reads the files: for status and tests, not the hot path). */
  async count() {
    let n = 0;
    for (const f of this.files) n += (await f.lines(Number.MAX_SAFE_INTEGER)).filter(([, l]) => parse(l)).length;
    return n;
  }

  /** Release the files and their locks (undrained files stay for the next publisher). */
  async close() {
    for (const f of this.files) await f.close();
    this.files = [];
    this.own = null;
  }
}
