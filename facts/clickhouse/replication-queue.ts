// What a replication queue waits on, for the messages of the catch-up gates: entries that were
// postponed (num_postponed, postpone_reason: ClickHouse src/Storages/System/
// StorageSystemReplicationQueue.cpp; "Not executing fetch of part … because N fetches already
// executing" and the like) or whose last try failed (num_tries, last_exception). Columns chosen by
// the capability probe: where num_postponed/postpone_reason are missing, failures only.
import { defineQueryFact } from '../../src/fact.js';
import { hasColumn, type Capabilities } from './capabilities.js';

export interface QueueStall {
  table: string;
  type: string;
  part: string;
  numTries: number;
  lastException: string;
  numPostponed: number;
  postponeReason: string;
}

export interface QueueStallsArg {
  postponed?: boolean;
}

export const queueStallsArg = (c: Capabilities): QueueStallsArg =>
  hasColumn(c, 'replication_queue.num_postponed') && hasColumn(c, 'replication_queue.postpone_reason') ? { postponed: true } : {};

export function parseQueueStalls(rows: Record<string, unknown>[]): QueueStall[] {
  return rows.map((r) => ({
    table: `${r.database}.${r.table}`,
    type: String(r.type),
    part: String(r.new_part_name ?? ''),
    numTries: Number(r.num_tries ?? 0),
    lastException: String(r.last_exception ?? ''),
    numPostponed: Number(r.num_postponed ?? 0),
    postponeReason: String(r.postpone_reason ?? ''),
  }));
}

/** At most 3 entries: the most postponed, then the most tried. */
export const queueStalls = defineQueryFact<QueueStall[], QueueStallsArg | undefined>({
  name: 'replication queue stalls',
  query: (a) =>
    a?.postponed
      ? `SELECT database, table, type, new_part_name, num_tries, last_exception, num_postponed, postpone_reason FROM system.replication_queue
     WHERE num_postponed > 0 OR last_exception != '' ORDER BY num_postponed DESC, num_tries DESC LIMIT 3`
      : `SELECT database, table, type, new_part_name, num_tries, last_exception FROM system.replication_queue
     WHERE last_exception != '' ORDER BY num_tries DESC LIMIT 3`,
  parse: (rows) => parseQueueStalls(rows),
  timeoutMs: 10_000,
});

const firstLine = (s: string, n = 160) => s.split('\n')[0].slice(0, n);

/** "shop.orders GET_PART 202401_5_5_0 postponed 12×: Not executing fetch …; …", '' when nothing is stalled. */
export function queueStallsText(stalls: QueueStall[]): string {
  return stalls
    .map((q) => {
      const what = `${q.table} ${q.type}${q.part ? ` ${q.part}` : ''}`;
      const parts: string[] = [];
      if (q.numPostponed > 0) parts.push(`postponed ${q.numPostponed}×${q.postponeReason ? `: ${firstLine(q.postponeReason)}` : ''}`);
      if (q.lastException) parts.push(`${q.numTries} tries, last error: ${firstLine(q.lastException)}`);
      return `${what} ${parts.join(', ')}`;
    })
    .join('; ');
}
