// Gate before stopping a replica, on the replica itself: nothing in flight in its replication
// queue, no stuck entries, no unfinished mutations (unless gates.allow_mutations), no pending
// Distributed sends, at most gates.max_active_queries queries of someone else running, and as
// many replicated tables as the inventory expects (zero rows from a user without grants must not
// read as "nothing to do"). All evaluated together each poll, waited for with one deadline.
import type { StepContext, StepResult } from '../../../src/engine/playbook.js';
import { chClient, type ChClient } from '../../../src/clickhouse/client.js';
import { formatDuration } from '../../../src/format.js';
import { hasColumn, hasTable, serverCapabilities, type Capabilities } from '../../../facts/clickhouse/capabilities.js';
import { queueStallsArg } from '../../../facts/clickhouse/replication-queue.js';
import { distributedDirs, distributionQueue, pendingDistributedFiles, type PendingSends } from './distributed.js';
import { runGate, type GateCheck } from './poll.js';

/** Per-host memory: the replicated tables the replica had before its stop (compared after its start). */
export const REPLICATED_TABLES_KEY = 'gates.replicatedTablesBeforeStop';

/** Queue entries older than this that are not executing do not block a stop (they are not "in flight"). */
export const OLD_QUEUE_ENTRY_SECONDS = 600;

export interface QueueEntry {
  database: string;
  table: string;
  type: string;
  isExecuting: boolean;
  numTries: number;
  lastException: string;
  /** Seconds since the entry was created. */
  ageSeconds: number;
  /** Times the entry was postponed, and why the last time (where the server has the columns). */
  numPostponed?: number;
  postponeReason?: string;
}

export function parseQueueEntries(rows: Record<string, unknown>[]): QueueEntry[] {
  return rows.map((q) => ({
    database: String(q.database),
    table: String(q.table),
    type: String(q.type),
    isExecuting: Number(q.is_currently_executing) !== 0,
    numTries: Number(q.num_tries),
    lastException: String(q.last_exception ?? ''),
    ageSeconds: Number(q.age),
    ...(q.num_postponed !== undefined ? { numPostponed: Number(q.num_postponed), postponeReason: String(q.postpone_reason ?? '') } : {}),
  }));
}

/**
 * Which queue entries hold a stop. Stuck = old AND failing: created more than
 * OLD_QUEUE_ENTRY_SECONDS ago, its last try failed, and not executing now; waiting will not drain
 * it. A young entry that fails often (a GET_PART from a peer that is restarting passes 100 tries
 * within seconds on 18.16) is in flight: it will succeed when the peer is back. Old entries that
 * are not failing and not executing (postponed merges) hold nothing.
 */
export function classifyQueue(entries: QueueEntry[]): { inFlight: QueueEntry[]; stuck: QueueEntry[] } {
  const old = (q: QueueEntry) => q.ageSeconds >= OLD_QUEUE_ENTRY_SECONDS;
  const stuck = entries.filter((q) => old(q) && !q.isExecuting && q.lastException !== '');
  const inFlight = entries.filter((q) => !stuck.includes(q) && (q.isExecuting || !old(q)));
  return { inFlight, stuck };
}

export interface SelfReport {
  queueInFlight: number;
  stuckEntries: number;
  unfinishedMutations: number;
  pendingDistributedFiles: number;
  activeQueries: number;
  replicatedTables: number;
}

/** Someone else's queries: not chops' own probes and KILLs (query_id chops-*), not those already killed. */
export function processesQuery(c: Capabilities): string {
  return `SELECT query_id, user, elapsed, query FROM system.processes WHERE query_id NOT LIKE 'chops-%'${hasColumn(c, 'processes.is_cancelled') ? ' AND NOT is_cancelled' : ''}`;
}

