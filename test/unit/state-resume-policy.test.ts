// Run ids, the canonical params hash, and what a resume may pick up and re-run
// (src/run/state/ids.ts, src/run/state/resume-policy.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { isRunId, newRunId, paramsHash, runIdTime } from '../../src/run/state/ids.js';
import type { RunState } from '../../src/run/state/model.js';
import { assertResumable, isFinished, reopenForResume, replicaInProgress, resumeDecision, workBegunAfter } from '../../src/run/state/resume-policy.js';
import { buildSteps, markStep } from '../../src/run/state/steps.js';
import { RunStore } from '../../src/run/state/store.js';
import { scratchDirs } from '../support/scratch.js';
import { sampleRunInit } from '../support/run-state.js';

const freshDir = scratchDirs('chops-policy');
function freshStore(): RunStore {
  return new RunStore(freshDir());
}

const init = sampleRunInit;

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
    assert.equal(runIdTime(a), Date.parse('2026-11-21T08:00:00Z'), 'the id says when the run was created, to the second');
    assert.equal(runIdTime(newRunId(new Date('2026-02-28T23:59:59.999Z'))), Date.parse('2026-02-28T23:59:59Z'));
    assert.ok(Number.isNaN(runIdTime('../../etc')));
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
      assert.throws(() => assertResumable(st, { inventoryHash: 'inv-hash-1', paramsHash: st.paramsHash }), new RegExp(`still running \\(pid ${child.pid}`));
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

describe('what a resume re-runs', () => {
  // The rolling phase of a rolling restart: two gates, then the work they guard.
  const steps = [{ name: 'check peers', gate: true }, { name: 'check idle', gate: true }, { name: 'stop', gate: false }, { name: 'start' }];
  const state = (marks: Array<[string, 'started' | 'done' | 'skipped' | 'failed' | 'rolled-back']>): RunState => {
    const st = {
      id: '20261121-080000-abcd',
      steps: buildSteps([{ phase: 'restart', scope: 'rolling', steps: steps.map((s) => s.name), hosts: ['h1'] }]),
      memory: {},
    } as unknown as RunState;
    for (const [name, status] of marks) markStep(st, 0, name, 'h1', { status });
    return st;
  };
  const plan = (st: RunState | undefined) =>
    steps.map((_, si) => {
      const d = resumeDecision(st, 0, steps, si, 'h1');
      return d.kind === 'skip' ? d.reason : d.kind;
    });

  it('a fresh run (no state) runs everything', () => {
    assert.deepEqual(plan(undefined), ['not-done', 'not-done', 'not-done', 'not-done']);
    assert.equal(replicaInProgress(undefined, 0, steps, 'h1'), false);
    assert.equal(workBegunAfter(undefined, 0, steps, 0, 'h1'), false);
  });

  it('gates passed before a crash run again while their work has not begun', () => {
    const st = state([
      ['check peers', 'done'],
      ['check idle', 'done'],
    ]);
    assert.deepEqual(plan(st), ['recheck', 'recheck', 'not-done', 'not-done']);
    assert.equal(replicaInProgress(st, 0, steps, 'h1'), false, 'passing read-only gates is not work in progress');
  });

  it('once the work has begun, gates are checked again only if the replica still serves; done steps are not repeated; the started step runs again', () => {
    const st = state([
      ['check peers', 'done'],
      ['check idle', 'done'],
      ['stop', 'started'],
    ]);
    assert.deepEqual(plan(st), ['recheck-if-serving', 'recheck-if-serving', 'not-done', 'not-done']);
    const d = resumeDecision(st, 0, steps, 0, 'h1');
    assert.deepEqual(d, { kind: 'recheck-if-serving', reason: 'already done (resumed run)' }, 'skipped with this reason when not serving');
    assert.equal(workBegunAfter(st, 0, steps, 0, 'h1'), true);
    assert.equal(workBegunAfter(st, 0, steps, 2, 'h1'), false);
    assert.equal(replicaInProgress(st, 0, steps, 'h1'), true);
    // the stop the gates guard is done: nothing left for them to protect, not checked again
    markStep(st, 0, 'stop', 'h1', { status: 'done' });
    assert.deepEqual(plan(st), ['already done (resumed run)', 'already done (resumed run)', 'already done (resumed run)', 'not-done']);
    assert.equal(replicaInProgress(st, 0, steps, 'h1'), true);
  });

  it('a skipped step counts as done; a failed or rolled-back step runs again', () => {
    const st = state([
      ['check peers', 'skipped'],
      ['check idle', 'done'],
      ['stop', 'rolled-back'],
      ['start', 'failed'],
    ]);
    // the work "stop" is rolled back, not begun: the gates are checked again
    assert.deepEqual(plan(st), ['recheck', 'recheck', 'not-done', 'not-done']);
    assert.equal(replicaInProgress(st, 0, steps, 'h1'), false);
  });

  it('a replica with every step done or skipped is finished, not in progress', () => {
    const st = state([
      ['check peers', 'done'],
      ['check idle', 'done'],
      ['stop', 'done'],
      ['start', 'skipped'],
    ]);
    assert.equal(replicaInProgress(st, 0, steps, 'h1'), false);
    assert.deepEqual(plan(st), ['already done (resumed run)', 'already done (resumed run)', 'already done (resumed run)', 'already skipped (resumed run)']);
  });

  it('only a succeeded run is finished', () => {
    for (const outcome of ['running', 'failed', 'interrupted'] as const) assert.equal(isFinished({ outcome }), false);
    assert.equal(isFinished({ outcome: 'succeeded' }), true);
  });
});
