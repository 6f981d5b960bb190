// Gate after (re)starting a replica, before the next replica of its shard: the server answers,
// its tables are loaded (asynchronous loading), every replicated table is writable with a live
// session, the replica is caught up — within the thresholds the peers gate uses (queue, inserts,
// log lag, delay) and staying there for gates.caught_up_for, not one lucky poll of an empty queue
// under steady inserts — and it sees all replicas of its shard active. How it waits for that
// depends on the server (catch-up.ts: SYNC REPLICA LIGHTWEIGHT, fast metric polls, or per-table
// polls on 18.16). New errors since the start are reported as a WARNING.
import type { StepContext, StepResult } from '../../../src/engine/playbook.js';
import { chClient } from '../../../src/clickhouse/client.js';
import { readQueryFact } from '../../../src/fact.js';
import { formatDuration } from '../../../src/format.js';
import { hasTable, serverCapabilities } from '../../../facts/clickhouse/capabilities.js';
import { loaderProgress } from '../../../facts/clickhouse/loader.js';
import { REPLICATED_TABLES_KEY } from './idle.js';
import { serviceState } from '../service.js';
import { newErrors } from './error-log.js';
import { syncFetches, usesSyncLightweight, waitCaughtUp } from './catch-up.js';
import { runGate } from './poll.js';

export interface HealthyReport {
  /** From SINCE until /ping and SELECT 1 worked. */
  answeredAfterMs: number;
  /** From SINCE until every gate passed. */
  caughtUpAfterMs: number;
  /** How long this step waited. */
  waitedMs: number;
  tables: number;
  queueSize: number;
  maxDelay: number;
  newErrorCount: number;
  newErrors: string[];
}

/**
 * After (re)starting ctx.host's server at SINCE: see the file comment. New errors are a warning,
 * not a failure: a restart routinely logs transient errors (peers and ZooKeeper reconnecting),
 * and the gates above are what decide health. Timings in data for the benchmark.
 */
export function waitReplicaHealthy(ctx: StepContext, opts: { since: Date }): Promise<StepResult> {
  return runGate(ctx, async (g) => {
    const h = ctx.host.def;
    const since = opts.since.getTime();
    const client = await chClient(ctx.run, h);
    const hint = `look at ${h.clickhouse.errorLog} and \`journalctl -u ${h.clickhouse.service}\` on ${h.name}`;

    // systemd is asked about the unit at most once a second while /ping fails (a systemctl costs
    // 50–170 ms on a replica that is starting, which would slow the polls that notice it is up).
    let stateAskedAt = Date.now();
    let st: Awaited<ReturnType<typeof serviceState>> | undefined;
    // Every 25 ms for the first 10 s: a server usually answers within a second of its start.
    await g.poll('server answers', { hint, fastForMs: 10_000 }, async () => {
      if (await client.ping({ timeoutMs: 3_000 })) {
        const r = await client.query<{ one: number }>('SELECT 1 AS one', { timeoutMs: 5_000 });
        if (Number(r[0]?.one) === 1) return { ok: true, value: 'Ok.' };
        return { ok: false, value: `SELECT 1 returned ${JSON.stringify(r)}` };
      }
      if (Date.now() - stateAskedAt >= 1_000) {
        st = await serviceState(ctx.host).catch(() => 'unknown' as const);
        stateAskedAt = Date.now();
      }
      // systemd gave up on the unit (crash loop, bad config): waiting cannot help.
      if (st === 'failed')
        return { ok: false, value: `/ping failed, service ${h.clickhouse.service} is failed`, fatal: `${h.clickhouse.service} failed to start` };
      return { ok: false, value: st ? `/ping failed (service ${st})` : '/ping failed' };
    });
    const answeredAfterMs = Date.now() - since;
    const caps = await serverCapabilities(client, ctx.run.emit);

    // Asynchronous loading: the server answers before its tables are loaded.
    if (hasTable(caps, 'asynchronous_loader')) {
      await g.poll('tables loaded', { hint }, async () => {
        const p = await readQueryFact(ctx.host, client, loaderProgress);
        const value = `${p.total - p.pending}/${p.total} loaded${p.failed ? `, ${p.failed} failed` : ''}`;
        if (p.failed) return { ok: false, value, fatal: `${p.failed} table load job(s) failed: ${p.error}` };
        return { ok: p.pending === 0, value };
      });
    }
    // As many replicated tables as before the stop (recorded by the idle gate), and at least the inventory's minimum.
    const before = ctx.memory.get<number>(REPLICATED_TABLES_KEY);
    const thresholds = { ...g.gates, minReplicatedTables: Math.max(g.gates.minReplicatedTables, before ?? 0) };

    // Modern servers wait server-side for the fetches (never 18.16: see catch-up.ts), then poll.
    if (usesSyncLightweight(caps)) await syncFetches(g, client, caps);
    const caught = await waitCaughtUp(g, client, caps, thresholds, hint);
    const caughtUpAfterMs = Date.now() - since;

    const errors = await newErrors(ctx.host, client, caps, opts.since);
    const s = caught.data!;
    const report: HealthyReport = {
      answeredAfterMs,
      caughtUpAfterMs,
      waitedMs: g.elapsedMs(),
      tables: s.tables,
      queueSize: s.queueSize,
      maxDelay: s.maxDelay,
      newErrorCount: errors.count,
      newErrors: errors.lines,
    };
    const warn = errors.error
      ? `; could not read ${errors.source}: ${errors.error}`
      : errors.count
        ? `; WARNING: ${errors.count} new error(s) in ${errors.source} since the start, last: ${errors.lines[errors.lines.length - 1]?.slice(0, 160)}`
        : '';
    if (errors.count) ctx.run.emit({ type: 'warning', host: h.name, gate: 'no new errors', count: errors.count, lines: errors.lines });
    return {
      changed: false,
      note: `healthy ${formatDuration(caughtUpAfterMs)} after start (answered after ${formatDuration(answeredAfterMs)}, ${s.tables} replicated table(s))${warn}`,
      data: report,
    };
  });
}
