// The ClickHouse facts' parsers and THE definition of a healthy replica (shared by the peers gate,
// the after-start gate and `chops status`), on rows as 18.16 sends them (UInt64 as strings).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReplicaRows, replicaProblems, shardProblems, summarizeReplicas } from '../../../facts/clickhouse/replicas.js';
import { parseCapabilities, features } from '../../../facts/clickhouse/capabilities.js';
import { parseServerInfo } from '../../../facts/clickhouse/server.js';

const G = { maxQueueSize: 20, maxInsertsInQueue: 10, maxLogLag: 10, maxDelayMs: 10_000, minReplicatedTables: 1 };

// One row of 18.16's system.replicas through JSONEachRow (UInt64/UInt32 quoted, UInt8 not).
const row18 = (over: Record<string, unknown> = {}) => ({
  database: 'lab',
  table: 'events_local',
  is_readonly: 0,
  is_session_expired: 0,
  queue_size: 3,
  inserts_in_queue: 2,
  merges_in_queue: 1,
  log_lag: '0',
  absolute_delay: '0',
  active_replicas: 2,
  total_replicas: 2,
  ...over,
});

test('system.replicas rows parsed (strings to numbers)', () => {
  const [r] = parseReplicaRows([row18({ log_lag: '4', absolute_delay: '7' })]);
  assert.deepEqual(r, {
    database: 'lab',
    table: 'events_local',
    isReadonly: false,
    isSessionExpired: false,
    queueSize: 3,
    insertsInQueue: 2,
    mergesInQueue: 1,
    logLag: 4,
    absoluteDelay: 7,
    activeReplicas: 2,
    totalReplicas: 2,
  });
});

test('healthy replica: within every threshold per table; each problem named', () => {
  assert.deepEqual(replicaProblems(parseReplicaRows([row18()]), G), []);
  // a queue that hovers at a few entries under steady inserts is caught up (issue 8 C), 21 is not
  assert.deepEqual(replicaProblems(parseReplicaRows([row18({ queue_size: 6 })]), G), []);
  assert.deepEqual(replicaProblems(parseReplicaRows([row18({ queue_size: 21 })]), G), [{ kind: 'behind', text: 'lab.events_local queue_size=21 > 20' }]);
  const bad = replicaProblems(
    parseReplicaRows([row18({ is_readonly: 1, inserts_in_queue: 11, log_lag: '12', absolute_delay: '11' }), row18({ table: 'u', is_session_expired: 1 })]),
    G,
  );
  assert.deepEqual(
    bad.map((p) => p.text),
    [
      'read-only: lab.events_local',
      'ZooKeeper session expired: lab.u',
      'lab.events_local inserts_in_queue=11 > 10',
      'lab.events_local log_lag=12 > 10',
      'absolute_delay=11s > 10s',
    ],
  );
  assert.deepEqual(
    bad.map((p) => p.kind),
    ['writable', 'writable', 'behind', 'behind', 'behind'],
  );
});

test('the shard as seen from a replica is separate from its own health', () => {
  const rows = parseReplicaRows([row18({ active_replicas: 1 })]);
  assert.deepEqual(replicaProblems(rows, G), [], 'a peer being down does not make this replica unhealthy');
  assert.deepEqual(shardProblems(rows), ['inactive replicas: lab.events_local (1/2 active)']);
  assert.equal(summarizeReplicas(rows).missingReplicas.length, 1);
});

test('capabilities: 18.16 and 24.8 shapes', () => {
  const c18 = parseCapabilities([
    { kind: 'version', name: '18.16.1', tbl: '' },
    { kind: 'table', name: 'replicas', tbl: '' },
    { kind: 'table', name: 'processes', tbl: '' },
    { kind: 'column', name: 'query_id', tbl: 'processes' },
    { kind: 'column', name: 'is_initial_query', tbl: 'processes' },
  ]);
  assert.equal(c18.version, '18.16.1');
  assert.deepEqual(features(c18), {
    'system.distribution_queue': false,
    'system.errors': false,
    'system.asynchronous_loader': false,
    'system.zookeeper_connection': false,
    'processes.is_cancelled': false,
    'processes.is_initial_query': true,
    'replicas.replica_is_active': false,
    'replication_queue.postpone_reason': false,
    'setting receive_timeout': false,
    'SYNC REPLICA LIGHTWEIGHT': false,
    'fast replica metrics': false,
  });
  const c24 = parseCapabilities([
    { kind: 'version', name: '24.8.4.13', tbl: '' },
    ...['replicas', 'processes', 'distribution_queue', 'errors', 'asynchronous_loader'].map((name) => ({ kind: 'table', name, tbl: '' })),
    { kind: 'column', name: 'is_cancelled', tbl: 'processes' },
    { kind: 'column', name: 'replica_is_active', tbl: 'replicas' },
  ]);
  assert.equal(features(c24)['system.distribution_queue'], true);
  assert.equal(features(c24)['processes.is_cancelled'], true);
  assert.throws(() => parseCapabilities([]), /no version/);
});

test('server info', () => {
  assert.deepEqual(parseServerInfo([{ version: '18.16.1', uptime: 42 }]), { version: '18.16.1', uptimeSeconds: 42 });
  assert.throws(() => parseServerInfo([]), /returned \[\]/);
});

test('zero replicated tables is not healthy (a user without grants sees none), unless the inventory says so', () => {
  assert.deepEqual(
    replicaProblems([], G).map((p) => p.kind),
    ['unseen'],
  );
  assert.match(replicaProblems([], G)[0].text, /^sees 0 replicated table\(s\), expected at least 1/);
  assert.deepEqual(replicaProblems([], { ...G, minReplicatedTables: 0 }), []);
  assert.deepEqual(
    replicaProblems(parseReplicaRows([row18()]), { ...G, minReplicatedTables: 2 }).map((p) => p.kind),
    ['unseen'],
  );
});
