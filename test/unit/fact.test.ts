// The fact machinery on the local transport: a fact's command runs read-only (also in plan mode),
// its parser sees stdout/stderr/code, readings are cached until the host is changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineFact } from '../../src/fact.js';
import { HostHandle } from '../../src/host.js';
import { LocalTransport } from '../../src/transport/local.js';
import { PlanTransport } from '../../src/transport/plan.js';
import { shq } from '../../src/quote.js';
import { parseInventory } from '../../src/inventory/load.js';

const localHost = () =>
  parseInventory(
    `version: 1
clusters:
  c:
    shards:
      - replicas: [{host: me, connection: local}]
`,
    join(tmpdir(), 'inventory.yml'),
  ).hosts[0];

const fileContent = defineFact({
  name: 'file content',
  command: (path: string) => `cat ${shq(path)}`,
  parse: ({ stdout, code }) => (code === 0 ? stdout : undefined),
});

test('host.fact: cached within a step, read again after a change, parser sees the exit code', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chops-fact-'));
  try {
    const f = join(dir, 'x');
    await writeFile(f, 'one');
    const def = localHost();
    const h = new HostHandle(def, new LocalTransport(def), false);
    h.facts.open(); // what the runner does when a step starts on the host
    assert.equal(await h.fact(fileContent, f), 'one');
    await writeFile(f, 'two'); // changed behind chops' back: the step's cached reading stands
    assert.equal(await h.fact(fileContent, f), 'one');
    await h.$`printf three > ${f}`; // a change through the host drops what was known
    assert.equal(await h.fact(fileContent, f), 'three');
    assert.equal(await h.fact(fileContent, join(dir, 'missing')), undefined);
    h.facts.close(); // the step ended: outside a step of its own a host is always read afresh
    await writeFile(f, 'four');
    assert.equal(await h.fact(fileContent, f), 'four');
    await writeFile(f, 'five');
    assert.equal(await h.fact(fileContent, f), 'five');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('plan mode: facts are read for real, changes are recorded, whenApplied gives the placeholder', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chops-fact-'));
  try {
    const f = join(dir, 'x');
    await writeFile(f, 'real');
    const def = localHost();
    const plan = new PlanTransport(new LocalTransport(def));
    const h = new HostHandle(def, plan, true);
    h.facts.open();
    assert.equal(await h.fact(fileContent, f), 'real');
    await h.$`printf changed > ${f}`;
    assert.equal(plan.changes.length, 1);
    assert.equal(await h.fact(fileContent, f), 'real', 'the recorded change did not happen');
    assert.equal(await h.whenApplied('<new uuid>', async () => 'read'), '<new uuid>');
    const live = new HostHandle(def, new LocalTransport(def), false);
    assert.equal(await live.whenApplied('<new uuid>', async () => 'read'), 'read');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
