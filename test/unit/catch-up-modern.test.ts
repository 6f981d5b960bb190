// Issue 9, "use what modern servers offer (behind the probe)", at the HTTP level: the real
// @clickhouse/client against a local endpoint answering as ClickHouse 24.8 does
// (test/helpers/server24.ts; the row shapes and their sources: test/helpers/clickhouse-shapes.ts),
// and as the lab's 18.16 answers the probe. What each test would have seen on the old code is
// said next to it. The 18.16 paths themselves run on the real lab (test/integration/gates.test.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInventory } from '../../src/inventory/load.js';
import { GateError } from '../../src/errors.js';
import { checkPeersBeforeStop, checkSelfBeforeStop, waitReplicaHealthy } from '../../tasks/clickhouse/gates.js';
import { makeRunContext } from '../support/run-context.js';
import { startFakeClickHouse, type FakeAnswer, type FakeClickHouse } from '../helpers/fake-clickhouse-http.js';
import { metrics24, probeRows18, probeRows24 } from '../helpers/clickhouse-shapes.js';
import { REPLICA, server24 } from '../helpers/server24.js';

let fake: FakeClickHouse;
let current: (q: string, params: URLSearchParams) => FakeAnswer = server24({});

before(async () => {
  fake = await startFakeClickHouse((q, p) => current(q, p));
});
after(async () => fake?.close());

function inventory(timeout: string) {
  return parseInventory(
    `version: 1
defaults:
  clickhouse: {http_port: ${fake.port}, status_command: 'true', error_log: /nonexistent/chops-test-err.log}
  gates: {wait_timeout: ${timeout}, poll_interval: 50ms, caught_up_for: 0s}
clusters:
  shop:
    shards:
      - replicas: [{host: a, connection: local}, {host: b, connection: local}]
`,
    join(tmpdir(), 'inventory.yml'),
  );
}

/** Run FN on a fresh run; the statements the server received meanwhile (the probe excluded). */
async function withRun<T>(
  timeout: string,
  fn: (run: ReturnType<typeof makeRunContext>) => Promise<T>,
): Promise<{ result: T; sent: string[]; params: URLSearchParams[] }> {
  const from = fake.statements.length;
  const run = makeRunContext(inventory(timeout));
  try {
    const result = await fn(run);
    const idx = fake.statements.map((_, i) => i).filter((i) => i >= from && !fake.statements[i].includes("SELECT 'version' AS kind"));
    return { result, sent: idx.map((i) => fake.statements[i]), params: idx.map((i) => fake.params[i]) };
  } finally {
    await run.close();
  }
}

const SYNC = /^SYSTEM SYNC REPLICA /;
const PER_TABLE = /FROM system\.replicas ORDER BY/;
const METRICS = /^SELECT metric, value FROM system\.asynchronous_metrics/;
const POSTPONED = {
  database: 'shop',
  table: 'orders',
  type: 'GET_PART',
  new_part_name: '202412_7_7_0',
  num_tries: 0,
  last_exception: '',
  num_postponed: 14,
  postpone_reason: 'Not executing fetch of part 202412_7_7_0 because 8 fetches already executing, max 8.',
};

test('catch-up: SYSTEM SYNC REPLICA … LIGHTWEIGHT per replicated table, receive_timeout = what is left of the budget, a chops- query id', async () => {
  // old code: no SYNC at all (polls only)
  current = server24({ replicas: [REPLICA, { ...REPLICA, table: 'items' }] });
  const { result, sent, params } = await withRun('3s', (run) => waitReplicaHealthy(run.stepContext('a'), { since: new Date() }));
  assert.match((result as any).note, /^healthy /);
  const syncs = sent.map((q, i) => [q, params[i]] as const).filter(([q]) => SYNC.test(q));
  assert.deepEqual(syncs.map(([q]) => q).sort(), ['SYSTEM SYNC REPLICA `shop`.`items` LIGHTWEIGHT', 'SYSTEM SYNC REPLICA `shop`.`orders` LIGHTWEIGHT']);
  for (const [, p] of syncs) {
    const rt = Number(p.get('receive_timeout'));
    assert.ok(rt >= 1 && rt <= 3, `receive_timeout=${p.get('receive_timeout')} within the 3 s budget`);
    assert.match(p.get('query_id') ?? '', /^chops-[0-9a-f]{16}$/);
  }
});

