// One declaration per gate threshold (src/gates/thresholds.ts): the inventory schema, the flags,
// the override and the README table all come from it, and a value is checked the same way from
// the inventory and from a flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { THRESHOLDS, effectiveGates, withThresholdsTable } from '../../src/gates/thresholds.js';
import { gatesSchema } from '../../src/inventory/schema.js';
import { GATE_PARAMS } from '../../tasks/clickhouse/gate-params.js';
import { parseParams } from '../../src/engine/params.js';
import { parseInventory } from '../../src/inventory/load.js';
import rollingRestart from '../../playbooks/rolling-restart.js';

test('README gate table is the one generated from the table (run scripts/readme-gates.ts)', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  assert.equal(withThresholdsTable(readme), readme);
});

test('schema keys and flags are exactly the table', () => {
  assert.deepEqual(
    Object.keys(gatesSchema.fields),
    THRESHOLDS.map((t) => t.key),
  );
  assert.deepEqual(
    GATE_PARAMS.map((p) => p.name),
    THRESHOLDS.map((t) => t.flag),
  );
});

const inv = (gates: string) =>
  parseInventory(
    `version: 1
defaults:
  gates: {${gates}}
clusters:
  c:
    shards:
      - replicas: [{host: a, connection: local}, {host: b, connection: local}]
`,
    join(tmpdir(), 'inventory.yml'),
  );

test('defaults in milliseconds; flags override per run without touching the inventory', () => {
  const i = inv('max_delay: 30s');
  const h = i.hosts[0];
  assert.equal(h.gates.maxDelayMs, 30_000);
  assert.equal(h.gates.waitTimeoutMs, 300_000);
  assert.equal(h.gates.caughtUpForMs, 2_000);
  const params = parseParams(rollingRestart, { 'wait-timeout': '90s', 'max-queue-size': '5', 'allow-mutations': 'true' });
  const before = structuredClone(i.hosts);
  const eff = effectiveGates(h.gates, params);
  assert.equal(eff.waitTimeoutMs, 90_000);
  assert.equal(eff.maxQueueSize, 5);
  assert.equal(eff.allowMutations, true);
  assert.equal(eff.maxDelayMs, 30_000, 'not given as a flag: the inventory value');
  assert.deepEqual(i.hosts, before, 'the inventory is not changed');
  // phases() needs no call: the same runbook whatever the flags
  assert.equal(rollingRestart.phases(params, i), rollingRestart.phases({}, i));
});

test('the same value is refused from the inventory and from the flag, with the same range', () => {
  for (const [key, flag, value] of [
    ['wait_timeout', 'wait-timeout', '0s'],
    ['wait_timeout', 'wait-timeout', '30d'],
    ['poll_interval', 'poll-interval', '1ms'],
    ['caught_up_for', 'caught-up-for', '11m'],
    ['max_queue_size', 'max-queue-size', '-5'],
  ] as const) {
    let inventoryMessage = '';
    try {
      inv(`${key}: ${value}`);
    } catch (e) {
      inventoryMessage = String((e as Error).message);
    }
    assert.ok(inventoryMessage.includes(key), `inventory ${key}: ${value} refused (${inventoryMessage})`);
    assert.throws(
      () => parseParams(rollingRestart, { [flag]: value }),
      (e: any) => e.name === 'UsageError' && e.message.includes(`--${flag}`),
      `flag --${flag} ${value} refused`,
    );
  }
});
