// One run per cluster at a time: <stateDir>/locks/<cluster>.lock, created exclusively (O_EXCL).
// The file says who holds it, so a refusal can name the run, and a stale lock (its process is
// gone) can be told apart from a live one.

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, promises as fsp, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../errors.js';
import { controllerName, pidAlive } from './proc.js';

export interface LockInfo {
  pid: number;
  controller: string;
  runId: string;
  startedAt: string;
}

export interface RunLock {
  readonly path: string;
  readonly cluster: string;
  readonly info: LockInfo;
  /** Remove the lock if it is still ours. Idempotent. */
  release(): Promise<void>;
  /** Same, synchronously (for `process.on('exit')`). */
  releaseSync(): void;
}

/**
 * A file name for a cluster that cannot escape the locks dir or collide: unsafe characters become
 * '_' and, when anything had to change, a short hash of the real name is appended.
 */
export function lockFileName(cluster: string): string {
  const safe = cluster
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .replace(/^[.-]+/, '_')
    .slice(0, 100);
  if (safe === cluster && safe !== '') return `${safe}.lock`;
  const h = createHash('sha256').update(cluster).digest('hex').slice(0, 8);
  return `${safe || '_'}-${h}.lock`;
}

export function lockPath(stateDir: string, cluster: string): string {
  return join(stateDir, 'locks', lockFileName(cluster));
}

/** Read a lock file; undefined when it does not exist. Retries briefly over the moment between create and write. */
export async function readLock(stateDir: string, cluster: string): Promise<LockInfo | undefined> {
  return readLockFile(lockPath(stateDir, cluster));
}

async function readLockFile(path: string): Promise<LockInfo | undefined> {
  let lastWhy = '';
  for (let attempt = 0; attempt < 10; attempt++) {
    let text: string;
    try {
      text = await fsp.readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const info = parseLock(text);
    if (typeof info !== 'string') return info;
    lastWhy = info;
    await new Promise((r) => setTimeout(r, 50)); // the holder may be between open(wx) and write
  }
  throw new UsageError(`lock file ${path} is unreadable (${lastWhy})`, {
    hint: `if no chops run is active, remove it: rm ${path}`,
  });
}

function parseLock(text: string): LockInfo | string {
  if (!text.trim()) return 'empty';
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
  const d = doc as Partial<LockInfo> | null;
  if (!d || typeof d !== 'object' || typeof d.pid !== 'number' || typeof d.runId !== 'string') {
    return 'missing pid or runId';
  }
  return {
    pid: d.pid,
    controller: String(d.controller ?? ''),
    runId: d.runId,
    startedAt: String(d.startedAt ?? ''),
  };
}

type Holder = 'alive' | 'stale' | 'unknown';

function holderState(info: LockInfo): Holder {
  if (info.controller !== controllerName()) return 'unknown';
  return pidAlive(info.pid, { notStartedAfter: info.startedAt || undefined }) ? 'alive' : 'stale';
}

/**
 * Take the cluster's lock for run `runId`. Throws UsageError when another run holds it (alive, or
 * on another controller), or when it is stale (its process is gone) — unless `reclaimStale` is set
 * and the stale lock belongs to this same run id (resuming the run that crashed), in which case
 * it is taken over.
 */
export async function acquireLock(stateDir: string, cluster: string, opts: { runId: string; reclaimStale?: boolean; now?: Date }): Promise<RunLock> {
  const dir = join(stateDir, 'locks');
  const path = lockPath(stateDir, cluster);
  await fsp.mkdir(dir, { recursive: true });
  const info: LockInfo = {
    pid: process.pid,
    controller: controllerName(),
    runId: opts.runId,
    startedAt: (opts.now ?? new Date()).toISOString(),
  };
  // JSON is YAML 1.2 (older lock files in YAML still parse) and costs no serializer warm-up on the
  // start of every run.
  const text = `# chops run lock for cluster ${JSON.stringify(cluster)}\n${JSON.stringify(info, null, 2)}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      try {
        // Not fsync'ed (that cost ~80 ms at the start of every run): exclusion between live
        // processes needs no disk flush, and after a crash of the machine the lock is stale anyway
        // (an empty one left by the crash is refused as unreadable, with the rm that clears it).
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
      return makeLock(path, cluster, info);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const held = await readLockFile(path);
    if (!held) continue; // released in between: try again
    const who = `run ${held.runId} (pid ${held.pid}${held.controller ? ` on ${held.controller}` : ''}, started ${held.startedAt})`;
    const state = holderState(held);
    if (state === 'alive') {
      throw new UsageError(`run ${held.runId} (pid ${held.pid}) is already working on cluster ${cluster}`, {
        hint: `wait for it to finish; lock file: ${path}`,
      });
    }
    if (state === 'unknown') {
      throw new UsageError(`cluster ${cluster} is locked by ${who}, a different control machine`, {
        hint: `if that run is no longer active, clear the lock with \`chops unlock ${cluster} --force\` or rm ${path}`,
      });
    }
    if (opts.reclaimStale && held.runId === opts.runId) {
      await removeIfSame(path, held);
      continue;
    }
    throw new UsageError(`cluster ${cluster} has a stale lock from ${who}: that process is gone`, {
      hint: `after checking no chops run is active on ${cluster}, clear it with \`chops unlock ${cluster}\` or rm ${path}`,
    });
  }
  throw new UsageError(`could not take the lock ${path}: it keeps changing under us`, {
    hint: 'another chops process is starting on this cluster; try again',
  });
}

