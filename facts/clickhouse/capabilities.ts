// What a ClickHouse server offers, probed once per client (one per host per run, again after the
// server restarted: the client is closed at every stop): which system tables and which columns
// of the tables the gates read exist, and version(). Query paths are chosen by these, never by
// parsing the version alone (the version is kept for messages and `chops status --verbose`).
import { defineQueryFact } from '../../src/fact.js';
import { ChopsError } from '../../src/errors.js';

/** System tables whose columns the gates care about (their presence decides a query path). */
export const PROBED_TABLES = ['processes', 'replicas', 'replication_queue', 'distribution_queue', 'errors', 'asynchronous_loader'] as const;

export interface Capabilities {
  version: string;
  /** Every table of the `system` database. */
  systemTables: string[];
  /** Columns of PROBED_TABLES that exist, as "table.column". */
  columns: string[];
}

export function parseCapabilities(rows: Record<string, unknown>[]): Capabilities {
  const version = rows.find((r) => r.kind === 'version')?.name;
  if (typeof version !== 'string' || !version) throw new ChopsError(`capability probe: no version() in ${rows.length} row(s)`);
  return {
    version,
    systemTables: rows
      .filter((r) => r.kind === 'table')
      .map((r) => String(r.name))
      .sort(),
    columns: rows
      .filter((r) => r.kind === 'column')
      .map((r) => `${r.tbl}.${r.name}`)
      .sort(),
  };
}

export const capabilities = defineQueryFact({
  name: 'capabilities',
  query: () => `SELECT 'version' AS kind, version() AS name, '' AS tbl
     UNION ALL SELECT 'table' AS kind, name, '' AS tbl FROM system.tables WHERE database = 'system'
     UNION ALL SELECT 'column' AS kind, name, table AS tbl FROM system.columns
       WHERE database = 'system' AND table IN (${PROBED_TABLES.map((t) => `'${t}'`).join(', ')})`,
  parse: (rows) => parseCapabilities(rows),
  timeoutMs: 10_000,
});

export const hasTable = (c: Capabilities, t: string): boolean => c.systemTables.includes(t);
export const hasColumn = (c: Capabilities, tc: string): boolean => c.columns.includes(tc);

/** The capability matrix as chops uses it: feature → whether this server has it. */
export function features(c: Capabilities): Record<string, boolean> {
  return {
    'system.distribution_queue': hasTable(c, 'distribution_queue'),
    'system.errors': hasTable(c, 'errors'),
    'system.asynchronous_loader': hasTable(c, 'asynchronous_loader'),
    'processes.is_cancelled': hasColumn(c, 'processes.is_cancelled'),
    'processes.is_initial_query': hasColumn(c, 'processes.is_initial_query'),
    'replicas.replica_is_active': hasColumn(c, 'replicas.replica_is_active'),
  };
}

/** What serverCapabilities needs of a client (src/clickhouse/client.ts's ChClient fits). */
interface ProbeClient {
  readonly host: string;
  query<R = Record<string, unknown>>(sql: string, opts?: { timeoutMs?: number }): Promise<R[]>;
}

const probed = new WeakMap<ProbeClient, Promise<Capabilities>>();

/**
 * The probe of CLIENT's server, once per client: one per host per run, and again after a restart
 * (the client of a stopped server is closed, so a restarted — maybe upgraded — server is probed
 * afresh). The result goes to EMIT (the run log) once. A failed probe is not kept.
 */
export function serverCapabilities(
  client: ProbeClient,
  emit?: (ev: { type: 'capabilities'; host: string; version: string; features: Record<string, boolean> }) => void,
): Promise<Capabilities> {
  let p = probed.get(client);
  if (!p) {
    p = client.query(capabilities.query(undefined, undefined as never), { timeoutMs: capabilities.timeoutMs }).then((rows) => parseCapabilities(rows));
    probed.set(client, p);
    p.then(
      (c) => emit?.({ type: 'capabilities', host: client.host, version: c.version, features: features(c) }),
      () => probed.delete(client),
    );
  }
  return p;
}
