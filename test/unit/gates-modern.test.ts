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

// system tables and the probed columns of a 24.8 server (docs: "System Tables"; columns as listed
// on the pages of system.processes, system.errors, system.replicas).
const TABLES_24 = [
  'asynchronous_loader',
  'asynchronous_metrics',
  'clusters',
  'columns',
  'databases',
  'distribution_queue',
  'errors',
  'macros',
  'metrics',
  'mutations',
  'processes',
  'replicas',
  'replication_queue',
  'tables',
  'zookeeper_connection',
];
const COLUMNS_24 = [
  'processes.query_id',
  'processes.is_initial_query',
  'processes.is_cancelled',
  'replicas.replica_is_active',
  'errors.last_error_time',
  'errors.last_error_message',
  'errors.remote',
];

// A healthy 24.8 replica's system.replicas row in JSONEachRow: UInt8/UInt32 as numbers, the
// Int64 log_lag and UInt64 absolute_delay quoted.
const REPLICA = {
  database: 'shop',
  table: 'orders',
  is_readonly: 0,
  is_session_expired: 0,
  queue_size: 0,
  inserts_in_queue: 0,
  merges_in_queue: 0,
  log_lag: '0',
  absolute_delay: '0',
  active_replicas: 2,
  total_replicas: 2,
};

interface Server24 {
  replicas?: Record<string, unknown>[];
  processes?: Record<string, unknown>[];
  errors?: Record<string, unknown>[];
  distributionQueue?: Record<string, unknown>[];
  /** system.tables fails (a MySQL database engine whose server is unreachable: ClickHouse #30783). */
  tablesFail?: boolean;
  /** The row of the loader summary at each ask (asynchronous loading in progress). */
  loader?: () => Record<string, unknown>;
}

/** How a 24.8 server answers the statements the gates send. */
function server24(s: Server24): (q: string) => FakeAnswer {
  return (q) => {
    if (q.includes("SELECT 'version' AS kind")) {
      const cols = COLUMNS_24.map((c) => c.split('.'));
      return {
        rows: [
          { kind: 'version', name: VERSION, tbl: '' },
          ...TABLES_24.map((name) => ({ kind: 'table', name, tbl: '' })),
          ...cols.map(([tbl, name]) => ({ kind: 'column', name, tbl })),
        ],
      };
    }
    if (/FROM system\.tables/.test(q) && s.tablesFail)
      return {
        error: {
          code: 1000,
          name: 'POCO_EXCEPTION',
          message: "mysqlxx::ConnectionFailed: Can't connect to MySQL server on 'mysql-legacy' (115) ((nullptr):0)",
        },
      };
    if (/FROM system\.replicas ORDER BY/.test(q)) return { rows: s.replicas ?? [REPLICA] };
    if (/SELECT count\(\) AS n FROM system\.replicas/.test(q)) return { rows: [{ n: String((s.replicas ?? [REPLICA]).length) }] };
    if (/FROM system\.replication_queue/.test(q)) return { rows: [] };
    if (/FROM system\.mutations/.test(q)) return { rows: [] };
    if (/FROM system\.processes/.test(q))
      return {
        rows: (s.processes ?? [])
          .filter((p) => !(q.includes('NOT is_cancelled') && p.is_cancelled))
          .filter((p) => !String(p.query_id).startsWith('chops-'))
          .map(({ is_cancelled: _, ...p }) => p),
      };
    if (/FROM system\.distribution_queue/.test(q)) return { rows: s.distributionQueue ?? [] };
    if (/FROM system\.errors/.test(q)) return { rows: s.errors ?? [] };
    if (/FROM system\.asynchronous_loader/.test(q)) return { rows: [s.loader?.() ?? { total: '4000', pending: '0', failed: '0', error: '' }] };
    if (q === 'SELECT 1 AS one') return { rows: [{ one: 1 }] };
    if (/lab\.no_such_table|shop\.missing/.test(q)) return { error: { code: 60, name: 'UNKNOWN_TABLE', message: 'Table shop.missing does not exist' } };
    if (/^KILL QUERY/.test(q)) return { rows: [] };
    return { error: { code: 62, name: 'SYNTAX_ERROR', message: `fake 24.8 server: no answer for ${q.slice(0, 80)}` } };
  };
}

let fake: FakeClickHouse;
let current: (q: string) => FakeAnswer = server24({});

before(async () => {
  fake = await startFakeClickHouse((q) => current(q));
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
  current = server24({ loader: () => ({ total: '4000', pending: '10', failed: '1', error: 'Code: 1001. DB::Exception: std::exception: broken part\nstack' }) });
  await withRun(async (run) => {
    const t0 = performance.now();
    await assert.rejects(
      waitReplicaHealthy(run.stepContext('a'), { since: new Date() }),
      (e: any) => e instanceof GateError && e.gate === 'tables loaded' && /1 table load job\(s\) failed: Code: 1001/.test(e.message),
    );
    assert.ok(performance.now() - t0 < 900, 'at once, not after the deadline');
  });
});
