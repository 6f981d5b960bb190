// How the after-start gate waits for a replica to catch up, by capability (docs/clickhouse-versions.md):
//
//   fetches  where the parser takes it (capabilities.ts: formatQuery of the statement keeps
//            LIGHTWEIGHT, 23.4+ servers that have formatQuery), `SYSTEM SYNC REPLICA db.t
//            LIGHTWEIGHT` per replicated table, with receive_timeout = what is left of the gate's
//            budget: the server waits for GET_PART/ATTACH_PART/DROP_RANGE/REPLACE_RANGE/DROP_PART
//            entries only, not for merges that can keep queue_size above zero forever on a busy
//            table (ClickHouse docs, "SYSTEM Statements: SYNC REPLICA"; ch-tools' `chadmin wait
//            replication-sync` uses it by default). A timeout (TIMEOUT_EXCEEDED, "SYNC REPLICA db.t:
//            command timed out. See the 'receive_timeout' setting") fails the gate naming the table.
//            18.16 has SYNC REPLICA without LIGHTWEIGHT, which waits for the whole queue, has no
//            timeout and cannot be killed: it is never sent there (polling only).
//   polls    where the replica metrics are recomputed often (hasFastReplicaMetrics), each poll
//            reads system.asynchronous_metrics + system.metrics (no Keeper round trip, no walk over
//            the tables); when they say "caught up", the per-table query confirms it (the one
//            definition of a healthy replica, facts/clickhouse/replicas.ts), and once more when the
//            hold is over, for the report. Elsewhere (18.16) every poll is the per-table query.
import type { ChClient } from '../../../src/clickhouse/client.js';
import { ClickHouseError } from '../../../src/clickhouse/errors.js';
import { sql } from '../../../src/clickhouse/sql.js';
import { GateError } from '../../../src/errors.js';
import { readQueryFact } from '../../../src/fact.js';
import { formatDuration } from '../../../src/format.js';
import { features, hasFastReplicaMetrics, hasTable, type Capabilities } from '../../../facts/clickhouse/capabilities.js';
import { keeperConnections, keeperConnectionText } from '../../../facts/clickhouse/keeper.js';
import { queueStalls, queueStallsArg, queueStallsText } from '../../../facts/clickhouse/replication-queue.js';
import { metricsProblems, metricsValue, replicaMetrics } from '../../../facts/clickhouse/replica-metrics.js';
import {
  replicaProblems,
  replicaRows,
  replicaRowsArg,
  shardProblems,
  summarizeReplicas,
  type ReplicaSummary,
  type ReplicaThresholds,
} from '../../../facts/clickhouse/replicas.js';
import { errorValue, type GateCheck, type GateOutcome, type GateRun } from './poll.js';

/** Tables synced at once (each is one HTTP request that waits server-side). */
const SYNC_CONCURRENCY = 4;
/** The client's own deadline waits this much longer than receive_timeout, so the server's answer comes first. */
const CLIENT_GRACE_MS = 5_000;

export const usesSyncLightweight = (c: Capabilities): boolean => features(c)['SYNC REPLICA LIGHTWEIGHT'];

export interface SyncReport {
  /** Tables synced, or why none were. */
  synced: number;
  skipped?: string;
}

/**
 * `SYSTEM SYNC REPLICA … LIGHTWEIGHT` for each of TABLES ("db.t" pairs) within the gate's budget.
 * Transient errors (read-only right after the start, Keeper reconnecting, the table not there
 * yet) are failed polls, retried; a server-side timeout is fatal, naming the table and what its
 * queue waits on; missing grants fall back to polling (noted). Not in plan mode (nothing waits).
 */
