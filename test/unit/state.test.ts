import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../../src/errors.js';
import { Redactor } from '../../src/run/redact.js';
import { isRunId, paramsHash } from '../../src/run/state/ids.js';
import type { RunState } from '../../src/run/state/model.js';
import { getStep, markStep } from '../../src/run/state/steps.js';
import { RunStore } from '../../src/run/state/store.js';
import type { RunWriter } from '../../src/run/state/writer.js';
import { scratchDirs } from '../support/scratch.js';
import { sampleRunInit } from '../support/run-state.js';

const freshDir = scratchDirs('chops-state');
function freshStore(opts?: { redactor?: Redactor }): RunStore {
  return new RunStore(freshDir(), opts);
}

const init = sampleRunInit;

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
    // Spy on the run's private writer: count whole rewrites and track overlap.
    const writer = (store as unknown as { writers: Map<string, RunWriter> }).writers.get(st.id) as unknown as {
      writeFold: () => Promise<void>;
    };
    const orig = writer.writeFold.bind(writer);
    let inFlight = 0;
    let maxInFlight = 0;
    let writes = 0;
    writer.writeFold = async () => {
      inFlight++;
      writes++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        await orig();
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

describe('RunStore: memory and step data', () => {
  it('remember() keeps a JSON copy per host, forgets on undefined, and is on disk when it resolves', async () => {
    const store = freshStore();
    const st = await store.create(init());
    const value = { dir: '/var/lib/clickhouse', size: 10n, list: [1, 2] };
    await store.remember(st, 'h1', 'move-data.oldDir', value);
    value.list.push(3); // the step changing its object later does not change what was remembered
    await store.remember(st, 'h1', 'gone', true);
    await store.remember(st, 'h1', 'gone', undefined);
    await store.remember(st, 'h2', 'upgrade.previousVersion', '18.16.1');
    assert.deepEqual(st.memory, {
      h1: { 'move-data.oldDir': { dir: '/var/lib/clickhouse', size: '10', list: [1, 2] } },
      h2: { 'upgrade.previousVersion': '18.16.1' },
    });
    assert.deepEqual((await new RunStore(store.stateDir).load(st.id)).memory, st.memory);
    assert.throws(() => store.remember(st, 'h1', '', 1), /memory key must be a non-empty string/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => store.remember(st, 'h1', 'x', cyclic), /the value remembered as "x" on h1 is not JSON data/);
  });

  it('memory, data, errors and notes are redacted in the journal and in state.yml', async () => {
    const r = new Redactor();
    r.add('hunter22');
    const store = freshStore({ redactor: r });
    const st = await store.create(init());
    await store.mark(st, 1, 'stop server', 'h1', { status: 'started' });
    await store.mark(st, 1, 'stop server', 'h1', { status: 'failed', error: 'exit 1: hunter22', note: 'pw hunter22', data: { out: 'hunter22' } });
    await store.remember(st, 'h1', 'k', { v: 'hunter22' });
    await store.flush();
    const journal = readFileSync(store.journalPath(st.id, st.journalEpoch!), 'utf8');
    assert.ok(!journal.includes('hunter22'), journal);
    assert.equal(st.memory.h1.k && (st.memory.h1.k as { v: string }).v, 'hunter22', 'in-memory state untouched');
    st.outcome = 'failed';
    await store.save(st);
    await store.flush();
    assert.ok(!readFileSync(store.statePath(st.id), 'utf8').includes('hunter22'));
  });
});