test('catch-up: a SYNC REPLICA timeout fails the gate, naming the table and what its queue waits on (postpone_reason)', async () => {
  // old code: polls of system.replicas (queue_size 0 here) pass at once; fetches never waited for
  current = server24({
    queue: [POSTPONED],
    // as the server does: waits receive_timeout seconds, then TIMEOUT_EXCEEDED (HTTP 408)
    sync: (_q, p) => ({
      delayMs: Number(p.get('receive_timeout')) * 1000,
      error: { code: 159, name: 'TIMEOUT_EXCEEDED', message: "SYNC REPLICA shop.orders: command timed out. See the 'receive_timeout' setting" },
    }),
  });
  await withRun('1s', async (run) => {
    await assert.rejects(waitReplicaHealthy(run.stepContext('a'), { since: new Date() }), (e: any) => {
      assert.ok(e instanceof GateError, String(e));
      assert.equal(e.gate, 'replica fetched');
      assert.match(
        e.message,
        /^a: gate "replica fetched" shop\.orders on a did not fetch its parts within 1\.0 s \(SYSTEM SYNC REPLICA shop\.orders LIGHTWEIGHT, receive_timeout=1s\); its queue waits on: shop\.orders GET_PART 202412_7_7_0 postponed 14×: Not executing fetch of part 202412_7_7_0 because 8 fetches already executing, max 8\. \(last value: shop\.orders: SYNC REPLICA LIGHTWEIGHT timed out after 1s \(receive_timeout\)\)$/,
      );
      return true;
    });
  });
});

test('catch-up: a table read-only right after the start (TABLE_IS_READ_ONLY) is synced again at the next poll', async () => {
  let syncs = 0;
  current = server24({
    sync: () =>
      ++syncs === 1 ? { error: { code: 242, name: 'TABLE_IS_READ_ONLY', message: 'Table is in readonly mode (replica path: /t/r/a)' } } : { rows: [] },
  });
  const { result } = await withRun('3s', (run) => waitReplicaHealthy(run.stepContext('a'), { since: new Date() }));
  assert.match((result as any).note, /^healthy /);
  assert.equal(syncs, 2);
});

test('catch-up: a chops user without the SYSTEM SYNC REPLICA grant waits by polling, and says so', async () => {
  current = server24({
    sync: () => ({
      error: {
        code: 497,
        name: 'ACCESS_DENIED',
        message: 'chops: Not enough privileges. To execute this query, it is necessary to have the grant SYSTEM SYNC REPLICA ON shop.orders',
      },
    }),
  });
  const { result, sent } = await withRun('3s', async (run) => {
    const r = await waitReplicaHealthy(run.stepContext('a'), { since: new Date() });
    assert.ok(
      run.notes.some((n) => /SYSTEM SYNC REPLICA … LIGHTWEIGHT not granted \(chops: Not enough privileges.*\): waiting by polling/.test(n.text)),
      run.notes.map((n) => n.text).join(' | '),
    );
    return r;
  });
  assert.match((result as any).note, /^healthy /);
  assert.equal(sent.filter((q) => SYNC.test(q)).length, 1, 'asked once, then polled');
});

test('18.16 (no formatQuery, no update-interval metric) and a parser without LIGHTWEIGHT: no SYNC REPLICA is sent, polls are per table', async () => {
  for (const s of [{ probe: probeRows18() }, { lightweight: null }]) {
    current = server24(s);
    const { result, sent } = await withRun('1s', (run) => waitReplicaHealthy(run.stepContext('a'), { since: new Date() }));
    assert.match((result as any).note, /^healthy /);
    assert.equal(sent.filter((q) => SYNC.test(q)).length, 0, sent.join(' | '));
    if (s.probe) assert.equal(sent.filter((q) => METRICS.test(q)).length, 0, '18.16: no metric polls');
    assert.ok(sent.some((q) => PER_TABLE.test(q)));
  }
});

test('fast polls: the metrics while waiting, the per-table query only to confirm and for the report', async () => {
  // old code: one per-table query (a Keeper round trip per table) at every poll; no metrics read
  let asks = 0;
  current = server24({ metrics: () => (++asks <= 3 ? metrics24({ ReplicasMaxQueueSize: 30 }) : metrics24()) });
  const { result, sent } = await withRun('3s', (run) => waitReplicaHealthy(run.stepContext('a'), { since: new Date() }));
  assert.match((result as any).note, /^healthy /);
  assert.ok(asks >= 4, `metric polls: ${asks}`);
  // one to list the tables for SYNC REPLICA, one confirmation, one for the report
  assert.equal(sent.filter((q) => PER_TABLE.test(q)).length, 3, sent.join(' | '));
});

test('fast polls never pass on the metrics alone: per-table problems (log lag) and missing metric rows hold the gate', async () => {
  // (a) the metrics say caught up, the confirmation does not; (b) old code read no metrics at all
  current = server24({ replicas: [{ ...REPLICA, log_lag: '50' }] });
  await withRun('1s', async (run) => {
    await assert.rejects(
      waitReplicaHealthy(run.stepContext('a'), { since: new Date() }),
      (e: any) => e instanceof GateError && e.gate === 'replica caught up' && /log_lag=50 > 10/.test(e.lastValue),
    );
  });
  current = server24({ metrics: () => [] });
  await withRun('1s', async (run) => {
    await assert.rejects(
      waitReplicaHealthy(run.stepContext('a'), { since: new Date() }),
      (e: any) =>
        e instanceof GateError &&
        /metrics missing: ReplicasMaxAbsoluteDelay, ReplicasMaxQueueSize, ReplicasMaxInsertsInQueue, ReadonlyReplica/.test(e.lastValue),
    );
  });
});

