// The gates' modern-server paths (ClickHouse 23–25), at the HTTP level: the real @clickhouse/client
// talks to a local endpoint answering as a 24.8 server does (test/helpers/fake-clickhouse-http.ts
// says what is reproduced and from which ClickHouse source). The 18.16 paths run on the real lab
// (test/integration/gates.test.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInventory } from '../../src/inventory/load.js';
import { chClient } from '../../src/clickhouse/client.js';
import { ClickHouseError } from '../../src/clickhouse/errors.js';
import { GateError } from '../../src/errors.js';
import { checkPeersBeforeStop, checkSelfBeforeStop, waitReplicaHealthy } from '../../tasks/clickhouse/gates.js';
import { makeRunContext } from '../support/run-context.js';
import { startFakeClickHouse, VERSION, type FakeAnswer, type FakeClickHouse } from '../helpers/fake-clickhouse-http.js';
import { server24 } from '../helpers/server24.js';

let fake: FakeClickHouse;
let current: (q: string, params: URLSearchParams) => FakeAnswer = server24({});

before(async () => {
  fake = await startFakeClickHouse((q, p) => current(q, p));
});
after(async () => fake?.close());

function inventory(extra = '') {
  return parseInventory(
    `version: 1
defaults:
  clickhouse: {http_port: ${fake.port}, status_command: 'true', error_log: /nonexistent/chops-test-err.log}
  gates: {wait_timeout: 1s, poll_interval: 50ms, caught_up_for: 0s${extra}}
clusters:
  shop:
    shards:
      - replicas: [{host: a, connection: local}, {host: b, connection: local}]
`,
    join(tmpdir(), 'inventory.yml'),
  );
}

async function withRun<T>(fn: (run: ReturnType<typeof makeRunContext>) => Promise<T>, extra = ''): Promise<T> {
  const run = makeRunContext(inventory(extra));
  try {
    return await fn(run);
  } finally {
    await run.close();
  }
}

test('error codes of 21.x+ servers come from the official client (it strips "Code: N." from the message)', async () => {
  current = server24({});
  await withRun(async (run) => {
    const c = await chClient(run, run.inventory.hosts[0]);
    await assert.rejects(c.query('SELECT * FROM shop.missing'), (e: any) => {
      assert.ok(e instanceof ClickHouseError, String(e));
      assert.equal(e.code, 60);
      assert.equal(e.type, 'UNKNOWN_TABLE');
      assert.match(e.message, /^a: ClickHouse \[Code 60 UNKNOWN_TABLE\]: Table shop\.missing does not exist/);
      return true;
    });
  });
});

test('zero replicated tables (a user without SHOW TABLES) is refused, not read as healthy or idle', async () => {
  current = server24({ replicas: [] });
  await withRun(async (run) => {
    await assert.rejects(
      checkPeersBeforeStop(run.stepContext('a')),
      (e: any) => e instanceof GateError && e.gate === 'peers healthy' && /b: sees 0 replicated table\(s\), expected at least 1/.test(e.lastValue),
    );
    await assert.rejects(
      checkSelfBeforeStop(run.stepContext('a')),
      (e: any) => e instanceof GateError && /replicated tables/.test(e.gate) && /replicated_tables=0 < 1/.test(e.lastValue),
    );
    await assert.rejects(
      waitReplicaHealthy(run.stepContext('a'), { since: new Date() }),
      (e: any) => e instanceof GateError && /sees 0 replicated table/.test(e.lastValue),
    );
  });
  // an inventory that says the host has none
  await withRun(async (run) => {
    const r = (await checkSelfBeforeStop(run.stepContext('a'))) as any;
    assert.equal(r.data.replicatedTables, 0);
  }, ', min_replicated_tables: 0');
});

test('idle gate: pending sends from system.distribution_queue; a failing system.tables (MySQL engine) is never asked', async () => {
  current = server24({
    tablesFail: true,
    distributionQueue: [{ database: 'shop', table: 'orders_dist', data_files: '4', broken_data_files: '0', last_exception: '' }],
  });
  await withRun(async (run) => {
    await assert.rejects(
      checkSelfBeforeStop(run.stepContext('a')),
      (e: any) =>
        e instanceof GateError && e.gate === 'pending distributed sends' && /pending_distributed_files=4 \(shop\.orders_dist: 4 file\(s\)\)/.test(e.lastValue),
    );
  });
  current = server24({ tablesFail: true });
  const from = fake.statements.length;
  await withRun(async (run) => {
    const r = (await checkSelfBeforeStop(run.stepContext('a'))) as any;
    assert.match(r.note, /^idle/);
    assert.equal(r.data.pendingDistributedFiles, 0);
  });
  // (the capability probe reads system.tables of the `system` database only: no other engine is opened)
  const tablesQueries = fake.statements.slice(from).filter((q) => /FROM system\.tables/.test(q));
  assert.ok(
    tablesQueries.every((q) => /FROM system\.tables WHERE database = 'system'/.test(q)),
    `system.tables not walked on a server with distribution_queue: ${tablesQueries.join(' | ')}`,
  );
});