export async function syncFetches(g: GateRun, client: ChClient, caps: Capabilities): Promise<SyncReport> {
  if (g.plan) return { synced: 0, skipped: 'plan mode' };
  let tables: Array<[string, string]> | undefined;
  let pending = new Map<string, readonly [string, string]>();
  let synced = 0;
  let denied: string | undefined;
  await g.poll(
    'replica fetched',
    { hint: `SELECT * FROM system.replication_queue on ${g.host.name} shows what it waits for; raise gates.wait_timeout for big catch-ups` },
    async () => {
      if (!tables) {
        const rows = await readQueryFact(g.host, client, replicaRows, replicaRowsArg(caps));
        tables = rows.map((r) => [r.database, r.table]);
        pending = new Map(tables.map(([db, t]) => [`${db}.${t}`, [db, t] as const]));
      }
      // None seen: nothing to sync here; "replica caught up" refuses a replica that shows none.
      if (tables.length === 0) return { ok: true, value: 'no replicated tables to sync' };
      const errors: string[] = [];
      let fatal: { value: string; message: string } | undefined;
      const work = [...pending];
      const one = async ([name, [db, t]]: (typeof work)[number]) => {
        const left = g.remainingMs();
        if (left <= 0 || fatal || denied) return;
        // Whole seconds, at least 1 (0 would mean no limit): the server may wait up to 1 s past the budget.
        const receiveTimeout = Math.max(1, Math.ceil(left / 1000));
        try {
          await client.command(sql`SYSTEM SYNC REPLICA ${sql.ident(db)}.${sql.ident(t)} LIGHTWEIGHT`, {
            timeoutMs: receiveTimeout * 1000 + CLIENT_GRACE_MS,
            settings: { receive_timeout: receiveTimeout },
          });
          pending.delete(name);
          synced++;
        } catch (err) {
          const e = err instanceof ClickHouseError ? err : undefined;
          if (e?.code === 60)
            pending.delete(name); // dropped since it was listed
          else if (e?.code === 497) denied = e.serverMessage.split('\n')[0];
          else if (e?.code === 159 || e?.kind === 'timeout') {
            const stalls = await readQueryFact(g.host, client, queueStalls, queueStallsArg(caps)).catch(() => []);
            const waits = queueStallsText(stalls.filter((s) => s.table === name));
            fatal = {
              value: `${name}: SYNC REPLICA LIGHTWEIGHT timed out after ${receiveTimeout}s (receive_timeout)`,
              message: `${name} on ${g.host.name} did not fetch its parts within ${formatDuration(g.budgetMs)} (SYSTEM SYNC REPLICA ${name} LIGHTWEIGHT, receive_timeout=${receiveTimeout}s)${waits ? `; its queue waits on: ${waits}` : ''}`,
            };
          } else errors.push(`${name}: ${errorValue(err)}`);
        }
      };
      for (let i = 0; i < work.length; i += SYNC_CONCURRENCY) await Promise.all(work.slice(i, i + SYNC_CONCURRENCY).map(one));
      if (fatal) return { ok: false, value: fatal.value, fatal: fatal.message };
      if (denied) return { ok: true, value: `no SYSTEM SYNC REPLICA grant (${denied}): polling instead` };
      if (pending.size === 0) return { ok: true, value: `${synced}/${tables.length} table(s) fetched (SYNC REPLICA LIGHTWEIGHT)` };
      const names = [...pending.keys()];
      const which = `${names.slice(0, 3).join(', ')}${names.length > 3 ? ` and ${names.length - 3} more` : ''}`;
      return {
        ok: false,
        value: `${pending.size}/${tables.length} table(s) not synced (${which}): ${errors.slice(0, 3).join('; ') || 'no budget left for SYNC REPLICA'}`,
      };
    },
  );
  if (denied) {
    g.host.note(`SYSTEM SYNC REPLICA … LIGHTWEIGHT not granted (${denied}): waiting by polling`);
    return { synced, skipped: `not granted: ${denied}` };
  }
  return { synced };
}

/**
 * Poll until the replica behind CLIENT is caught up by the one definition (replicaProblems with
 * THRESHOLDS, writable, sees its shard), holding for gates.caught_up_for: by the cheap metrics
 * where they are fresh (confirmed per table), else per table. On a timeout the message carries
 * the per-table view and the hint what the queue waits on (postponed entries, failing tries).
 */
