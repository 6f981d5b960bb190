// `chops status` on a modern server (HTTP level, a local endpoint answering as 24.8 does:
// test/helpers/server24.ts): the same facts and healthy-replica definition as the gates, the
// server-wide metrics where they are fresh, the inactive replica named, and --verbose showing
// what the capability probe found. 18.16: test/integration/status.test.ts on the lab.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInventory } from '../../src/inventory/load.js';
import { collectStatus, renderStatus } from '../../src/commands/status.js';
import { startFakeClickHouse, type FakeAnswer, type FakeClickHouse } from '../helpers/fake-clickhouse-http.js';
import { metrics24 } from '../helpers/clickhouse-shapes.js';
import { REPLICA, server24 } from '../helpers/server24.js';

const dataDir = mkdtempSync(join(tmpdir(), 'chops-status-'));
let fake: FakeClickHouse;
let current: (q: string, params: URLSearchParams) => FakeAnswer = server24({});

before(async () => {
  fake = await startFakeClickHouse((q, p) => current(q, p));
});
after(async () => {
  await fake?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function inventory() {
  return parseInventory(
    `version: 1
defaults:
  clickhouse: {http_port: ${fake.port}, status_command: 'true', data_dir: ${dataDir}}
clusters:
  shop:
    shards:
      - replicas: [{host: a, connection: local}]
`,
    join(tmpdir(), 'inventory.yml'),
  );
}

test('status: healthy by the one definition; --verbose lists the capabilities (LIGHTWEIGHT, fast metrics)', async () => {
  current = server24({});
  const inv = inventory();
  const [row] = await collectStatus(inv, inv.hosts, { verbose: true });
  assert.deepEqual(row.problems, []);
  assert.equal(row.healthy, true);
  assert.equal(row.capabilities?.['SYNC REPLICA LIGHTWEIGHT'], true);
  assert.equal(row.capabilities?.['fast replica metrics'], true);
  assert.equal(row.metrics?.maxQueueSize, 0);
  assert.match(renderStatus([row]), /capabilities \(probed on each server\):\n {2}a: .*SYNC REPLICA LIGHTWEIGHT yes, fast replica metrics yes/);
  const quiet = await collectStatus(inv, inv.hosts);
  assert.equal(quiet[0].capabilities, undefined, 'capabilities only with --verbose');
});

test('status: a read-only table the chops user cannot see is still found (ReadonlyReplica is server-wide); the inactive replica is named', async () => {
  // old code: healthy (its per-table rows show nothing wrong)
  current = server24({
    replicas: [{ ...REPLICA, active_replicas: 1, replica_is_active: { a: 1, b: 0 } }],
    metrics: () => metrics24({ ReadonlyReplica: 1 }),
  });
  const inv = inventory();
  const [row] = await collectStatus(inv, inv.hosts);
  assert.equal(row.healthy, false);
  assert.deepEqual(row.problems, ['server-wide: ReadonlyReplica=1 (replicated tables in read-only mode)']);
  assert.deepEqual(row.shardView, ['inactive replicas: shop.orders (1/2 active; inactive: b)']);
  assert.match(renderStatus([row]), /^a sees inactive replicas: shop\.orders \(1\/2 active; inactive: b\)$/m);
});
