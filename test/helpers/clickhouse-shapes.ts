// What the capability probe and the replica facts get back from a ClickHouse 24.8 server and from
// Debian's 18.16 (the lab's), as JSONEachRow rows, for the HTTP-level tests of the modern paths
// (test/unit/gates-modern.test.ts, test/unit/catch-up-modern.test.ts). Sources, all in
// ClickHouse's own repository (github.com/ClickHouse/ClickHouse) unless said otherwise:
//   - system tables: docs/en/operations/system-tables/*.md; zookeeper_connection exists only
//     where ZooKeeper/Keeper is configured (docs/en/operations/system-tables/zookeeper_connection.md:
//     name, host, port, index, connected_time, session_uptime_elapsed_seconds, is_expired, …).
//   - replicas.replica_is_active: Map(String, UInt8), replica name → active
//     (src/Storages/MergeTree/ReplicatedTableStatus.h, src/Storages/System/StorageSystemReplicas.cpp;
//     docs example `replica_is_active: {'r1':1,'r2':1}`); a Map is a JSON object in JSONEachRow.
//     18.16 has no such column (docs/en/system_tables/system.replicas.md of 18.x).
//   - replication_queue.num_postponed / postpone_reason (src/Storages/System/
//     StorageSystemReplicationQueue.cpp; docs/en/operations/system-tables/replication_queue.md).
//   - asynchronous metrics ReplicasMaxQueueSize, ReplicasMaxInsertsInQueue, ReplicasMaxAbsoluteDelay
//     (src/Interpreters/ServerAsynchronousMetrics.cpp: maxima over Replicated tables; the delay
//     only of tables that are not read-only; not-yet-loaded tables skipped) and
//     AsynchronousMetricsUpdateInterval (src/Common/AsynchronousMetrics.cpp: the seconds between two
//     updates, the period being asynchronous_metrics_update_period_s, default 1). The value column
//     is Float64: a JSON number. 18.16 computes the Replicas* ones too but has no update-interval
//     metric (and recomputes once a minute).
//   - system.metrics ReadonlyReplica (src/Common/CurrentMetrics.cpp), value Int64 (chops casts it
//     with toFloat64: a JSON number).
//   - settings receive_timeout, max_execution_time: system.settings on both.
//   - formatQuery / formatQueryOrNull (src/Functions/formatQuery.cpp, 23.10+): the formatted
//     statement, or NULL (OrNull) / SYNTAX_ERROR when the parser does not take it. The
//     `SYSTEM SYNC REPLICA … LIGHTWEIGHT` grammar: docs/en/sql-reference/statements/system.md.
export const VERSION_24 = '24.8.4.13';

export const TABLES_24 = [
  'asynchronous_loader',
  'asynchronous_metrics',
  'clusters',
  'columns',
  'databases',
  'distribution_queue',
  'errors',
  'functions',
  'macros',
  'metrics',
  'mutations',
  'processes',
  'replicas',
  'replication_queue',
  'settings',
  'tables',
  'zookeeper_connection',
];

export const COLUMNS_24 = [
  'processes.query_id',
  'processes.is_initial_query',
  'processes.is_cancelled',
  'replicas.replica_is_active',
  'replication_queue.num_postponed',
  'replication_queue.postpone_reason',
  'errors.last_error_time',
  'errors.last_error_message',
  'errors.remote',
];

/** system.asynchronous_metrics / system.metrics rows of a caught-up 24.8 replica (update period 1 s). */
export function metrics24(v: Partial<Record<string, number>> = {}): Record<string, unknown>[] {
  const all: Record<string, number> = {
    ReplicasMaxAbsoluteDelay: 0,
    ReplicasMaxQueueSize: 0,
    ReplicasMaxInsertsInQueue: 0,
    AsynchronousMetricsUpdateInterval: 1.000127,
    ReadonlyReplica: 0,
    ...v,
  } as Record<string, number>;
  return Object.entries(all)
    .filter(([, x]) => x !== undefined && !Number.isNaN(x))
    .map(([metric, value]) => ({ metric, value }));
}

/** The probe's rows from a 24.8 server (tables, columns, settings, functions, metrics present). */
export function probeRows24(
  o: { tables?: string[]; columns?: string[]; functions?: string[]; metrics?: Record<string, unknown>[] } = {},
): Record<string, unknown>[] {
  return [
    { kind: 'version', name: VERSION_24, tbl: '' },
    ...(o.tables ?? TABLES_24).map((name) => ({ kind: 'table', name, tbl: '' })),
    ...(o.columns ?? COLUMNS_24).map((c) => ({ kind: 'column', name: c.split('.')[1], tbl: c.split('.')[0] })),
    { kind: 'setting', name: 'max_execution_time', tbl: '' },
    { kind: 'setting', name: 'receive_timeout', tbl: '' },
    ...(o.functions ?? ['formatQuery', 'formatQueryOrNull']).map((name) => ({ kind: 'function', name, tbl: '' })),
    ...(o.metrics ?? metrics24()).filter((m) => m.metric !== 'ReadonlyReplica').map((m) => ({ kind: 'async_metric', name: m.metric, tbl: String(m.value) })),
    { kind: 'metric', name: 'ReadonlyReplica', tbl: '' },
  ];
}

/**
 * The probe's rows from Debian's 18.16 (no formatQuery, no update-interval metric, no
 * replica_is_active), as the lab's servers answer (test/integration/status.test.ts prints them:
 * is_cancelled, num_postponed and postpone_reason do exist there).
 */
export function probeRows18(): Record<string, unknown>[] {
  return [
    { kind: 'version', name: '18.16.1', tbl: '' },
    ...[
      'asynchronous_metrics',
      'clusters',
      'columns',
      'functions',
      'macros',
      'metrics',
      'mutations',
      'processes',
      'replicas',
      'replication_queue',
      'settings',
      'tables',
    ].map((name) => ({ kind: 'table', name, tbl: '' })),
    ...[
      'processes.query_id',
      'processes.is_initial_query',
      'processes.is_cancelled',
      'replication_queue.num_postponed',
      'replication_queue.postpone_reason',
    ].map((c) => ({
      kind: 'column',
      name: c.split('.')[1],
      tbl: c.split('.')[0],
    })),
    { kind: 'setting', name: 'max_execution_time', tbl: '' },
    { kind: 'setting', name: 'receive_timeout', tbl: '' },
    ...['ReplicasMaxAbsoluteDelay', 'ReplicasMaxQueueSize', 'ReplicasMaxInsertsInQueue'].map((name) => ({ kind: 'async_metric', name, tbl: '0' })),
    { kind: 'metric', name: 'ReadonlyReplica', tbl: '' },
  ];
}