test('messages: a read-only replica names its Keeper connection (system.zookeeper_connection)', async () => {
  // old code: "read-only: shop.orders" and nothing about Keeper
  for (const [keeper, text] of [
    [[], 'Keeper connection: none'],
    [[{ name: 'default', host: 'zk1', port: 2181, is_expired: 1 }], 'Keeper connection: default → zk1:2181 (session expired)'],
  ] as const) {
    current = server24({
      replicas: [{ ...REPLICA, is_readonly: 1, is_session_expired: 1 }],
      metrics: () => metrics24({ ReadonlyReplica: 1 }),
      keeper: [...keeper],
      sync: () => ({ error: { code: 242, name: 'TABLE_IS_READ_ONLY', message: 'Table is in readonly mode' } }),
    });
    await withRun('1s', async (run) => {
      await assert.rejects(waitReplicaHealthy(run.stepContext('a'), { since: new Date() }), (e: any) => {
        assert.ok(e instanceof GateError, String(e));
        assert.equal(e.gate, 'replica fetched', 'SYNC REPLICA could not run on a read-only table');
        return true;
      });
    });
    // the caught-up gate itself (no LIGHTWEIGHT on this server): the per-table view names the connection
    current = server24({
      replicas: [{ ...REPLICA, is_readonly: 1, is_session_expired: 1 }],
      metrics: () => metrics24({ ReadonlyReplica: 1 }),
      keeper: [...keeper],
      lightweight: null,
    });
    await withRun('1s', async (run) => {
      await assert.rejects(waitReplicaHealthy(run.stepContext('a'), { since: new Date() }), (e: any) => {
        assert.ok(e instanceof GateError, String(e));
        assert.equal(e.gate, 'replica writable');
        assert.ok(e.lastValue.includes(`read-only: shop.orders; ZooKeeper session expired: shop.orders; ${text}`), e.lastValue);
        return true;
      });
    });
  }
});

test('messages: the inactive replica is named (replica_is_active), by the peers gate and the after-start gate', async () => {
  // old code: "inactive replicas: shop.orders (2/3 active)"
  current = server24({ replicas: [{ ...REPLICA, active_replicas: 2, total_replicas: 3, replica_is_active: { a: 1, b: 1, c: 0 } }] });
  await withRun('1s', async (run) => {
    await assert.rejects(
      checkPeersBeforeStop(run.stepContext('a')),
      (e: any) => e instanceof GateError && e.lastValue === 'b: inactive replicas: shop.orders (2/3 active; inactive: c)',
    );
    await assert.rejects(
      waitReplicaHealthy(run.stepContext('a'), { since: new Date() }),
      (e: any) => e instanceof GateError && e.gate === 'replica sees its shard' && /shop\.orders \(2\/3 active; inactive: c\)/.test(e.lastValue),
    );
  });
});

test('messages: postponed queue entries are named by the idle gate and in the hint of a timed-out catch-up', async () => {
  // old code: "replication_queue=1 (GET_PART:1)" and a generic hint
  current = server24({ queue: [{ ...POSTPONED, is_currently_executing: 0, age: 3 }] });
  await withRun('1s', async (run) => {
    await assert.rejects(
      checkSelfBeforeStop(run.stepContext('a')),
      (e: any) =>
        e instanceof GateError &&
        /^replication_queue=1 \(GET_PART:1; shop\.orders GET_PART postponed 14×: Not executing fetch of part 202412_7_7_0 because 8 fetches/.test(e.lastValue),
    );
  });
  current = server24({ probe: probeRows18(), replicas: [{ ...REPLICA, queue_size: 30 }], queue: [POSTPONED] });
  await withRun('1s', async (run) => {
    await assert.rejects(waitReplicaHealthy(run.stepContext('a'), { since: new Date() }), (e: any) => {
      assert.ok(e instanceof GateError, String(e));
      assert.equal(e.gate, 'replica caught up');
      assert.match(e.lastValue, /shop\.orders queue_size=30 > 20/);
      assert.match(e.hint ?? '', /^its queue waits on: shop\.orders GET_PART 202412_7_7_0 postponed 14×: Not executing fetch/);
      return true;
    });
  });
});

test('the probe is logged once per client with what it found (run log: capabilities event)', async () => {
  current = server24({ probe: probeRows24() });
  const { result: events } = await withRun('1s', async (run) => {
    await waitReplicaHealthy(run.stepContext('a'), { since: new Date() });
    return run.events.filter((e: any) => e.type === 'capabilities');
  });
  assert.equal(events.length, 1);
  assert.equal((events[0] as any).features['SYNC REPLICA LIGHTWEIGHT'], true);
  assert.equal((events[0] as any).features['fast replica metrics'], true);
  assert.equal((events[0] as any).features['system.zookeeper_connection'], true);
});
