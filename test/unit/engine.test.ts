// The engine on real local shells (LocalTransport): scopes, ordering, failure handling,
// rollback, state for resume, and plan mode recording instead of changing.
import { type TestContext, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInventory } from '../../src/inventory/load.js';
import { localInventoryText } from '../support/inventory.js';
import { Runner } from '../../src/engine/runner.js';
import { makeOutput } from '../../src/engine/output.js';
import { RunStore } from '../../src/run/state/store.js';
import { buildSteps, getStep, markStep } from '../../src/run/state/steps.js';
import { definePlaybook, type Phase } from '../../src/engine/playbook.js';
import { sh } from '../../src/quote.js';
import { Writable } from 'node:stream';

/** A local 2×2 inventory in a directory of its own, removed when test T ends. */
function setup(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'chops-engine-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const inv = parseInventory(
    localInventoryText(dir, [
      ['a1', 'a2'],
      ['b1', 'b2'],
    ]),
    join(dir, 'inventory.yml'),
  );
  return { dir, inv };
}

const sink = () => {
  const lines: string[] = [];
  const w = new Writable({
    write(c, _e, cb) {
      lines.push(...c.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { w, lines };
};

/** A playbook whose steps append "<host>:<step>" to a journal file, in order. */
function journalPlaybook(dir: string, phases: (log: (tag: string) => any) => Phase[]) {
  const journal = join(dir, 'journal');
  const log =
    (tag: string) =>
    async ({ host }: any) => {
      await host.$`echo ${`${host.name}:${tag}`} >> ${journal}`;
    };
  return { journal, pb: definePlaybook({ name: 'test', description: 't', params: [], phases: () => phases(log) }) };
}

async function run(inv: any, pb: any, opts: { state?: boolean; plan?: boolean; existing?: any; parallelShards?: number } = {}) {
  const out = sink();
  const store = new RunStore(inv.stateDir);
  const phases = pb.phases({}, inv);
  const state =
    opts.existing ??
    (opts.state === false || opts.plan
      ? undefined
      : await store.create({
          playbook: pb.name,
          params: {},
          inventory: inv.path,
          inventoryHash: inv.hash,
          cluster: 'c1',
          steps: buildSteps(
            phases.map((p: Phase) => ({ phase: p.name, scope: p.scope, steps: p.steps.map((s) => s.name), hosts: inv.hosts.map((h: any) => h.name) })),
          ),
        }));
  const runner = new Runner({
    playbook: pb,
    params: {},
    inventory: inv,
    selected: inv.hosts,
    plan: !!opts.plan,
    output: makeOutput('json', out.w, out.w),
    parallelShards: opts.parallelShards ?? 2,
    parallelHosts: 8,
    state,
    store: state ? store : undefined,
  });
  const res = await runner.execute();
  if (state) await store.flush();
  return { res, state, events: out.lines.map((l) => JSON.parse(l)), store };
}

test('rolling: replicas of a shard strictly one after another, each running all steps', async (t) => {
  const { dir, inv } = setup(t);
  const { journal, pb } = journalPlaybook(dir, (log) => [
    {
      name: 'roll',
      scope: 'rolling',
      steps: [
        { name: 'stop', run: log('stop') },
        { name: 'start', run: log('start') },
      ],
    },
  ]);
  const { res } = await run(inv, pb);
  assert.equal(res.ok, true);
  const lines = readFileSync(journal, 'utf8').trim().split('\n');
  for (const shard of [
    ['a1', 'a2'],
    ['b1', 'b2'],
  ]) {
    const mine = lines.filter((l) => shard.includes(l.split(':')[0]));
    assert.deepEqual(mine, [`${shard[0]}:stop`, `${shard[0]}:start`, `${shard[1]}:stop`, `${shard[1]}:start`]);
  }
});

test('a failure stops new work, rolls back the failing replica and records state for resume', async (t) => {
  const { dir, inv } = setup(t);
  const { journal, pb } = journalPlaybook(dir, (log) => [
    {
      name: 'roll',
      scope: 'rolling',
      steps: [
        { name: 'stop', run: log('stop'), rollback: log('rollback-stop') },
        {
          name: 'work',
          run: async (ctx: any) => {
            await log('work')(ctx);
            if (ctx.host.name === 'a1' && !existsSync(join(dir, 'fixed'))) await ctx.host.$`echo boom >&2; exit 3`;
          },
        },
        {
          name: 'start',
          run: async (ctx: any) => {
            // The replica in flight in the other shard ends only after a1 has failed and been
            // rolled back: whether the next one then starts is decided by the failure, not a race.
            if (ctx.host.name === 'b1') {
              for (let i = 0; i < 500 && !(existsSync(journal) && readFileSync(journal, 'utf8').includes('a1:rollback-stop')); i++) {
                await new Promise((r) => setTimeout(r, 20));
              }
            }
            await log('start')(ctx);
          },
        },
      ],
    },
  ]);
  const first = await run(inv, pb);
  assert.equal(first.res.ok, false);
  assert.equal(first.res.error?.host, 'a1');
  const lines = readFileSync(journal, 'utf8').trim().split('\n');
  assert.ok(lines.includes('a1:rollback-stop'), 'the failed replica was rolled back');
  assert.ok(!lines.some((l) => l.startsWith('a2:')), 'the next replica of the failed shard never started');
  assert.ok(!lines.includes('b2:stop'), 'the other shard did not start a new replica');
  assert.deepEqual(
    lines.filter((l) => l.startsWith('b1:')),
    ['b1:stop', 'b1:work', 'b1:start'],
    'the replica in flight in the other shard finished its steps',
  );
  const st = first.state!;
  assert.equal(getStep(st, 0, 'work', 'a1')?.status, 'failed');
  assert.match(getStep(st, 0, 'work', 'a1')?.error ?? '', /exited 3.*boom/s);
  // rolled back completely: the replica's whole sequence is pending again (the failed step says where)
  assert.equal(getStep(st, 0, 'stop', 'a1')?.status, 'pending');
  assert.equal(getStep(st, 0, 'start', 'a1')?.status, 'pending');
  const failedEv = first.events.find((e) => e.type === 'step-failed');
  assert.equal(failedEv.host, 'a1');

  // fix the cause and resume: a1 redoes stop/work/start, done steps elsewhere are not repeated
  require('node:fs').writeFileSync(join(dir, 'fixed'), '');
  rmSync(journal);
  const again = await run(inv, pb, { existing: st });
  assert.equal(again.res.ok, true);
  const l2 = readFileSync(journal, 'utf8').trim().split('\n');
  assert.deepEqual(
    l2.filter((l) => l.startsWith('a')),
    ['a1:stop', 'a1:work', 'a1:start', 'a2:stop', 'a2:work', 'a2:start'],
  );
  for (const l of lines.filter((x) => x.startsWith('b1:') && !x.includes('rollback'))) assert.ok(!l2.includes(l), `${l} was not repeated`);
  // What the resume passed over is said, not only what it ran (a JSON line each here; plain and
  // JSON output share the call: the last test of this file).
  const skipped = again.events.filter((e) => e.type === 'step-skipped');
  for (const l of lines.filter((x) => x.startsWith('b1:') && !x.includes('rollback'))) {
    const step = l.split(':')[1];
    assert.ok(
      skipped.some((e) => e.host === 'b1' && e.step === step && /^already done \(resumed run\)$/.test(e.reason)),
      `b1 ${step} reported skipped: ${JSON.stringify(skipped)}`,
    );
  }
});

test('each: all hosts run in parallel; a failing host stops later phases', async (t) => {
  const { dir, inv } = setup(t);
  const { journal, pb } = journalPlaybook(dir, (log) => [
    {
      name: 'p1',
      scope: 'each',
      steps: [
        {
          name: 's1',
          run: async (ctx: any) => {
            await log('s1')(ctx);
            if (ctx.host.name === 'b2') await ctx.host.$`false`;
          },
        },
      ],
    },
    { name: 'p2', scope: 'once', steps: [{ name: 'never', run: log('never') }] },
  ]);
  const { res } = await run(inv, pb);
  assert.equal(res.ok, false);
  const lines = readFileSync(journal, 'utf8').trim().split('\n');
  assert.equal(lines.filter((l) => l.endsWith(':s1')).length, 4);
  assert.ok(!lines.some((l) => l.endsWith(':never')));
});

test('plan mode: probes run for real, changes are recorded and not performed', async (t) => {
  const { dir, inv } = setup(t);
  const marker = join(dir, 'should-not-exist');
  const pb = definePlaybook({
    name: 'p',
    description: '',
    params: [],
    phases: () => [
      {
        name: 'ph',
        scope: 'each',
        steps: [
          {
            name: 'look',
            run: async ({ host }) => ({ note: (await host.probe`echo probed-${host.name}`).stdout.trim() }),
          },
          {
            name: 'touch',
            run: async ({ host }) => {
              await host.$`touch ${marker}`;
              await host.putFile(join(dir, 'f'), 'content', { mode: '0644' });
              return { note: 'touched in 0.01 s' };
            },
          },
        ],
      },
    ],
  });
  const { res, events } = await run(inv, pb, { plan: true });
  assert.equal(res.ok, true);
  assert.equal(existsSync(marker), false);
  assert.equal(existsSync(join(dir, 'f')), false);
  const changes = res.session.plannedChanges();
  assert.equal(changes.filter((c) => c.kind === 'exec').length, 4);
  assert.equal(changes.filter((c) => c.kind === 'put').length, 4);
  assert.ok(changes.every((c) => c.step === 'touch'));
  assert.equal(changes[0].command, sh`touch ${marker}`);
  // a decision on real facts is shown as such; what a changing step measured did not happen
  assert.ok(events.some((e) => e.type === 'step-done' && e.step === 'look' && e.note === 'probed-a1'));
  assert.ok(events.some((e) => e.type === 'step-done' && e.step === 'touch' && e.note === 'would make 2 changes'));
  assert.ok(!events.some((e) => e.note === 'touched in 0.01 s'));
});

import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);

test('resume: a gate is checked again unless its work has begun on a replica that is down now', async (t) => {
  const { dir, inv } = setup(t);
  const { journal, pb: base } = journalPlaybook(dir, (log) => [
    {
      name: 'roll',
      scope: 'rolling',
      steps: [
        { name: 'check', gate: true, run: log('check') },
        { name: 'work', run: log('work') },
        { name: 'finish', run: log('finish') },
      ],
    },
  ]);
  // the replica is serving unless a "down-<host>" file says otherwise (the real playbooks ask systemd)
  const pb = {
    ...base,
    phases: (p: any, i: any) =>
      base.phases(p, i).map((ph: Phase) => ({ ...ph, replicaServing: async ({ host }: any) => !existsSync(join(dir, `down-${host.name}`)) })),
  };
  const store = new RunStore(inv.stateDir);
  const fresh = () =>
    store.create({
      playbook: pb.name,
      params: {},
      inventory: inv.path,
      inventoryHash: inv.hash,
      cluster: 'c1',
      steps: buildSteps(
        pb.phases({}, inv).map((p: Phase) => ({ phase: p.name, scope: p.scope, steps: p.steps.map((s) => s.name), hosts: inv.hosts.map((h: any) => h.name) })),
      ),
    });
  const state = await fresh();
  // a1: gate passed, work not begun (crash right after the gate) -> the gate runs again
  markStep(state, 0, 'check', 'a1', { status: 'done' });
  // b1: gate passed, the work had begun and took the replica down -> no re-check, work continues
  markStep(state, 0, 'check', 'b1', { status: 'done' });
  markStep(state, 0, 'work', 'b1', { status: 'started' });
  require('node:fs').writeFileSync(join(dir, 'down-b1'), '');
  // a2: everything done before the crash, serving: nothing to guard, nothing runs again
  for (const n of ['check', 'work', 'finish']) markStep(state, 0, n, 'a2', { status: 'done' });
  // b2: gate and the work it guards done, serving, last step pending: continues, no re-check
  for (const n of ['check', 'work']) markStep(state, 0, n, 'b2', { status: 'done' });
  const { res } = await run(inv, pb, { existing: state });
  assert.equal(res.ok, true);
  const lines = readFileSync(journal, 'utf8').trim().split('\n');
  assert.deepEqual(
    lines.filter((l) => l.startsWith('a1:')),
    ['a1:check', 'a1:work', 'a1:finish'],
  );
  assert.deepEqual(
    lines.filter((l) => l.startsWith('b1:')),
    ['b1:work', 'b1:finish'],
  );
  assert.deepEqual(
    lines.filter((l) => l.startsWith('a2:')),
    [],
  );
  assert.deepEqual(
    lines.filter((l) => l.startsWith('b2:')),
    ['b2:finish'],
  );
  // the step the dead process had begun says so (its commands may have run before the crash)
  const note = (step: string, host: string) => state.steps[0].steps.find((s: any) => s.name === step)!.hosts[host].note;
  assert.match(note('work', 'b1') ?? '', /the interrupted run had begun this step$/);
  assert.doesNotMatch(note('work', 'a1') ?? '', /interrupted/);
  assert.doesNotMatch(note('finish', 'b1') ?? '', /interrupted/);

  // b1 again, but still serving when the run resumes (killed before its stop took effect):
  // its gate is checked again before anything can take it down
  rmSync(journal);
  rmSync(join(dir, 'down-b1'));
  const second = await fresh();
  markStep(second, 0, 'check', 'b1', { status: 'done' });
  markStep(second, 0, 'work', 'b1', { status: 'started' });
  const again = await run(inv, pb, { existing: second });
  assert.equal(again.res.ok, true);
  assert.deepEqual(
    readFileSync(journal, 'utf8')
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('b1:')),
    ['b1:check', 'b1:work', 'b1:finish'],
  );
});

test('--parallel-shards 1: one shard at a time', async (t) => {
  const { dir, inv } = setup(t);
  const { journal, pb } = journalPlaybook(dir, (log) => [{ name: 'roll', scope: 'rolling', steps: [{ name: 's', run: log('s') }] }]);
  const { res } = await run(inv, pb, { parallelShards: 1 });
  assert.equal(res.ok, true);
  assert.deepEqual(readFileSync(journal, 'utf8').trim().split('\n'), ['a1:s', 'a2:s', 'b1:s', 'b2:s']);
});

test('host memory: persisted in the state file, seen by a rollback and by a resumed run', async (t) => {
  const { dir, inv } = setup(t);
  const journal = join(dir, 'journal');
  const fixed = join(dir, 'fixed');
  const pb = definePlaybook({
    name: 'mem',
    description: '',
    params: [],
    phases: () => [
      {
        name: 'ph',
        scope: 'rolling',
        steps: [
          {
            name: 'learn',
            run: async ({ host, memory }) => {
              memory.set('t.before', { v: `old-${host.name}` });
            },
            rollback: async ({ host, memory }) => {
              await host.$`echo ${`rollback:${host.name}:${memory.get<{ v: string }>('t.before')?.v}`} >> ${journal}`;
            },
          },
          {
            name: 'use',
            run: async ({ host, memory }) => {
              await host.$`echo ${`use:${host.name}:${memory.get<{ v: string }>('t.before')?.v}`} >> ${journal}`;
              if (host.name === 'a1') await host.$`test -e ${fixed}`;
            },
          },
        ],
      },
    ],
  });
  const first = await run(inv, pb);
  assert.equal(first.res.ok, false);
  assert.ok(readFileSync(journal, 'utf8').includes('rollback:a1:old-a1'), 'the rollback saw what the step remembered');
  const onDisk = await first.store.load(first.state!.id);
  assert.deepEqual(onDisk.memory?.a1, { 't.before': { v: 'old-a1' } }, 'memory is in the state file');
  // resume: "learn" is done on a1 only if it was not rolled back; either way "use" sees the value
  require('node:fs').writeFileSync(fixed, '');
  const again = await run(inv, pb, { existing: onDisk });
  assert.equal(again.res.ok, true);
  assert.ok(readFileSync(journal, 'utf8').trim().split('\n').includes('use:a2:old-a2'));
  assert.ok(
    readFileSync(journal, 'utf8')
      .trim()
      .split('\n')
      .filter((l) => l === 'use:a1:old-a1').length >= 2,
  );
});

test('a skipped step is a line in plain output and a step-skipped object in JSON', () => {
  for (const mode of ['plain', 'json'] as const) {
    let text = '';
    const w = new Writable({
      write(chunk, _enc, cb) {
        text += String(chunk);
        cb();
      },
    });
    const out = makeOutput(mode, w, w);
    out.stepSkipped('h1', 'roll', 'stop clickhouse-server', 'already done (resumed run)');
    out.end();
    if (mode === 'plain') assert.match(text, /^\d\d:\d\d:\d\d\.\d{3} h1 skip stop clickhouse-server \(already done \(resumed run\)\)\n$/);
    else
      assert.deepEqual((({ ts, ...rest }) => rest)(JSON.parse(text)), {
        type: 'step-skipped',
        host: 'h1',
        phase: 'roll',
        step: 'stop clickhouse-server',
        reason: 'already done (resumed run)',
      });
  }
});
