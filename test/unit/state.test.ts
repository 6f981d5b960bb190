import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../../src/errors.js';
import { Redactor } from '../../src/run/redact.js';
import {
  assertResumable,
  buildSteps,
  getStep,
  isRunId,
  markStep,
  newRunId,
  paramsHash,
  reopenForResume,
  RunStore,
  type RunInit,
  type RunState,
} from '../../src/run/state.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'chops-state-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
function freshStore(opts?: { redactor?: Redactor }): RunStore {
  return new RunStore(join(root, `s${n++}`), opts);
}

function init(over: Partial<RunInit> = {}): RunInit {
  return {
    playbook: 'rolling-restart',
    params: { version: '24.8', batch: 1 },
    inventory: '/etc/chops/inventory.yml',
    inventoryHash: 'inv-hash-1',
    cluster: 'main',
    steps: buildSteps([
      { phase: 'preflight', scope: 'once', steps: ['check cluster'], hosts: ['h1', 'h2'] },
      { phase: 'restart', scope: 'rolling', steps: ['stop server', 'start server'], hosts: ['h1', 'h2'] },
    ]),
    ...over,
  };
}

/** Spawn a node child that stays alive until killed. */
function spawnSleeper() {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  return child;
}

describe('run ids and params hash', () => {
  it('ids are sortable YYYYMMDD-HHMMSS-xxxx', () => {
    const a = newRunId(new Date('2026-11-21T08:00:00Z'));
    const b = newRunId(new Date('2026-11-21T08:00:01Z'));
    assert.match(a, /^20261121-080000-[0-9a-f]{4}$/);
    assert.ok(a < b);
    assert.ok(isRunId(a));
    assert.ok(!isRunId('../../etc'));
  });

  it('paramsHash ignores key order at every depth', () => {
    const h1 = paramsHash({ a: 1, b: { x: [1, 2], y: 'z' } });
    const h2 = paramsHash({ b: { y: 'z', x: [1, 2] }, a: 1 });
    assert.equal(h1, h2);
    assert.match(h1, /^[0-9a-f]{64}$/);
    assert.notEqual(h1, paramsHash({ a: 2, b: { x: [1, 2], y: 'z' } }));
    assert.equal(paramsHash({ a: 1, u: undefined }), paramsHash({ a: 1 }));
  });
});

