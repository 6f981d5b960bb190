// What a ClickHouse server offers, probed once per client (one per host per run, again after the
// server restarted: the client is closed at every stop): which system tables exist, which columns
// of the tables the gates read, which settings, functions and metrics, and version(). Query paths
// are chosen by these, never by parsing the version alone (the version is kept for messages and
// `chops status --verbose`). docs/clickhouse-versions.md has the matrix: feature → detection →
// 18.16 path → modern path.
import { defineQueryFact } from '../../src/fact.js';
import { ChopsError } from '../../src/errors.js';

/** System tables whose columns the gates care about (their presence decides a query path). */
export const PROBED_TABLES = ['processes', 'replicas', 'replication_queue', 'distribution_queue', 'errors', 'asynchronous_loader'] as const;

/** Query settings chops sets (receive_timeout bounds SYSTEM SYNC REPLICA). */
export const PROBED_SETTINGS = ['receive_timeout', 'max_execution_time'] as const;

/** formatQuery/formatQueryOrNull (23.10+) parse a statement without running it: how LIGHTWEIGHT is detected. */
export const PROBED_FUNCTIONS = ['formatQuery', 'formatQueryOrNull'] as const;

/**
 * The replica metrics of system.asynchronous_metrics the fast polls read (ClickHouse
 * src/Interpreters/ServerAsynchronousMetrics.cpp: max over Replicated tables, the delay only of
 * tables that are not read-only), and AsynchronousMetricsUpdateInterval (how old they can be;
 * absent on 18.16, which recomputes them once a minute).
 */
export const REPLICA_ASYNC_METRICS = ['ReplicasMaxAbsoluteDelay', 'ReplicasMaxQueueSize', 'ReplicasMaxInsertsInQueue'] as const;
export const UPDATE_INTERVAL_METRIC = 'AsynchronousMetricsUpdateInterval';

/** Asynchronous metrics older than this are not fast polls: the per-table query is used instead. */
export const MAX_METRICS_INTERVAL_S = 5;

export interface Capabilities {
  version: string;
  /** Every table of the `system` database. */
  systemTables: string[];
  /** Columns of PROBED_TABLES that exist, as "table.column". */
  columns: string[];
  /** PROBED_SETTINGS that exist. */
  settings: string[];
  /** PROBED_FUNCTIONS that exist. */
  functions: string[];
  /** Asynchronous metrics present now (REPLICA_ASYNC_METRICS, UPDATE_INTERVAL_METRIC) → value. */
  asyncMetrics: Record<string, number>;
  /** system.metrics rows present (ReadonlyReplica). */
  metrics: string[];
  /** The parser takes `SYSTEM SYNC REPLICA … LIGHTWEIGHT` (asked of formatQuery, never run). */
  syncReplicaLightweight: boolean;
}

export function parseCapabilities(rows: Record<string, unknown>[]): Capabilities {
  const version = rows.find((r) => r.kind === 'version')?.name;
  if (typeof version !== 'string' || !version) throw new ChopsError(`capability probe: no version() in ${rows.length} row(s)`);
  const names = (kind: string) =>
    rows
      .filter((r) => r.kind === kind)
      .map((r) => String(r.name))
      .sort();
  return {
    version,
    systemTables: names('table'),
    columns: rows
      .filter((r) => r.kind === 'column')
      .map((r) => `${r.tbl}.${r.name}`)
      .sort(),
    settings: names('setting'),
    functions: names('function'),
    asyncMetrics: Object.fromEntries(rows.filter((r) => r.kind === 'async_metric').map((r) => [String(r.name), Number(r.tbl)])),
    metrics: names('metric'),
    syncReplicaLightweight: false,
  };
}

const list = (xs: readonly string[]) => xs.map((t) => `'${t}'`).join(', ');

export const capabilities = defineQueryFact({
  name: 'capabilities',
  // One statement, every branch (String, String, String): 18.16 has all five tables queried.
  query: () => `SELECT 'version' AS kind, version() AS name, '' AS tbl
     UNION ALL SELECT 'table' AS kind, name, '' AS tbl FROM system.tables WHERE database = 'system'
     UNION ALL SELECT 'column' AS kind, name, table AS tbl FROM system.columns
       WHERE database = 'system' AND table IN (${list(PROBED_TABLES)})
     UNION ALL SELECT 'setting' AS kind, name, '' AS tbl FROM system.settings WHERE name IN (${list(PROBED_SETTINGS)})
     UNION ALL SELECT 'function' AS kind, name, '' AS tbl FROM system.functions WHERE name IN (${list(PROBED_FUNCTIONS)})
     UNION ALL SELECT 'async_metric' AS kind, metric AS name, toString(value) AS tbl FROM system.asynchronous_metrics
       WHERE metric IN (${list([...REPLICA_ASYNC_METRICS, UPDATE_INTERVAL_METRIC])})
     UNION ALL SELECT 'metric' AS kind, metric AS name, '' AS tbl FROM system.metrics WHERE metric = 'ReadonlyReplica'`,
  parse: (rows) => parseCapabilities(rows),
  timeoutMs: 10_000,
});

