import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml, stringify } from 'yaml';
import { UsageError } from '../../src/errors.js';
import { acquireLock, breakStaleLock, lockFileName, lockPath, readLock, releaseLock } from '../../src/run/lock.js';
import { scratchDirs } from '../support/scratch.js';

const freshDir = scratchDirs('chops-lock');

/** Pid of a process that existed and is now dead: spawn a child, kill it, wait for it. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  const pid = child.pid!;
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  return pid;
}

function writeLock(stateDir: string, cluster: string, info: Record<string, unknown>): string {
  const p = lockPath(stateDir, cluster);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, stringify(info));
  return p;
}

describe('run lock', () => {
  it('acquire creates the lock file with pid, controller, runId, startedAt; release removes it (idempotent)', async () => {
    const dir = freshDir();
    const lock = await acquireLock(dir, 'main', { runId: '20261121-080000-aaaa' });
    assert.equal(lock.path, join(dir, 'locks', 'main.lock'));
    const info = parseYaml(readFileSync(lock.path, 'utf8'));
    assert.equal(info.pid, process.pid);
    assert.equal(info.controller, hostname());
    assert.equal(info.runId, '20261121-080000-aaaa');
    assert.ok(!Number.isNaN(Date.parse(info.startedAt)));
    assert.deepEqual(await readLock(dir, 'main'), info);
    await lock.release();
    assert.ok(!existsSync(lock.path));
    await lock.release();
    await releaseLock(lock);
    lock.releaseSync();
    await releaseLock(undefined);
  });

  it('refuses while a live run holds the cluster', async () => {
    const dir = freshDir();
    const lock = await acquireLock(dir, 'main', { runId: 'run-A' });
    await assert.rejects(acquireLock(dir, 'main', { runId: 'run-B' }), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.equal(err.message, `run run-A (pid ${process.pid}) is already working on cluster main`);
      return true;
    });
    // Other clusters are independent.
    const other = await acquireLock(dir, 'backup', { runId: 'run-B' });
    await other.release();
    await assert.rejects(breakStaleLock(dir, 'main'), /not stale/);
    await lock.release();
  });

  it('detects a stale lock (dead pid on this controller) and says how to clear it', async () => {
    const dir = freshDir();
    const pid = await deadPid();
    const p = writeLock(dir, 'main', { pid, controller: hostname(), runId: 'run-X', startedAt: '2026-11-21T08:00:00.000Z' });
    await assert.rejects(acquireLock(dir, 'main', { runId: 'run-Y' }), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /stale lock from run run-X \(pid \d+ on .*, started 2026-11-21T08:00:00.000Z\)/);
      assert.ok(err.message.includes(`pid ${pid}`));
      assert.match(err.hint ?? '', /chops unlock main/);
      assert.ok((err.hint ?? '').includes(`rm ${p}`));
      return true;
    });
    assert.ok(existsSync(p), 'a stale lock is not removed implicitly');
    const removed = await breakStaleLock(dir, 'main');
    assert.equal(removed?.runId, 'run-X');
    assert.ok(!existsSync(p));
    assert.equal(await breakStaleLock(dir, 'main'), undefined);
    const lock = await acquireLock(dir, 'main', { runId: 'run-Y' });
    await lock.release();
  });

  it('reclaimStale takes over only a stale lock of the same run', async () => {
    const dir = freshDir();
    const pid = await deadPid();
    writeLock(dir, 'main', { pid, controller: hostname(), runId: 'run-X', startedAt: new Date().toISOString() });
    await assert.rejects(acquireLock(dir, 'main', { runId: 'run-Y', reclaimStale: true }), /stale lock/);
    const lock = await acquireLock(dir, 'main', { runId: 'run-X', reclaimStale: true });
    assert.equal((await readLock(dir, 'main'))?.pid, process.pid);
    await lock.release();
    assert.deepEqual(readdirSync(join(dir, 'locks')), []);
  });

  it('a lock from another controller cannot be judged: refused, breakable only with force', async () => {
    const dir = freshDir();
    writeLock(dir, 'main', { pid: 1, controller: 'elsewhere.example', runId: 'run-Z', startedAt: '2026-11-21T08:00:00Z' });
    await assert.rejects(acquireLock(dir, 'main', { runId: 'run-Y' }), /different control machine/);
    await assert.rejects(breakStaleLock(dir, 'main'), /another control machine/);
    assert.equal((await breakStaleLock(dir, 'main', { force: true }))?.runId, 'run-Z');
  });

  it('release never removes a lock that another run has taken since', async () => {
    const dir = freshDir();
    const lock = await acquireLock(dir, 'main', { runId: 'run-A' });
    rmSync(lock.path); // e.g. broken by an operator
    const p = writeLock(dir, 'main', { pid: process.pid, controller: hostname(), runId: 'run-B', startedAt: new Date().toISOString() });
    await lock.release();
    assert.ok(existsSync(p));
    assert.equal((await readLock(dir, 'main'))?.runId, 'run-B');
  });

  it('hostile cluster names stay inside the locks dir and do not collide', async () => {
    const dir = freshDir();
    const names = ['../../etc/passwd', 'a/b', 'a_b', '', '.hidden', 'x\0y', 'ü-cluster', 'a'.repeat(300)];
    const files = names.map(lockFileName);
    assert.equal(new Set(files).size, names.length);
    for (const f of files) {
      assert.match(f, /^[A-Za-z0-9_][A-Za-z0-9_.-]*\.lock$/);
      assert.ok(f.length < 120);
    }
    assert.equal(lockFileName('main-01'), 'main-01.lock');
    const locks = [];
    for (const name of names) locks.push(await acquireLock(dir, name, { runId: 'r' }));
    assert.equal(readdirSync(join(dir, 'locks')).length, names.length);
    assert.deepEqual(readdirSync(dir), ['locks']);
    for (const l of locks) await l.release();
  });

  it('an unreadable lock file is reported with its path', async () => {
    const dir = freshDir();
    const p = lockPath(dir, 'main');
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, '');
    await assert.rejects(acquireLock(dir, 'main', { runId: 'r' }), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.ok(err.message.includes(p));
      return true;
    });
  });
});