describe('RunStore', () => {
  it('create() writes a loadable state; load() round-trips', async () => {
    const store = freshStore();
    const st = await store.create(init({ limit: ['h1'] }));
    assert.ok(isRunId(st.id));
    assert.equal(st.outcome, 'running');
    assert.equal(st.pid, process.pid);
    assert.equal(st.paramsHash, paramsHash({ batch: 1, version: '24.8' }));
    const loaded = await store.load(st.id);
    assert.deepEqual(loaded, st);
    assert.deepEqual(Object.keys(loaded.steps[0].steps[0].hosts), ['*']);
    assert.equal(getStep(loaded, 1, 'stop server', 'h2')?.status, 'pending');
    // Only the state file in the run dir: no temp files left behind.
    assert.deepEqual(readdirSync(store.runDir(st.id)), ['state.yml']);
  });

  it('markStep stamps times, duration, clears a previous failure on restart', async () => {
    const store = freshStore();
    const st = await store.create(init());
    markStep(st, 1, 'stop server', 'h1', { status: 'started' }, new Date('2026-11-21T08:00:00.000Z'));
    markStep(st, 1, 'stop server', 'h1', { status: 'failed', error: 'boom' }, new Date('2026-11-21T08:00:01.500Z'));
    let s = getStep(st, 1, 'stop server', 'h1')!;
    assert.equal(s.status, 'failed');
    assert.equal(s.durationMs, 1500);
    assert.equal(s.finishedAt, '2026-11-21T08:00:01.500Z');
    markStep(st, 1, 'stop server', 'h1', { status: 'started' }, new Date('2026-11-21T09:00:00.000Z'));
    s = getStep(st, 1, 'stop server', 'h1')!;
    assert.equal(s.error, undefined);
    assert.equal(s.finishedAt, undefined);
    assert.equal(s.startedAt, '2026-11-21T09:00:00.000Z');
    markStep(st, 1, 'stop server', 'h1', { status: 'done', changed: true, note: 'stopped' });
    // once-scoped phase: any host name maps to "*"
    markStep(st, 0, 'check cluster', 'h1', { status: 'done' });
    assert.equal(getStep(st, 0, 'check cluster', '*')?.status, 'done');
    assert.throws(() => markStep(st, 1, 'no such step', 'h1', { status: 'done' }), /no step "no such step"/);
    assert.throws(() => markStep(st, 7, 'stop server', 'h1', { status: 'done' }), /no phase #7/);
    await store.save(st);
    const loaded = await store.load(st.id);
    assert.equal(getStep(loaded, 1, 'stop server', 'h1')?.changed, true);
    assert.equal(getStep(loaded, 1, 'stop server', 'h1')?.note, 'stopped');
  });

  it('concurrent saves coalesce, never overlap, and end with the last state', async () => {
    const store = freshStore();
    const st = await store.create(init());
    // Spy on the private writer: count writes and track overlap.
    const anyStore = store as unknown as { writeNow: (s: RunState, sweep: boolean) => Promise<void> };
    const orig = anyStore.writeNow.bind(store);
    let inFlight = 0;
    let maxInFlight = 0;
    let writes = 0;
    anyStore.writeNow = async (s, sweep) => {
      inFlight++;
      writes++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        await orig(s, sweep);
      } finally {
        inFlight--;
      }
    };
    const promises: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      // Different objects each time, as concurrent tasks might hand over copies.
      const copy: RunState = structuredClone(st);
      copy.params = { i };
      promises.push(store.save(copy));
      if (i % 37 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(promises);
    await store.flush();
    assert.equal(maxInFlight, 1, 'writes never overlap');
    assert.ok(writes < 200, `saves coalesce (${writes} writes for 200 saves)`);
    assert.deepEqual((await store.load(st.id)).params, { i: 199 });
    assert.deepEqual(readdirSync(store.runDir(st.id)), ['state.yml']);
  });

  it('fire-and-forget saves of a mutated object persist the latest data after flush()', async () => {
    const store = freshStore();
    const st = await store.create(init());
    for (const host of ['h1', 'h2']) {
      for (const step of ['stop server', 'start server']) {
        markStep(st, 1, step, host, { status: 'done' });
        void store.save(st);
      }
    }
    st.outcome = 'succeeded';
    void store.save(st);
    await store.flush();
    const loaded = await store.load(st.id);
    assert.equal(loaded.outcome, 'succeeded');
    assert.equal(getStep(loaded, 1, 'start server', 'h2')?.status, 'done');
  });

  it('a failed write is reported by flush() without an unhandled rejection', async () => {
    const store = freshStore();
    const st = await store.create(init());
    rmSync(store.runDir(st.id), { recursive: true });
    void store.save(st);
    await assert.rejects(store.flush(), /could not save run state/);
  });

  it('a crash mid-write (leftover .tmp) does not break load, and the next save sweeps it', async () => {
    const store = freshStore();
    const st = await store.create(init());
    const dir = store.runDir(st.id);
    // A dead writer's half-written temp file (pid 2^22+1 is above pid_max defaults: never alive).
    const tmp = join(dir, `state.yml.${2 ** 22 + 1}.deadbeef.tmp`);
    writeFileSync(tmp, 'version: 1\nid: "half-writ');
    const loaded = await store.load(st.id);
    assert.equal(loaded.id, st.id);
    const store2 = new RunStore(store.stateDir);
    await store2.save(loaded);
    assert.deepEqual(readdirSync(dir), ['state.yml']);
  });

  it('missing or corrupt state: UsageError naming the file', async () => {
    const store = freshStore();
    await assert.rejects(store.load('20260101-000000-abcd'), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /no run 20260101-000000-abcd/);
      assert.ok(err.message.includes(store.statePath('20260101-000000-abcd')));
      return true;
    });
    await assert.rejects(store.load('../../etc/passwd'), UsageError);
    const st = await store.create(init());
    writeFileSync(store.statePath(st.id), 'version: 1\nid: [unterminated\n');
    await assert.rejects(store.load(st.id), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /corrupt/);
      assert.ok(err.message.includes(store.statePath(st.id)));
      return true;
    });
    writeFileSync(store.statePath(st.id), 'just a string\n');
    await assert.rejects(store.load(st.id), /corrupt: not a YAML mapping/);
    writeFileSync(store.statePath(st.id), 'version: 9\n');
    await assert.rejects(store.load(st.id), /unsupported version 9/);
  });

  it('latest(), latest({unfinished}) and list()', async () => {
    const store = freshStore();
    assert.equal(await store.latest(), null);
    const a = await store.create(init(), new Date('2026-11-20T08:00:00Z'));
    markStep(a, 1, 'stop server', 'h2', { status: 'failed', error: 'exit 1' });
    a.outcome = 'failed';
    await store.save(a);
    const b = await store.create(init({ playbook: 'upgrade' }), new Date('2026-11-21T08:00:00Z'));
    b.outcome = 'succeeded';
    await store.save(b);
    assert.equal((await store.latest())?.id, b.id);
    assert.equal((await store.latest({ unfinished: true }))?.id, a.id);
    const rows = await store.list();
    assert.deepEqual(
      rows.map((r) => [r.id, r.outcome]),
      [
        [b.id, 'succeeded'],
        [a.id, 'failed'],
      ],
    );
    assert.deepEqual(rows[1].failed, { phase: 'restart', step: 'stop server', host: 'h2', error: 'exit 1' });
    assert.ok((rows[0].durationMs ?? 0) > 0);
    assert.equal(rows[0].playbook, 'upgrade');
    // An unreadable state is listed, not fatal to list(); latest() refuses to skip past it.
    const c = await store.create(init(), new Date('2026-11-22T08:00:00Z'));
    writeFileSync(store.statePath(c.id), '{{{');
    const rows2 = await store.list();
    assert.equal(rows2[0].id, c.id);
    assert.match(rows2[0].unreadable ?? '', /corrupt/);
    await assert.rejects(store.latest(), UsageError);
  });

  it('error and note texts are redacted in state.yml', async () => {
    const r = new Redactor();
    r.add('hunter22');
    const store = freshStore({ redactor: r });
    const st = await store.create(init());
    markStep(st, 1, 'stop server', 'h1', { status: 'failed', error: 'clickhouse-client --password hunter22 failed' });
    st.error = 'h1: hunter22';
    await store.save(st);
    const text = readFileSync(store.statePath(st.id), 'utf8');
    assert.ok(!text.includes('hunter22'));
    assert.equal(getStep(st, 1, 'stop server', 'h1')?.error, 'clickhouse-client --password hunter22 failed', 'in-memory state untouched');
    assert.equal((parseYaml(text) as RunState).error, 'h1: ***');
  });
});