/** Asks the parser (formatQuery*, no execution) whether it takes LIGHTWEIGHT; undefined: no function to ask. */
export function lightweightProbeQuery(c: Capabilities): string | undefined {
  const stmt = "'SYSTEM SYNC REPLICA chops_probe.t LIGHTWEIGHT'";
  if (c.functions.includes('formatQueryOrNull')) return `SELECT formatQueryOrNull(${stmt}) AS q`;
  if (c.functions.includes('formatQuery')) return `SELECT formatQuery(${stmt}) AS q`;
  return undefined;
}

/** The probe's answer: a formatted statement that kept LIGHTWEIGHT (NULL or a syntax error: no). */
export function parseLightweightProbe(rows: Record<string, unknown>[]): boolean {
  const q = rows[0]?.q;
  return typeof q === 'string' && /\bLIGHTWEIGHT\b/i.test(q);
}

export const hasTable = (c: Capabilities, t: string): boolean => c.systemTables.includes(t);
export const hasColumn = (c: Capabilities, tc: string): boolean => c.columns.includes(tc);

/**
 * Fast polls: the replica metrics are there, recomputed at least every MAX_METRICS_INTERVAL_S
 * (AsynchronousMetricsUpdateInterval), and ReadonlyReplica of system.metrics is there too (the
 * delay metric skips read-only tables). 18.16 has no update-interval metric: per-table polls.
 */
export function hasFastReplicaMetrics(c: Capabilities): boolean {
  const interval = c.asyncMetrics[UPDATE_INTERVAL_METRIC];
  return (
    REPLICA_ASYNC_METRICS.every((m) => m in c.asyncMetrics) &&
    interval !== undefined &&
    Number.isFinite(interval) &&
    interval <= MAX_METRICS_INTERVAL_S &&
    c.metrics.includes('ReadonlyReplica')
  );
}

/** The capability matrix as chops uses it: feature → whether this server has it. */
export function features(c: Capabilities): Record<string, boolean> {
  return {
    'system.distribution_queue': hasTable(c, 'distribution_queue'),
    'system.errors': hasTable(c, 'errors'),
    'system.asynchronous_loader': hasTable(c, 'asynchronous_loader'),
    'system.zookeeper_connection': hasTable(c, 'zookeeper_connection'),
    'processes.is_cancelled': hasColumn(c, 'processes.is_cancelled'),
    'processes.is_initial_query': hasColumn(c, 'processes.is_initial_query'),
    'replicas.replica_is_active': hasColumn(c, 'replicas.replica_is_active'),
    'replication_queue.postpone_reason': hasColumn(c, 'replication_queue.num_postponed') && hasColumn(c, 'replication_queue.postpone_reason'),
    'setting receive_timeout': c.settings.includes('receive_timeout'),
    'SYNC REPLICA LIGHTWEIGHT': c.syncReplicaLightweight && c.settings.includes('receive_timeout'),
    'fast replica metrics': hasFastReplicaMetrics(c),
  };
}

/** What serverCapabilities needs of a client (src/clickhouse/client.ts's ChClient fits). */
interface ProbeClient {
  readonly host: string;
  query<R = Record<string, unknown>>(sql: string, opts?: { timeoutMs?: number }): Promise<R[]>;
}

const probed = new WeakMap<ProbeClient, Promise<Capabilities>>();

export type CapabilitiesEvent = { type: 'capabilities'; host: string; version: string; features: Record<string, boolean> };

/**
 * The probe of CLIENT's server, once per client: one per host per run, and again after a restart
 * (the client of a stopped server is closed, so a restarted — maybe upgraded — server is probed
 * afresh). The result goes to EMIT (the run log) once. A failed probe is not kept. The
 * LIGHTWEIGHT parse check is a second query, sent only where formatQuery exists; its failure
 * (a SYNTAX_ERROR from formatQuery) means "no".
 */
export function serverCapabilities(client: ProbeClient, emit?: (ev: CapabilitiesEvent) => void): Promise<Capabilities> {
  let p = probed.get(client);
  if (!p) {
    p = (async () => {
      const c = parseCapabilities(await client.query(capabilities.query(undefined, undefined as never), { timeoutMs: capabilities.timeoutMs }));
      const q = lightweightProbeQuery(c);
      if (q) c.syncReplicaLightweight = parseLightweightProbe(await client.query(q, { timeoutMs: 10_000 }).catch(() => []));
      return c;
    })();
    probed.set(client, p);
    p.then(
      (c) => emit?.({ type: 'capabilities', host: client.host, version: c.version, features: features(c) }),
      () => probed.delete(client),
    );
  }
  return p;
}
