// The server-wide replica metrics, for fast polls and `chops status` on servers that recompute them
// often (facts/clickhouse/capabilities.ts, hasFastReplicaMetrics): no Keeper round trip and no walk
// over the tables per poll. Values as ClickHouse src/Interpreters/ServerAsynchronousMetrics.cpp
// computes them: ReplicasMax* are maxima over every Replicated table (ReplicasMaxAbsoluteDelay only
// over tables that are not read-only, hence ReadonlyReplica from system.metrics, which is
// instantaneous: src/Common/CurrentMetrics.cpp). They are server-wide, not limited to the tables
// the chops user may see. Missing rows are never "0": a gate does not pass on them.
import { defineQueryFact } from '../../src/fact.js';
import type { GateSettings } from '../../src/gates/thresholds.js';
import { REPLICA_ASYNC_METRICS, UPDATE_INTERVAL_METRIC } from './capabilities.js';

export interface ReplicaMetrics {
  maxAbsoluteDelay?: number;
  maxQueueSize?: number;
  maxInsertsInQueue?: number;
  readonlyReplicas?: number;
  /** Seconds between two recomputations of the asynchronous metrics. */
  updateInterval?: number;
  /** Metrics that were expected and not in the answer. */
  missing: string[];
}

export function parseReplicaMetrics(rows: Record<string, unknown>[]): ReplicaMetrics {
  const m = new Map(rows.map((r) => [String(r.metric), Number(r.value)]));
  const get = (k: string) => {
    const v = m.get(k);
    return v === undefined || !Number.isFinite(v) ? undefined : v;
  };
  const out: ReplicaMetrics = {
    maxAbsoluteDelay: get('ReplicasMaxAbsoluteDelay'),
    maxQueueSize: get('ReplicasMaxQueueSize'),
    maxInsertsInQueue: get('ReplicasMaxInsertsInQueue'),
    readonlyReplicas: get('ReadonlyReplica'),
    updateInterval: get(UPDATE_INTERVAL_METRIC),
    missing: [...REPLICA_ASYNC_METRICS, 'ReadonlyReplica'].filter((k) => get(k) === undefined),
  };
  return out;
}

export const replicaMetrics = defineQueryFact({
  name: 'replica metrics',
  query: () => `SELECT metric, value FROM system.asynchronous_metrics
       WHERE metric IN (${[...REPLICA_ASYNC_METRICS, UPDATE_INTERVAL_METRIC].map((m) => `'${m}'`).join(', ')})
     UNION ALL SELECT metric, toFloat64(value) AS value FROM system.metrics WHERE metric = 'ReadonlyReplica'`,
  parse: (rows) => parseReplicaMetrics(rows),
  timeoutMs: 10_000,
});

export type MetricThresholds = Pick<GateSettings, 'maxQueueSize' | 'maxInsertsInQueue' | 'maxDelayMs'>;

/** The metrics as the poll value: "ReplicasMaxQueueSize=0, ReplicasMaxAbsoluteDelay=0, ReadonlyReplica=0". */
export function metricsValue(m: ReplicaMetrics): string {
  const v = (x: number | undefined) => (x === undefined ? 'missing' : String(x));
  return `ReplicasMaxQueueSize=${v(m.maxQueueSize)}, ReplicasMaxInsertsInQueue=${v(m.maxInsertsInQueue)}, ReplicasMaxAbsoluteDelay=${v(m.maxAbsoluteDelay)}, ReadonlyReplica=${v(m.readonlyReplicas)}`;
}

/**
 * Why the metrics do not say "caught up" (empty: they do, to be confirmed per table). The same
 * thresholds as replicaProblems (facts/clickhouse/replicas.ts): the per-table maxima against the
 * per-table limits. A missing metric is a problem, never a pass.
 */
export function metricsProblems(m: ReplicaMetrics, g: MetricThresholds): string[] {
  const out: string[] = [];
  if (m.missing.length) out.push(`metrics missing: ${m.missing.join(', ')} (not computed yet, or no SELECT on system.asynchronous_metrics / system.metrics)`);
  if ((m.readonlyReplicas ?? 0) > 0) out.push(`ReadonlyReplica=${m.readonlyReplicas} (replicated tables in read-only mode)`);
  if ((m.maxQueueSize ?? 0) > g.maxQueueSize) out.push(`ReplicasMaxQueueSize=${m.maxQueueSize} > ${g.maxQueueSize}`);
  if ((m.maxInsertsInQueue ?? 0) > g.maxInsertsInQueue) out.push(`ReplicasMaxInsertsInQueue=${m.maxInsertsInQueue} > ${g.maxInsertsInQueue}`);
  const maxDelayS = g.maxDelayMs / 1000;
  if ((m.maxAbsoluteDelay ?? 0) > maxDelayS) out.push(`ReplicasMaxAbsoluteDelay=${m.maxAbsoluteDelay}s > ${maxDelayS}s`);
  return out;
}
