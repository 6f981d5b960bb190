// The soak after the canaries of a rolling phase (src/engine/canary.ts): for --soak, every
// canary is watched as the gates define a healthy replica — it answers, no table read-only or with
// an expired session, queue, inserts, log lag and delay within the thresholds, its shard complete
// — and no new error appears in its error log (system.errors on newer servers). The first
// degradation stops the run with what was seen, on which canary, how far into the soak; the other
// replicas have not been touched. Plan mode looks once and says what a run would watch.
import { setTimeout as sleep } from 'node:timers/promises';
import type { PhaseHost, Step, StepContext } from '../../src/engine/playbook.js';
import type { Host } from '../../src/inventory/types.js';
import { ChopsError } from '../../src/errors.js';
import { chClient } from '../../src/clickhouse/client.js';
import { readQueryFact } from '../../src/fact.js';
import { formatDuration } from '../../src/format.js';
import { effectiveGates } from '../../src/gates/thresholds.js';
import { replicaProblems, replicaRows, shardProblems, summarizeReplicas } from '../../facts/clickhouse/replicas.js';
import { serverCapabilities } from '../../facts/clickhouse/capabilities.js';
import { serverInfo } from '../../facts/clickhouse/server.js';
import { newErrors } from './gates/error-log.js';

export interface CanaryLook {
  host: string;
  version?: string;
  problems: string[];
  maxDelay: number;
  queueSize: number;
}

/** One look at a canary: what is wrong with it now (nothing = healthy), from the facts the gates read. */
export async function lookAtCanary(ctx: StepContext<any>, h: Host, since: Date): Promise<CanaryLook> {
  const handle = ctx.run.handle(h);
  const look: CanaryLook = { host: h.name, problems: [], maxDelay: 0, queueSize: 0 };
  try {
    const client = await chClient(ctx.run, h);
    const [info, rows, caps] = await Promise.all([
      readQueryFact(handle, client, serverInfo),
      readQueryFact(handle, client, replicaRows),
      serverCapabilities(client, ctx.run.emit),
    ]);
    look.version = info.version;
    const s = summarizeReplicas(rows);
    look.maxDelay = s.maxDelay;
    look.queueSize = s.queueSize;
    look.problems.push(...replicaProblems(rows, effectiveGates(h.gates, ctx.params)).map((p) => p.text), ...shardProblems(rows));
    const errors = await newErrors(handle, client, caps, since);
    if (errors.count) look.problems.push(`${errors.count} new error(s) in ${errors.source}, last: ${errors.lines[errors.lines.length - 1]?.slice(0, 200)}`);
  } catch (err) {
    look.problems.push(`does not answer: ${(err as Error).message.split('\n')[0]}`);
  }
  return look;
}

/** The soak step: watch the canaries CANARIES(selection) for SOAK_MS; the first problem stops the run. BACK: how to undo the canaries' work. */
export function soakStep(canariesOf: (selected: PhaseHost[]) => PhaseHost[], soakMs: number, back: string): Step<any> {
  return {
    name: 'soak the canaries',
    waitsFor: `the canaries stay healthy for ${formatDuration(soakMs)} (errors, read-only, delay, queue)`,
    description: 'watch the upgraded canaries before the rest; degraded → the run stops',
    run: async (ctx) => {
      const names = new Set(canariesOf(ctx.run.selected).map((h) => h.name));
      const canaries = ctx.run.selected.filter((h) => names.has(h.name));
      const since = new Date();
      const poll = Math.max(1000, effectiveGates(canaries[0].gates, ctx.params).pollIntervalMs);
      const list = canaries.map((h) => h.name).join(', ');
      let looks = 0;
      let maxDelay = 0;
      for (;;) {
        const seen = await Promise.all(canaries.map((h) => lookAtCanary(ctx, h, since)));
        looks++;
        maxDelay = Math.max(maxDelay, ...seen.map((s) => s.maxDelay));
        const bad = seen.filter((s) => s.problems.length);
        const elapsed = Date.now() - since.getTime();
        if (bad.length) {
          const versions = seen.map((s) => `${s.host} ${s.version ?? '?'}`).join(', ');
          throw new ChopsError(
            `canary ${bad.map((b) => `${b.host} degraded ${formatDuration(elapsed)} into the ${formatDuration(soakMs)} soak: ${b.problems.join('; ')}`).join('\n')}\nthe run stops here: the canaries (${versions}) are done, no other replica was touched`,
            {
              hint: `look at the canaries (chops status, their error logs); then go back (${back} --limit ${list}) or continue anyway with chops resume (the soak runs again)`,
            },
          );
        }
        // A plan looks once (no canary was upgraded in a plan).
        if (await ctx.host.whenApplied(true, async () => false))
          return { changed: false, note: `would watch ${list} for ${formatDuration(soakMs)}; healthy now` };
        ctx.host.note(`canaries ${list} healthy, ${formatDuration(elapsed)} of ${formatDuration(soakMs)}`);
        if (elapsed >= soakMs) break;
        await sleep(Math.min(poll, soakMs - elapsed));
      }
      return {
        changed: false,
        note: `${list} stayed healthy for ${formatDuration(soakMs)} (${looks} looks, max delay ${maxDelay}s, no new errors)`,
        data: { canaries: canaries.map((h) => h.name), soakMs, looks, maxDelay },
      };
    },
  };
}
