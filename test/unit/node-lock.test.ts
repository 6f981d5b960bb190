// The node lock's remote commands, run by the local shell against a lock file in a temporary
// directory with the real flock(1): free, held with an owner line, held without one (the moment
// between the holder's flock and its owner line, or between removing the line and exiting — a
// resumed run met it in CI and stopped with "cannot read the node lock"), taken and released.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireCommand, nodeLockHolder } from '../../tasks/backup/node-lock.js';
import { HostHandle } from '../../src/host.js';
import { LocalTransport } from '../../src/transport/local.js';
import { parseInventory } from '../../src/inventory/load.js';
import { raw } from '../../src/quote.js';

const localHost = () => {
  const def = parseInventory('version: 1\nclusters:\n  c:\n    shards:\n      - replicas: [{host: me, connection: local}]\n', join(tmpdir(), 'inventory.yml'))
    .hosts[0];
  return new HostHandle(def, new LocalTransport(def), false);
};

/** Hold LOCK with flock(1) in a child until the returned function is called. */
async function holdLock(lock: string): Promise<() => Promise<void>> {
  // one process holds it (flock(1) would fork a child that keeps the lock after a kill)
  const child = execa('sh', ['-c', 'exec 9>>"$1"; flock -n 9 || exit 1; echo held; exec sleep 60', 'holder', lock], { reject: false });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', () => reject(new Error('flock child exited before holding the lock')));
  });
  return async () => {
    child.kill('SIGKILL');
    await child;
  };
}

test('nodeLockHolder: free, busy with its owner, busy before the owner line exists', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chops-lock-'));
  const lock = join(dir, 'chops-node.lock');
  const host = localHost();
  try {
    assert.equal(await nodeLockHolder(host, lock), undefined, 'no lock file: free');
    await writeFile(lock, '');
    assert.equal(await nodeLockHolder(host, lock), undefined, 'lock file, nobody holds it: free');
    const release = await holdLock(lock);
    try {
      assert.equal(await nodeLockHolder(host, lock), 'holder unknown', 'held, no owner line yet: busy, not an error');
      await writeFile(`${lock}.owner`, 'backup diff pid 42 since 2026-12-02T03:00:00Z\n');
      assert.equal(await nodeLockHolder(host, lock), 'backup diff pid 42 since 2026-12-02T03:00:00Z');
    } finally {
      await release();
    }
    assert.equal(await nodeLockHolder(host, lock), undefined, 'released: free (a stale owner line does not make it busy)');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('acquireCommand: takes a free lock at once; a held lock times out naming its owner; TERM or the end of its session frees it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chops-lock-'));
  const lock = join(dir, 'chops-node.lock');
  const host = localHost();
  try {
    // the session the holder outlives: here a sleep we end ourselves
    const t0 = performance.now();
    const taken = await host.$({ nothrow: true })`${raw(acquireCommand(lock, 0, 'chops test (stop)'))}`;
    assert.equal(taken.code, 0, taken.stderr);
    assert.match(taken.stdout, /^held \d+$/m);
    const tookMs = performance.now() - t0;
    const pid = Number(taken.stdout.trim().slice(5));
    assert.match(String(await nodeLockHolder(host, lock)), /^chops test \(stop\) pid \d+ since /);

    const busy = await host.$({ nothrow: true })`${raw(acquireCommand(lock, 0, 'someone else'))}`;
    assert.equal(busy.code, 4, `a held lock is refused with exit 4: ${busy.stdout}`);
    assert.match(busy.stdout, /^timeout\nchops test \(stop\) pid /);

    process.kill(pid, 'SIGTERM'); // what releaseNodeLock does
    for (let i = 0; i < 50 && (await nodeLockHolder(host, lock)) !== undefined; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await nodeLockHolder(host, lock), undefined, 'TERM to the holder frees the lock');
    console.log(`# acquire on a free lock: ${tookMs.toFixed(0)} ms`);

    // The holder outlives the session it was started from (sshd's, here the outer shell) and no
    // more: when that ends — a crashed or killed run — the lock is free within about a second.
    const session = await execa('sh', ['-c', 'sh -c "$1"; exit 0', 'session', acquireCommand(lock, 0, 'chops crashed (stop)')], { reject: false });
    assert.match(session.stdout, /^held \d+$/m);
    let freedAfter = -1;
    for (let i = 0; i < 40; i++) {
      if ((await nodeLockHolder(host, lock)) === undefined) {
        freedAfter = i * 100;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(freedAfter >= 0, 'the lock is freed once the session that took it is gone');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