describe('assertResumable', () => {
  const base = async () => {
    const store = freshStore();
    const st = await store.create(init());
    st.outcome = 'failed';
    st.pid = 2 ** 22 + 1; // not alive
    return st;
  };

  it('accepts an unchanged failed/interrupted run', async () => {
    const st = await base();
    assertResumable(st, { inventoryHash: 'inv-hash-1', paramsHash: st.paramsHash });
    st.outcome = 'interrupted';
    assertResumable(st, { inventoryHash: 'inv-hash-1', params: { batch: 1, version: '24.8' } });
    st.outcome = 'running'; // crashed: its pid is gone
    assertResumable(st, { inventoryHash: 'inv-hash-1', paramsHash: st.paramsHash });
  });

  it('names a changed inventory and changed parameters, with the fix', async () => {
    const st = await base();
    assert.throws(
      () => assertResumable(st, { inventoryHash: 'other', params: { batch: 2, version: '24.8', extra: true } }),
      (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(err.message, /inventory \/etc\/chops\/inventory\.yml changed/);
        assert.match(err.message, /parameters differ from the original run: batch, extra/);
        assert.match(err.hint ?? '', /re-run with the original parameters, or start a new run with `chops run`/);
        return true;
      },
    );
    assert.throws(() => assertResumable(st, { inventoryHash: 'inv-hash-1', paramsHash: 'x' }), /parameters differ/);
  });

  it('refuses a succeeded run', async () => {
    const st = await base();
    st.outcome = 'succeeded';
    assert.throws(
      () => assertResumable(st, { inventoryHash: 'inv-hash-1', paramsHash: st.paramsHash }),
      (err: unknown) => err instanceof UsageError && /already succeeded/.test(err.message) && /chops run/.test(err.hint ?? ''),
    );
  });

  it('refuses a run whose process is still alive on this controller', async () => {
    const st = await base();
    const child = spawnSleeper();
    try {
      await new Promise((r) => child.once('spawn', r));
      st.outcome = 'running';
      st.pid = child.pid!;
      st.updatedAt = new Date().toISOString();
      assert.throws(
        () => assertResumable(st, { inventoryHash: 'inv-hash-1', paramsHash: st.paramsHash }),
        new RegExp(`still running \\(pid ${child.pid}`),
      );
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    assertResumable(st, { inventoryHash: 'inv-hash-1', paramsHash: st.paramsHash });
    reopenForResume(st);
    assert.equal(st.pid, process.pid);
    assert.equal(st.outcome, 'running');
  });
});
