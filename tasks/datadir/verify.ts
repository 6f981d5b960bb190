// Before the old copy may go: the replica has the same tables as before the stop, the same rows
// in every non-replicated table, and (replicated tables) as many rows as its peers once caught up.
// A table that cannot be counted fails the check: missing information never passes.
import type { StepContext } from '../../src/engine/playbook.js';
import type { Host } from '../../src/inventory/types.js';
import { ChopsError } from '../../src/errors.js';
import { chClient } from '../../src/clickhouse/client.js';
import { sqlIdent } from '../../src/clickhouse/sql.js';
import { gatesFor } from '../clickhouse/gate-params.js';
import { formatDuration } from '../../src/format.js';

export interface TableCount {
  table: string;
  engine: string;
  replicated: boolean;
  rows: number;
}

/** Engines whose rows live in the data directory (views, Distributed, Memory, … do not). */
export function countable(engine: string): boolean {
  return /MergeTree$/.test(engine) || ['Log', 'TinyLog', 'StripeLog'].includes(engine);
}

export async function tableCounts(ctx: StepContext<any>, h: Host): Promise<TableCount[]> {
  const c = await chClient(ctx.run, h);
  const tables = await c.query<{ database: string; name: string; engine: string }>(
    `SELECT database, name, engine FROM system.tables WHERE database != 'system' ORDER BY database, name`,
    { timeoutMs: 30_000 },
  );
  const out: TableCount[] = [];
  for (const t of tables) {
    if (!countable(t.engine)) {
      out.push({ table: `${t.database}.${t.name}`, engine: t.engine, replicated: false, rows: -1 });
      continue;
    }
    const r = await c.query<{ n: string | number }>(`SELECT count() AS n FROM ${sqlIdent(t.database)}.${sqlIdent(t.name)}`, { timeoutMs: 120_000 });
    const n = Number(r[0]?.n);
    if (!Number.isFinite(n)) throw new ChopsError(`${h.name}: count() of ${t.database}.${t.name} returned ${JSON.stringify(r)}`);
    out.push({ table: `${t.database}.${t.name}`, engine: t.engine, replicated: t.engine.startsWith('Replicated'), rows: n });
  }
  return out;
}

export interface VerifyReport {
  tables: number;
  nonReplicatedChecked: number;
  replicatedChecked: number;
  details: string[];
}

/** Compare the replica now with BEFORE (its counts at the stop); problems thrown, all at once. */
export function compareWithBefore(before: TableCount[], now: TableCount[]): string[] {
  const problems: string[] = [];
  const nowBy = new Map(now.map((t) => [t.table, t]));
  const beforeBy = new Map(before.map((t) => [t.table, t]));
  for (const b of before) {
    const n = nowBy.get(b.table);
    if (!n) problems.push(`${b.table} (${b.engine}) is gone`);
    else if (b.rows >= 0 && !b.replicated && n.rows !== b.rows) problems.push(`${b.table}: ${n.rows} rows, ${b.rows} before the stop`);
    else if (b.rows >= 0 && b.replicated && n.rows < b.rows) problems.push(`${b.table}: ${n.rows} rows, fewer than the ${b.rows} before the stop`);
  }
  for (const n of now) if (!beforeBy.has(n.table)) problems.push(`${n.table} appeared (not there before the stop)`);
  return problems;
}

/**
 * Replicated tables: the replica and every peer report the same count, read at the same moment
 * (inserts continue: poll until one reading agrees, up to the gate deadline).
 */
export async function compareWithPeers(ctx: StepContext<any>, now: TableCount[]): Promise<string[]> {
  const self = ctx.host.def;
  const peers = ctx.run.peers(self);
  const repl = now.filter((t) => t.replicated);
  if (!repl.length || !peers.length) return [];
  const waitMs = gatesFor(ctx).waitTimeoutMs;
  const deadline = Date.now() + waitMs;
  const problems: string[] = [];
  const self_c = await chClient(ctx.run, self);
  const peer_c = await Promise.all(peers.map((p) => chClient(ctx.run, p)));
  for (const t of repl) {
    const [db, name] = t.table.split('.');
    const q = `SELECT count() AS n FROM ${sqlIdent(db)}.${sqlIdent(name)}`;
    let last = '';
    for (let attempt = 0; ; attempt++) {
      const counts = await Promise.all(
        [self_c, ...peer_c].map((c) =>
          c.query<{ n: string }>(q, { timeoutMs: 30_000 }).then(
            (r) => Number(r[0]?.n),
            () => NaN,
          ),
        ),
      );
      if (counts.every((n) => Number.isFinite(n) && n === counts[0])) break;
      last = `${self.name}=${counts[0]}, ${peers.map((p, i) => `${p.name}=${counts[i + 1]}`).join(', ')}`;
      if (Date.now() > deadline) {
        problems.push(`${t.table}: counts never agreed with the peers within ${formatDuration(waitMs)} (last: ${last})`);
        break;
      }
      if (attempt % 10 === 9) ctx.host.note(`${t.table}: waiting for the counts to agree (${last})`);
      await new Promise((r) => setTimeout(r, 100 + Math.min(attempt * 20, 400)));
    }
  }
  return problems;
}
