// ctx.memory and StepResult.data through the Runner on local shells: later steps and phases,
// rollbacks and (across processes) resumes see what a host's steps remembered; plan mode keeps
// it for the process only; every step's data lands in its step state.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type TestContext, test } from 'node:test';
import { makeOutput } from '../../src/engine/output.js';
import { definePlaybook, type Phase } from '../../src/engine/playbook.js';
import { Runner } from '../../src/engine/runner.js';
import { parseInventory } from '../../src/inventory/load.js';
import { buildSteps, getStep } from '../../src/run/state/steps.js';
import { RunStore } from '../../src/run/state/store.js';

/** A local 2-replica inventory in a directory of its own, removed when test T ends. */
function setup(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'chops-memory-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const inv = parseInventory(
    `version: 1\nstate: {dir: ${dir}/state}\nclusters:\n  c1:\n    shards:\n      - replicas: [{host: a1, connection: local}, {host: a2, connection: local}]\n`,
    join(dir, 'inventory.yml'),
  );
  return { inv };
}

const sink = new Writable({ write: (_c, _e, cb) => cb() });

async function run(inv: any, phases: Phase[], plan = false) {
  const pb = definePlaybook({ name: 't', description: 't', params: [], phases: () => phases });
  const store = new RunStore(inv.stateDir);
  const state = plan
    ? undefined
    : await store.create({
        playbook: 't',
        params: {},
        inventory: inv.path,
        inventoryHash: inv.hash,
        cluster: 'c1',
        steps: buildSteps(phases.map((p) => ({ phase: p.name, scope: p.scope, steps: p.steps.map((s) => s.name), hosts: inv.hosts.map((h: any) => h.name) }))),
      });
  const runner = new Runner({
    playbook: pb,
    params: {},
    inventory: inv,
    selected: inv.hosts,
    plan,
    output: makeOutput('json', sink, sink),
    parallelShards: 2,
    parallelHosts: 8,
    state,
    store: state ? store : undefined,
  });
  const res = await runner.execute();
  await store.flush();
  return { res, state, store };
}

test('memory: later steps, later phases and the rollback of a failed step see it; data is in the step state', async (t) => {
  const { inv } = setup(t);
  const seen: string[] = [];
  const phases: Phase[] = [
    {
      name: 'learn',
      scope: 'each',
      steps: [
        {
          name: 'read version',
          run: async (ctx) => {
            await ctx.memory.set('upgrade.previousVersion', `v-${ctx.host.name}`);
            return { data: { version: `v-${ctx.host.name}` } };
          },
        },
      ],
    },
    {
      name: 'change',
      scope: 'rolling',
      steps: [
        {
          name: 'install',
          run: async (ctx) => {
            seen.push(`${ctx.host.name} install sees ${ctx.memory.get('upgrade.previousVersion')}`);
            if (ctx.host.name === 'a2') throw new Error('install failed');
          },
          rollback: async (ctx) => {
            seen.push(`${ctx.host.name} rollback to ${ctx.memory.get<string>('upgrade.previousVersion')}`);
          },
        },
      ],
    },
  ];
  const { res, state, store } = await run(inv, phases);
  assert.equal(res.ok, false);
  assert.deepEqual(seen, ['a1 install sees v-a1', 'a2 install sees v-a2', 'a2 rollback to v-a2']);
  const disk = await store.load(state!.id);
  assert.deepEqual(disk.memory, { a1: { 'upgrade.previousVersion': 'v-a1' }, a2: { 'upgrade.previousVersion': 'v-a2' } });
  assert.deepEqual(getStep(disk, 0, 'read version', 'a2')?.data, { version: 'v-a2' });
  assert.equal(getStep(disk, 1, 'install', 'a1')?.data, undefined, 'no data, no field');
});

test('memory in plan mode lives for the process; values are JSON copies', async (t) => {
  const { inv } = setup(t);
  const got: unknown[] = [];
  const phases: Phase[] = [
    {
      name: 'p',
      scope: 'each',
      steps: [
        {
          name: 'set',
          run: async (ctx) => {
            void ctx.memory.set('k', { n: 1 });
            const v = ctx.memory.get<{ n: number }>('k')!;
            v.n = 99;
          },
        },
        {
          name: 'get',
          run: async (ctx) => {
            got.push(ctx.memory.get('k'));
          },
        },
      ],
    },
  ];
  const { res } = await run(inv, phases, true);
  assert.equal(res.ok, true);
  assert.deepEqual(got, [{ n: 1 }, { n: 1 }], 'get returns a copy');
  const bad: Phase[] = [
    {
      name: 'p',
      scope: 'once',
      steps: [
        {
          name: 'set',
          run: async (ctx) => {
            await ctx.memory.set('k', () => 1);
            await ctx.memory.set('j', { f: 1n });
          },
        },
      ],
    },
  ];
  const r2 = await run(inv, bad);
  assert.equal(r2.res.ok, true, 'a function is dropped as JSON drops it; a bigint becomes a string');
  assert.deepEqual(r2.state!.memory, { a1: { j: { f: '1' } } });
});