function sameHolder(a: LockInfo, b: LockInfo): boolean {
  return a.pid === b.pid && a.runId === b.runId && a.controller === b.controller && a.startedAt === b.startedAt;
}

/**
 * Remove the lock file only if it still holds `expected`: rename it aside first (atomic), check
 * what was moved, and put it back when it turned out to be someone else's fresh lock.
 */
async function removeIfSame(path: string, expected: LockInfo): Promise<boolean> {
  const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.breaking`;
  try {
    await fsp.rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const moved = parseLock(await fsp.readFile(aside, 'utf8').catch(() => ''));
  if (typeof moved === 'string' || sameHolder(moved, expected)) {
    await fsp.unlink(aside).catch(() => {});
    return true;
  }
  // Not the one we meant: restore it unless a new lock appeared meanwhile.
  await fsp.link(aside, path).catch(() => {});
  await fsp.unlink(aside).catch(() => {});
  return false;
}

function makeLock(path: string, cluster: string, info: LockInfo): RunLock {
  let released = false;
  const ours = (text: string) => {
    const cur = parseLock(text);
    return typeof cur !== 'string' && sameHolder(cur, info);
  };
  return {
    path,
    cluster,
    info,
    async release() {
      if (released) return;
      released = true;
      let text: string;
      try {
        text = await fsp.readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      if (ours(text))
        await fsp.unlink(path).catch((err) => {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        });
    },
    releaseSync() {
      if (released) return;
      released = true;
      try {
        if (ours(readFileSync(path, 'utf8'))) unlinkSync(path);
      } catch {
        /* gone already, or unreadable: nothing of ours to remove */
      }
    },
  };
}

/** Release a lock (idempotent; never removes a lock that another run has taken since). */
export async function releaseLock(lock: RunLock | undefined | null): Promise<void> {
  await lock?.release();
}

/**
 * `chops unlock <cluster>`: remove a stale lock. Refuses while its process is alive on this
 * controller; a lock from another controller needs `force`. Returns the removed lock's info, or
 * undefined when there was no lock.
 */
export async function breakStaleLock(stateDir: string, cluster: string, opts: { force?: boolean } = {}): Promise<LockInfo | undefined> {
  const path = lockPath(stateDir, cluster);
  let held: LockInfo | undefined;
  try {
    held = await readLockFile(path);
  } catch (err) {
    if (!(err instanceof UsageError) || !opts.force) throw err;
    await fsp.unlink(path).catch(() => {}); // unreadable, and forced
    return undefined;
  }
  if (!held) return undefined;
  const state = holderState(held);
  if (state === 'alive') {
    throw new UsageError(`run ${held.runId} (pid ${held.pid}) is still working on cluster ${cluster}; the lock is not stale`, {
      hint: `wait for it to finish, or stop it first (kill ${held.pid})`,
    });
  }
  if (state === 'unknown' && !opts.force) {
    throw new UsageError(
      `the lock on cluster ${cluster} belongs to run ${held.runId} on another control machine (${held.controller}); cannot check whether pid ${held.pid} is alive`,
      { hint: `if no run is active there, use --force (or rm ${path})` },
    );
  }
  await removeIfSame(path, held);
  return held;
}
