// Issue 9 #1: from 22.12 the packaged clickhouse-server unit is Type=notify, so a blocking
// `systemctl start` returns only when every table is loaded (minutes, under systemd's own
// timeout). chops starts with --no-block and lets the "server answers" gate wait; and "since the
// start" is ExecMainStartTimestamp (the main process started), not ActiveEnterTimestamp (when
// the server said READY=1, after the start-up errors). Here on the local transport with a
// stand-in `systemctl` first on PATH that records what it is asked and answers as systemd 252
// does for such a unit (`systemctl show -p X --value` prints the bare timestamp).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInventory } from '../../src/inventory/load.js';
import { startClickHouseStep } from '../../tasks/clickhouse/replica-steps.js';
import { makeRunContext } from '../support/run-context.js';

const dir = mkdtempSync(join(tmpdir(), 'chops-systemctl-'));
const calls = join(dir, 'calls');
const state = join(dir, 'state');
const savedPath = process.env.PATH;

before(() => {
  writeFileSync(
    join(dir, 'systemctl'),
    `#!/bin/sh
echo "$*" >> '${calls}'
case "$1" in
  is-active) cat '${state}' ;;
  start) echo active > '${state}' ;;
  show)
    case "$3" in
      ExecMainStartTimestamp) echo 'Wed 2026-12-02 00:10:00 UTC' ;;
      ActiveEnterTimestamp) echo 'Wed 2026-12-02 00:14:30 UTC' ;;
    esac ;;
esac
`,
  );
  chmodSync(join(dir, 'systemctl'), 0o755);
  process.env.PATH = `${dir}:${savedPath}`;
});
after(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

function inventory() {
  return parseInventory(
    `version: 1
clusters:
  shop:
    shards:
      - replicas: [{host: a, connection: local}]
`,
    join(tmpdir(), 'inventory.yml'),
  );
}

test('a stopped server is started with --no-block (a Type=notify unit would block until every table is loaded)', async () => {
  writeFileSync(state, 'inactive\n');
  writeFileSync(calls, '');
  const run = makeRunContext(inventory());
  try {
    const r = (await startClickHouseStep.run(run.stepContext('a'))) as any;
    assert.match(r.note, /^started in /);
    const log = readFileSync(calls, 'utf8').trim().split('\n');
    assert.deepEqual(
      log.filter((l) => l.startsWith('start')),
      ['start --no-block clickhouse-server'],
    );
  } finally {
    await run.close();
  }
});

test('a server already running: "since the start" is ExecMainStartTimestamp, not when the unit became active', async () => {
  writeFileSync(state, 'active\n');
  writeFileSync(calls, '');
  const run = makeRunContext(inventory());
  try {
    const r = (await startClickHouseStep.run(run.stepContext('a'))) as any;
    assert.equal(r.skipped, 'already running');
    assert.equal((run.shared.get('replica-restarted-at:a') as Date).toISOString(), '2026-12-02T00:10:00.000Z');
    assert.ok(!readFileSync(calls, 'utf8').includes('start --no-block'), 'not started again');
  } finally {
    await run.close();
  }
});