test("active queries: a killed query still running (is_cancelled) is not someone's work", async () => {
  const killed = { query_id: 'f00', user: 'etl', elapsed: 30, query: 'INSERT INTO shop.orders SELECT ...', is_cancelled: 1 };
  const live = { query_id: 'b4r', user: 'bi', elapsed: 2, query: 'SELECT count() FROM shop.orders', is_cancelled: 0 };
  current = server24({ processes: [killed, live] });
  await withRun(async (run) => {
    const r = (await checkSelfBeforeStop(run.stepContext('a'))) as any;
    assert.equal(r.data.activeQueries, 1, 'only the live one (max_active_queries 1)');
  });
  current = server24({ processes: [killed, live, { ...live, query_id: 'b4z' }] });
  await withRun(async (run) => {
    await assert.rejects(checkSelfBeforeStop(run.stepContext('a')), (e: any) => e instanceof GateError && /active_queries=2 > 1/.test(e.lastValue));
  });
});

test('new errors since the start come from system.errors (JSON server logs leave the text scan nothing to see)', async () => {
  const since = new Date(Date.now() - 5000);
  const at = new Date(Date.now() - 2000).toISOString().replace('T', ' ').slice(0, 19);
  current = server24({
    errors: [{ name: 'KEEPER_EXCEPTION', code: 999, value: '3', last_error_time: at, last_error_message: 'Coordination::Exception: Connection loss' }],
  });
  await withRun(async (run) => {
    const r = (await waitReplicaHealthy(run.stepContext('a'), { since })) as any;
    assert.equal(r.data.newErrorCount, 3);
    assert.match(
      r.note,
      /WARNING: 3 new error\(s\) in system\.errors since the start, last: .* KEEPER_EXCEPTION \(Code 999\) ×3: Coordination::Exception: Connection loss/,
    );
    assert.ok(run.events.some((e: any) => e.type === 'warning' && e.count === 3));
    assert.ok(
      run.events.some((e: any) => e.type === 'capabilities' && e.version === VERSION && e.features['system.errors'] === true),
      'the probe is logged',
    );
  });
});

test('asynchronous loading: the gate waits while tables load (progress shown), then passes; a failed load job stops it', async () => {
  let asked = 0;
  // 312/4000 loaded at first, all loaded from the fourth ask (count() and countIf() are UInt64: quoted)
  current = server24({
    loader: () =>
      ++asked < 4 ? { total: '4000', pending: String(4000 - 312 * asked), failed: '0', error: '' } : { total: '4000', pending: '0', failed: '0', error: '' },
  });
  await withRun(async (run) => {
    const r = (await waitReplicaHealthy(run.stepContext('a'), { since: new Date() })) as any;
    assert.match(r.note, /^healthy /);
    assert.ok(asked >= 4, `waited for the loader (${asked} polls)`);
    assert.ok(
      run.notes.some((n) => /waiting for "tables loaded": 312\/4000 loaded/.test(n.text)),
      run.notes.map((n) => n.text).join(' | '),
    );
  }, '');
  let failedAsks = 0;
  current = server24({
    loader: () => (failedAsks++, { total: '4000', pending: '10', failed: '1', error: 'Code: 1001. DB::Exception: std::exception: broken part\nstack' }),
  });
  await withRun(async (run) => {
    await assert.rejects(
      waitReplicaHealthy(run.stepContext('a'), { since: new Date() }),
      (e: any) => e instanceof GateError && e.gate === 'tables loaded' && /1 table load job\(s\) failed: Code: 1001/.test(e.message),
    );
    assert.equal(failedAsks, 1, 'at the first poll that saw it, not after the deadline');
  });
});

test('the idle gate lists queue entries by type, the most frequent first, whatever order the server gave', async () => {
  const { countBy } = await import('../../tasks/clickhouse/gates/idle.js');
  assert.equal(countBy(['MERGE_PARTS', 'GET_PART', 'GET_PART', 'MERGE_PARTS', 'GET_PART', 'MUTATE_PART']), 'GET_PART:3 MERGE_PARTS:2 MUTATE_PART:1');
  assert.equal(countBy(['b', 'a']), 'a:1 b:1');
  assert.equal(countBy([]), '');
});