export function checkSelfBeforeStop(ctx: StepContext): Promise<StepResult> {
  return runGate(ctx, async (g) => {
    const h = ctx.host.def;
    const gates = g.gates;
    const client = await chClient(ctx.run, h);
    const caps = await serverCapabilities(client, ctx.run.emit);
    const outcome = await g.poll(
      'replica idle',
      { hint: `see what keeps ${h.name} busy: system.replication_queue, system.mutations, system.processes; raise gates.wait_timeout for big catch-ups` },
      async (): Promise<GateCheck<SelfReport>> => {
        const [queue, mutations, processes, pending, tables] = await Promise.all([
          client.query<Record<string, unknown>>(
            `SELECT database, table, type, is_currently_executing, num_tries, last_exception,
                  toUInt32(greatest(now() - create_time, 0)) AS age${queueStallsArg(caps).postponed ? ', num_postponed, postpone_reason' : ''}
           FROM system.replication_queue`,
            { timeoutMs: 10_000 },
          ),
          gates.allowMutations
            ? Promise.resolve([] as Record<string, unknown>[])
            : client.query<Record<string, unknown>>(`SELECT database, table, mutation_id FROM system.mutations WHERE NOT is_done`, { timeoutMs: 10_000 }),
          client.query<Record<string, unknown>>(processesQuery(caps), { timeoutMs: 10_000 }),
          pendingSends(ctx, client, caps),
          client.query<{ n: string }>(`SELECT count() AS n FROM system.replicas`, { timeoutMs: 10_000 }),
        ]);
        const { inFlight, stuck } = classifyQueue(parseQueueEntries(queue));
        const replicatedTables = Number(tables[0]?.n ?? 0);
        const report: SelfReport = {
          queueInFlight: inFlight.length,
          stuckEntries: stuck.length,
          unfinishedMutations: mutations.length,
          pendingDistributedFiles: pending.count,
          activeQueries: processes.length,
          replicatedTables,
        };
        const failing: Array<[string, string]> = [];
        if (inFlight.length) {
          // What the queue waits on, where the server says (postpone_reason): "8 fetches already executing" and the like.
          const postponed = inFlight.filter((q) => (q.numPostponed ?? 0) > 0).sort((x, y) => (y.numPostponed ?? 0) - (x.numPostponed ?? 0))[0];
          const why = postponed
            ? `; ${postponed.database}.${postponed.table} ${postponed.type} postponed ${postponed.numPostponed}×: ${postponed.postponeReason?.split('\n')[0].slice(0, 120)}`
            : '';
          failing.push(['nothing in flight', `replication_queue=${inFlight.length} (${countBy(inFlight.map((q) => q.type))}${why})`]);
        }
        if (stuck.length)
          failing.push([
            'no stuck entries',
            `stuck_entries=${stuck.length} (${stuck
              .slice(0, 2)
              .map(
                (q) =>
                  `${q.database}.${q.table} ${q.type}, ${formatDuration(q.ageSeconds * 1000)} old, ${q.numTries} tries: ${q.lastException.split('\n')[0].slice(0, 120)}`,
              )
              .join('; ')})`,
          ]);
        if (mutations.length)
          failing.push([
            'mutations done',
            `unfinished_mutations=${mutations.length} (${mutations
              .slice(0, 3)
              .map((m) => `${m.database}.${m.table} ${m.mutation_id}`)
              .join(', ')})`,
          ]);
        if (pending.error) failing.push(['pending distributed sends', `cannot check: ${pending.error}`]);
        else if (pending.count) failing.push(['pending distributed sends', `pending_distributed_files=${pending.count} (${pending.sample.join(', ')})`]);
        if (processes.length > gates.maxActiveQueries)
          failing.push([
            'active queries',
            `active_queries=${processes.length} > ${gates.maxActiveQueries} (${processes
              .slice(0, 2)
              .map((p) => `${p.user}: ${String(p.query).replace(/\s+/g, ' ').slice(0, 60)}`)
              .join('; ')})`,
          ]);
        if (replicatedTables < gates.minReplicatedTables)
          failing.push([
            'replicated tables',
            `replicated_tables=${replicatedTables} < ${gates.minReplicatedTables} (a user without SHOW TABLES sees none: its empty queue proves nothing)`,
          ]);
        if (!failing.length) return { ok: true, value: 'idle', data: report };
        return { ok: false, gate: failing.map(([n]) => n).join(' + '), value: failing.map(([, v]) => v).join(', '), data: report };
      },
    );
    // What "all its tables" means after the start (facts/clickhouse/replicas.ts counts against it).
    ctx.memory.set(REPLICATED_TABLES_KEY, outcome.data?.replicatedTables);
    return {
      changed: false,
      note: `idle (queue empty, no mutations, no pending sends, no queries)${outcome.elapsedMs > 1000 ? ` after ${formatDuration(outcome.elapsedMs)}` : ''}`,
      data: { ...outcome.data, waitedMs: outcome.elapsedMs },
    };
  });
}

/** system.distribution_queue where the server has it; else (18.16) the .bin files on disk. */
async function pendingSends(ctx: StepContext, client: ChClient, caps: Capabilities): Promise<PendingSends> {
  if (hasTable(caps, 'distribution_queue')) return distributionQueue(client);
  return pendingDistributedFiles(ctx.host, await distributedDirs(client, ctx.host.def));
}

/** "GET_PART:26 MERGE_PARTS:4": the most frequent first (ties by name), whatever order the server listed them in. */
export function countBy(keys: string[]): string {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return [...m]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([k, n]) => `${k}:${n}`)
    .join(' ');
}
