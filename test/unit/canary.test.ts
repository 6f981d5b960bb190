// Canaries of a rolling phase (src/engine/canary.ts) on the engine with real local shells: which
// replicas are canaries, that they (and the soak) come before every other replica, and that a
// resumed run repeats neither.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseInventory } from '../../src/inventory/load.js';
import { localInventoryText } from '../support/inventory.js';
import { Runner } from '../../src/engine/runner.js';
import { makeOutput } from '../../src/engine/output.js';
import { RunStore } from '../../src/run/state/store.js';
import { buildSteps, getStep } from '../../src/run/state/steps.js';
import { definePlaybook, phaseHosts, type Phase } from '../../src/engine/playbook.js';
import { pickCanaries, withCanaries } from '../../src/engine/canary.js';
import { UsageError } from '../../src/errors.js';

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'chops-canary-'));
  const inv = parseInventory(
    localInventoryText(dir, [
      ['a1', 'a2'],
      ['b1', 'b2'],
      ['c1', 'c2', 'c3'],
    ]),
    join(dir, 'inventory.yml'),
  );
  return { dir, inv, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('canaries: the first selected replica of the first N shards, never two of one shard', () => {
  const { inv, cleanup } = setup();
  try {
    const names = (n: number, sel = inv.hosts) => pickCanaries(sel, n).map((h) => h.name);
    assert.deepEqual(names(1), ['a1']);
    assert.deepEqual(names(3), ['a1', 'b1', 'c1']);
    // --limit: the first selected replica of each selected shard
    assert.deepEqual(
      names(
        2,
        inv.hosts.filter((h) => ['a2', 'c2', 'c3'].includes(h.name)),
      ),
      ['a2', 'c2'],
    );
    assert.throws(
      () => names(4),
      (e: unknown) => e instanceof UsageError && /--canary 4: the selection has 3 shard\(s\)/.test(e.message),
    );
    assert.throws(
      () =>
        names(
          2,
          inv.hosts.filter((h) => h.shardName === inv.hosts[4].shardName),
        ),
      UsageError,
    );
  } finally {
    cleanup();
  }
});

async function runOnce(inv: any, phases: Phase[], existing?: any) {
  const store = new RunStore(inv.stateDir);
  const pb = definePlaybook({ name: 't', description: 't', params: [], phases: () => phases });
  const state =
    existing ??
    (await store.create({
      playbook: 't',
      params: {},
      inventory: inv.path,
      inventoryHash: inv.hash,
      cluster: 'c1',
      steps: buildSteps(
        phases.map((p) => ({ phase: p.name, scope: p.scope, steps: p.steps.map((s) => s.name), hosts: phaseHosts(p, inv.hosts).map((h) => h.name) })),
      ),
    }));
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const runner = new Runner({
    playbook: pb,
    params: {},
    inventory: inv,
    selected: inv.hosts,
    plan: false,
    output: makeOutput('json', sink, sink),
    parallelShards: 3,
    parallelHosts: 8,
    state,
    store,
  });
  const res = await runner.execute();
  await store.flush();
  return { res, state };
}

test('canaries and the soak come before every other replica; a resumed run repeats neither', async () => {
  const { dir, inv, cleanup } = setup();
  const journal = join(dir, 'journal');
  const log =
    (tag: string) =>
    async ({ host }: any) =>
      void (await host.$`echo ${`${host.name}:${tag}`} >> ${journal}`);
  try {
    const phase: Phase = {
      name: 'upgrade',
      scope: 'rolling',
      steps: [
        {
          name: 'work',
          run: async (ctx: any) => {
            await log('work')(ctx);
            // b2 fails until the operator fixes it: the run stops in "the rest"
            if (ctx.host.name === 'b2' && !existsSync(join(dir, 'fixed'))) await ctx.host.$`exit 3`;
          },
        },
      ],
    };
    const phases = withCanaries(phase, 2, { name: 'soak', run: log('soak') });
    assert.deepEqual(
      phases.map((p) => [p.name, p.scope, phaseHosts(p, inv.hosts).map((h) => h.name)]),
      [
        ['upgrade: canaries', 'rolling', ['a1', 'b1']],
        ['soak', 'once', inv.hosts.map((h) => h.name)],
        ['upgrade: the rest', 'rolling', ['a2', 'b2', 'c1', 'c2', 'c3']],
      ],
    );
    const first = await runOnce(inv, phases);
    assert.equal(first.res.ok, false);
    const lines = readFileSync(journal, 'utf8').trim().split('\n');
    const soak = lines.indexOf('a1:soak');
    assert.ok(soak > lines.indexOf('a1:work') && soak > lines.indexOf('b1:work'), lines.join(' '));
    for (const other of ['a2', 'b2', 'c1']) assert.ok(lines.indexOf(`${other}:work`) > soak, `${other} after the soak: ${lines.join(' ')}`);
    assert.equal(getStep(first.state, 2, 'work', 'b2')?.status, 'failed');

    writeFileSync(join(dir, 'fixed'), '');
    rmSync(journal);
    const again = await runOnce(inv, phases, first.state);
    assert.equal(again.res.ok, true);
    const l2 = readFileSync(journal, 'utf8').trim().split('\n');
    assert.ok(!l2.some((l) => /^(a1|b1):|:soak$/.test(l)), `neither the canaries nor the soak again: ${l2.join(' ')}`);
    assert.ok(l2.includes('b2:work'), 'the failed replica is redone');
  } finally {
    cleanup();
  }
});

test('no canaries: the phase is left as it is', () => {
  const phase: Phase = { name: 'p', scope: 'rolling', steps: [] };
  assert.deepEqual(withCanaries(phase, 0, { name: 'soak', run: async () => {} }), [phase]);
});
