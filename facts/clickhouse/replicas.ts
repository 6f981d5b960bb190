// system.replicas of a server, and THE definition of a healthy replica, used by the peers gate,
// the after-start gate and `chops status` alike.
import { defineQueryFact } from '../../src/fact.js';
import type { GateSettings } from '../../src/gates/thresholds.js';
import { hasColumn, type Capabilities } from './capabilities.js';

/** One row of system.replicas, numbers normalised (18.16 sends UInt64 as strings). */
export interface ReplicaRow {
  database: string;
  table: string;
  isReadonly: boolean;
  isSessionExpired: boolean;
  queueSize: number;
  insertsInQueue: number;
  mergesInQueue: number;
  /** log_max_index - log_pointer, never negative (a caught-up replica's pointer is one past the max). */
  logLag: number;
  absoluteDelay: number;
  activeReplicas: number;
  totalReplicas: number;
  /** Replicas of the table that are not active, by name (replica_is_active, 21.x+; undefined on 18.16). */
  inactive?: string[];
}

export function parseReplicaRows(rows: Record<string, unknown>[]): ReplicaRow[] {
  return rows.map((r) => ({
    database: String(r.database),
    table: String(r.table),
    isReadonly: Number(r.is_readonly) !== 0,
    isSessionExpired: Number(r.is_session_expired) !== 0,
    queueSize: Number(r.queue_size),
    insertsInQueue: Number(r.inserts_in_queue),
    mergesInQueue: Number(r.merges_in_queue),
    logLag: Number(r.log_lag),
    absoluteDelay: Number(r.absolute_delay),
    activeReplicas: Number(r.active_replicas),
    totalReplicas: Number(r.total_replicas),
    ...(r.replica_is_active && typeof r.replica_is_active === 'object'
      ? {
          inactive: Object.entries(r.replica_is_active as Record<string, unknown>)
            .filter(([, v]) => Number(v) === 0)
            .map(([k]) => k)
            .sort(),
        }
      : {}),
  }));
}

/** Which columns of system.replicas to read: replica_is_active (a Map(String, UInt8)) where it exists. */
export interface ReplicaRowsArg {
  replicaIsActive?: boolean;
}

export const replicaRowsArg = (c: Capabilities): ReplicaRowsArg => (hasColumn(c, 'replicas.replica_is_active') ? { replicaIsActive: true } : {});

/** Every replicated table of the server (columns that exist from 18.16 to 25.x, plus replica_is_active where probed). */
export const replicaRows = defineQueryFact<ReplicaRow[], ReplicaRowsArg | undefined>({
  name: 'system.replicas',
  query: (a) => `SELECT database, table, is_readonly, is_session_expired, queue_size, inserts_in_queue, merges_in_queue,
            greatest(toInt64(log_max_index) - toInt64(log_pointer), 0) AS log_lag,
            absolute_delay, active_replicas, total_replicas${a?.replicaIsActive ? ', replica_is_active' : ''}
     FROM system.replicas ORDER BY database, table`,
  parse: (rows) => parseReplicaRows(rows),
  timeoutMs: 10_000,
});

export interface ReplicaSummary {
  tables: number;
  readonly: string[];
  sessionExpired: string[];
  queueSize: number;
  insertsInQueue: number;
  maxLogLag: number;
  maxDelay: number;
  /** Tables where active_replicas < total_replicas, as "db.t (1/2 active)" ("db.t (1/2 active; inactive: r2)" where replica_is_active exists). */
  missingReplicas: string[];
}

const tableName = (r: ReplicaRow) => `${r.database}.${r.table}`;

export function summarizeReplicas(rows: ReplicaRow[]): ReplicaSummary {
  return {
    tables: rows.length,
    readonly: rows.filter((r) => r.isReadonly).map(tableName),
    sessionExpired: rows.filter((r) => r.isSessionExpired).map(tableName),
    queueSize: rows.reduce((a, r) => a + r.queueSize, 0),
    insertsInQueue: rows.reduce((a, r) => a + r.insertsInQueue, 0),
    maxLogLag: rows.reduce((a, r) => Math.max(a, r.logLag), 0),
    maxDelay: rows.reduce((a, r) => Math.max(a, r.absoluteDelay), 0),
    missingReplicas: rows
      .filter((r) => r.activeReplicas < r.totalReplicas)
      .map((r) => `${tableName(r)} (${r.activeReplicas}/${r.totalReplicas} active${r.inactive?.length ? `; inactive: ${r.inactive.join(', ')}` : ''})`),
  };
}

export type ReplicaThresholds = Pick<GateSettings, 'maxQueueSize' | 'maxInsertsInQueue' | 'maxLogLag' | 'maxDelayMs' | 'minReplicatedTables'>;

export interface ReplicaProblem {
  /** writable: read-only or session expired; behind: a queue, log lag or delay over its threshold; unseen: fewer tables than expected. */
  kind: 'writable' | 'behind' | 'unseen';
  text: string;
}

/**
 * Why the replica behind ROWS is not a healthy, caught-up replica (empty: it is): every replicated
 * table writable with a live ZooKeeper session, and per table the queue, the inserts in it, the
 * shared-log lag and absolute_delay within the thresholds. What the shard looks like from here
 * (active_replicas) is not the replica's own health: see shardProblems.
 */
export function replicaProblems(rows: ReplicaRow[], g: ReplicaThresholds): ReplicaProblem[] {
  const s = summarizeReplicas(rows);
  const out: ReplicaProblem[] = [];
  if (s.tables < g.minReplicatedTables)
    out.push({
      kind: 'unseen',
      text: `sees ${s.tables} replicated table(s), expected at least ${g.minReplicatedTables} (a user without SHOW TABLES on the data databases sees none; or set gates.min_replicated_tables)`,
    });
  if (s.readonly.length) out.push({ kind: 'writable', text: `read-only: ${s.readonly.join(', ')}` });
  if (s.sessionExpired.length) out.push({ kind: 'writable', text: `ZooKeeper session expired: ${s.sessionExpired.join(', ')}` });
  const perTable = (f: (r: ReplicaRow) => number, max: number, label: string) => {
    for (const r of rows) if (f(r) > max) out.push({ kind: 'behind', text: `${tableName(r)} ${label}=${f(r)} > ${max}` });
  };
  perTable((r) => r.queueSize, g.maxQueueSize, 'queue_size');
  perTable((r) => r.insertsInQueue, g.maxInsertsInQueue, 'inserts_in_queue');
  perTable((r) => r.logLag, g.maxLogLag, 'log_lag');
  const maxDelayS = g.maxDelayMs / 1000;
  if (s.maxDelay > maxDelayS) out.push({ kind: 'behind', text: `absolute_delay=${s.maxDelay}s > ${maxDelayS}s` });
  return out;
}

/** Tables whose replicas are not all active, as seen from this replica. */
export function shardProblems(rows: ReplicaRow[]): string[] {
  const missing = summarizeReplicas(rows).missingReplicas;
  return missing.length ? [`inactive replicas: ${missing.join(', ')}`] : [];
}