export async function waitCaughtUp(
  g: GateRun,
  client: ChClient,
  caps: Capabilities,
  thresholds: ReplicaThresholds,
  hint: string,
): Promise<GateOutcome<ReplicaSummary>> {
  const host = g.host;
  const rowsArg = replicaRowsArg(caps);
  const perTable = async (): Promise<GateCheck<ReplicaSummary>> => {
    const rows = await readQueryFact(host, client, replicaRows, rowsArg);
    const s = summarizeReplicas(rows);
    const problems = replicaProblems(rows, thresholds);
    const writable = problems.filter((p) => p.kind === 'writable');
    if (writable.length) {
      const keeper = hasTable(caps, 'zookeeper_connection')
        ? await readQueryFact(host, client, keeperConnections).then(keeperConnectionText, () => undefined)
        : undefined;
      return { ok: false, gate: 'replica writable', value: [...writable.map((p) => p.text), ...(keeper ? [keeper] : [])].join('; '), data: s };
    }
    // log_lag too: right after a start the queue can look empty before the replica has pulled
    // the shared log entries it missed (its log_pointer is still behind).
    const value = `queue_size=${s.queueSize}, absolute_delay=${s.maxDelay}${s.maxLogLag ? `, log_lag=${s.maxLogLag}` : ''}`;
    if (problems.length) return { ok: false, gate: 'replica caught up', value: `${value} (${problems.map((p) => p.text).join('; ')})`, data: s };
    const inactive = shardProblems(rows);
    if (inactive.length) return { ok: false, gate: 'replica sees its shard', value: inactive.join('; '), data: s };
    return { ok: true, value, data: s };
  };
  const opts = { hint: `${hint}; SELECT * FROM system.replication_queue on ${host.name} shows what it waits for`, holdMs: g.gates.caughtUpForMs };
  const fast = hasFastReplicaMetrics(caps);
  // The per-table confirmation of the current unbroken run of "caught up" metrics.
  let confirmed: GateCheck<ReplicaSummary> | undefined;
  const byMetrics = async (): Promise<GateCheck<ReplicaSummary>> => {
    const m = await readQueryFact(host, client, replicaMetrics);
    const problems = metricsProblems(m, thresholds);
    if (problems.length) {
      confirmed = undefined;
      return { ok: false, gate: m.readonlyReplicas ? 'replica writable' : 'replica caught up', value: `${metricsValue(m)} (${problems.join('; ')})` };
    }
    if (!confirmed) {
      const c = await perTable();
      if (!c.ok) return c;
      confirmed = c;
    }
    return { ok: true, value: metricsValue(m), data: confirmed.data };
  };
  try {
    for (;;) {
      const out = await g.poll('replica caught up', opts, fast ? byMetrics : perTable);
      if (!fast || g.plan) return out;
      // The hold is over: the per-table view once more, for the report (and in case it changed).
      const last = await perTable().catch((err): GateCheck<ReplicaSummary> => ({ ok: false, value: errorValue(err) }));
      if (last.ok) return { ...out, value: last.value, data: last.data };
      confirmed = undefined;
    }
  } catch (err) {
    throw await withQueueDetail(g, client, caps, err, fast ? perTable : undefined);
  }
}

/** A timed-out catch-up gate, restated with the per-table view (fast path) and what the queue waits on. */
async function withQueueDetail(
  g: GateRun,
  client: ChClient,
  caps: Capabilities,
  err: unknown,
  perTable: (() => Promise<GateCheck<ReplicaSummary>>) | undefined,
): Promise<unknown> {
  if (!(err instanceof GateError) || !/^not passed after /.test(err.reason)) return err;
  let gate = err.gate;
  let value = err.lastValue;
  if (perTable) {
    const now = await perTable().catch(() => undefined);
    if (now && !now.ok) {
      gate = now.gate ?? gate;
      value = now.value;
    }
  }
  const stalls = await readQueryFact(g.host, client, queueStalls, queueStallsArg(caps)).then(queueStallsText, () => '');
  const hint = stalls ? `its queue waits on: ${stalls}; ${err.hint ?? ''}`.replace(/; $/, '') : err.hint;
  return new GateError(err.host, gate, value, err.reason, { hint });
}
