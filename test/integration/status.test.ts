// `chops status` against the real replicated lab (4 nspawn containers, clickhouse-server 18.16
// under systemd, 2 shards × 2 replicas), run as a child process from the sources as an operator
// would run it: rows, exit codes (0 healthy, 1 unhealthy, 2 usage), unreachable hosts as rows.
//
//   node --import tsx --test test/integration/status.test.ts
//   CHOPS_TEST_REUSE_LAB=1 ...   reuse a running lab named chstatus (left up afterwards)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ProcResult } from '../support/process.js';
import { chops } from '../support/cli.js';
import { clickhouseLab as upClickHouseLab, labSh as labExec, type TestLab } from '../support/lab.js';

const LAB = 'chstatus';
let lab: TestLab;
const timings: Record<string, number> = {};

function status(args: string[]): Promise<ProcResult> {
  return chops(['status', ...args]).done; // the bundle, as shipped
}

function json(r: ProcResult): { healthy: boolean; durationMs: number; replicas: any[] } {
  try {
    return JSON.parse(r.stdout);
  } catch {
    assert.fail(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

before(async () => {
  lab = await upClickHouseLab(LAB);
});

after(async () => {
  await lab?.down();
  if (Object.keys(timings).length) console.log(`# timings (ms): ${JSON.stringify(timings)}`);
});

test('healthy lab: 4 healthy rows, exit 0', async () => {
  const r = await status(['-i', lab.inventoryPath, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = json(r);
  timings.status4HostsInProcess = s.durationMs;
  timings.status4HostsWallClock = Math.round(r.ms);
  assert.equal(s.healthy, true);
  assert.deepEqual(
    s.replicas.map((x) => [x.cluster, x.shard, x.replica, x.host]),
    [
      ['lab', '01', 'ch1', 'ch1'],
      ['lab', '01', 'ch2', 'ch2'],
      ['lab', '02', 'ch3', 'ch3'],
      ['lab', '02', 'ch4', 'ch4'],
    ],
  );
  for (const row of s.replicas) {
    assert.equal(row.reachable, true);
    assert.equal(row.service, 'active');
    assert.equal(row.version, '18.16.1');
    assert.ok(row.uptimeSeconds >= 0);
    assert.equal(row.readonlyTables, 0);
    assert.equal(row.queueSize, 0);
    assert.equal(row.replicatedTables, 1);
    assert.ok(row.disk.sizeBytes > 0 && row.disk.usePercent >= 0 && row.disk.fsType, JSON.stringify(row.disk));
    assert.equal(row.healthy, true);
    assert.deepEqual(row.problems, []);
  }
  const text = await status(['-i', lab.inventoryPath]);
  assert.equal(text.code, 0);
  const lines = text.stdout.trim().split('\n');
  assert.match(
    lines[0],
    /^CLUSTER\s+SHARD\s+REPLICA\s+HOST\s+SSH\s+VERSION\s+PACKAGE\s+UPTIME\s+SERVICE\s+RO\s+QUEUE\s+DELAY\s+DEVICE\s+FS\s+SIZE\s+USE%\s+HEALTH$/,
  );
  assert.equal(lines.filter((l) => /^lab\s+0[12]\s+ch\d\s+ch\d\s+yes\s+18\.16\.1\s+18\.16\.1\+ds-7\.3\+b2\s.*\sok$/.test(l)).length, 4, text.stdout);
  assert.match(text.stdout, /4\/4 replica\(s\) healthy/);
});

test('--verbose: the capability probe on 18.16 chooses the polling paths (no SYNC REPLICA LIGHTWEIGHT, no fast metrics)', async () => {
  const r = await status(['-i', lab.inventoryPath, '--limit', 'ch1', '--verbose', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const caps = json(r).replicas[0].capabilities;
  console.log(`# 18.16 capabilities: ${JSON.stringify(caps)}`);
  assert.equal(caps['SYNC REPLICA LIGHTWEIGHT'], false);
  assert.equal(caps['fast replica metrics'], false);
  assert.equal(caps['replicas.replica_is_active'], false);
  assert.equal(caps['system.distribution_queue'], false);
  assert.equal(caps['setting receive_timeout'], true);
  const text = await status(['-i', lab.inventoryPath, '--limit', 'ch1', '--verbose']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /capabilities \(probed on each server\):\n {2}ch1: .*SYNC REPLICA LIGHTWEIGHT no, fast replica metrics no/);
});

test('--limit selects rows; a bad --limit is a usage error (exit 2)', async () => {
  const r = await status(['-i', lab.inventoryPath, '--limit', 'ch1,ch3', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    json(r).replicas.map((x) => x.host),
    ['ch1', 'ch3'],
  );
  const bad = await status(['-i', lab.inventoryPath, '--limit', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown host "nope"/);
  const missing = await status(['-i', path.join(lab.dir, 'no-such-inventory.yml')]);
  assert.equal(missing.code, 2, missing.stderr);
});

test('clickhouse-server stopped on ch2: exit 1, ch2 down, the others healthy', async () => {
  await labExec(lab, 'ch2', 'systemctl stop clickhouse-server');
  try {
    const r = await status(['-i', lab.inventoryPath, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const s = json(r);
    assert.equal(s.healthy, false);
    const ch2 = s.replicas.find((x) => x.host === 'ch2');
    assert.equal(ch2.reachable, true);
    assert.equal(ch2.service, 'inactive');
    assert.equal(ch2.healthy, false);
    assert.ok(
      ch2.problems.some((p: string) => /service clickhouse-server is inactive/.test(p)),
      ch2.problems.join('; '),
    );
    assert.ok(ch2.disk, 'the disk is still reported');
    for (const h of ['ch1', 'ch3', 'ch4']) assert.equal(s.replicas.find((x) => x.host === h).healthy, true, h);
    const text = await status(['-i', lab.inventoryPath]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^lab\s+01\s+ch2\s+ch2\s+yes\s+-\s+18\.16\.1\+ds-7\.3\+b2\s+-\s+inactive\s.*UNHEALTHY$/m);
    assert.match(text.stdout, /^ch2: service clickhouse-server is inactive/m);
    assert.match(text.stdout, /3\/4 replica\(s\) healthy/);
  } finally {
    await labExec(lab, 'ch2', 'systemctl start clickhouse-server');
  }
});

test('a host that does not answer ssh is a row (reachable: no, with the reason), not a crash', async () => {
  // ch4 moved to an address nobody answers on, with a short connect timeout
  const text = readFileSync(lab.inventoryPath, 'utf8');
  const moved = text.replace(/(- host: ch4\n\s+address: )(\d+\.\d+\.\d+)\.\d+/, '$1$2.250').replace(/connect_timeout: \S+/, 'connect_timeout: 2s');
  assert.notEqual(moved, text);
  const inv = path.join(lab.dir, 'inventory-unreachable.yml');
  writeFileSync(inv, moved);
  const r = await status(['-i', inv, '--json']);
  assert.equal(r.code, 1, r.stderr);
  const s = json(r);
  const ch4 = s.replicas.find((x) => x.host === 'ch4');
  assert.equal(ch4.reachable, false);
  assert.match(ch4.reason, /ch4: cannot connect/);
  assert.equal(ch4.healthy, false);
  assert.equal(s.replicas.filter((x) => x.healthy).length, 3);
  assert.ok(r.ms < 8000, `bounded by the connect timeout (${Math.round(r.ms)} ms)`);
});
