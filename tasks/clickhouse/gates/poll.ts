// The poll loop every health gate runs in, and the one place where gates meet plan mode.
//
// A gate evaluates a check every poll until it passes (optionally: keeps passing for `holdMs`) or
// its deadline passes, and then throws a GateError naming the host, the gate, the whole budget
// and the last value seen: a gate never lets a run silently continue. An exception from a check
// (the server not answering yet) is a failed poll, not a failed gate; a check that says `fatal`
// (waiting cannot help) fails at once.
//
// Plan mode: the facts are real (read-only queries run), nothing is waited for. Each check runs
// once; one that does not pass now ends the gate with "would wait: …" (shown as … in the plan,
// not ✓), one that passes is reported as "passes now: …". The gates themselves never look at plan
// mode: runGate() turns their run-mode result into the plan's.
//
// Waits are NOT cut short by run.signal: when the run stops (a failure on another shard), a
// replica that has started its steps finishes them (see Runner), and "wait until healthy" is
// exactly what must finish. A sibling gate's failure stops a poll through PollOptions.signal.
import { setTimeout as sleep } from 'node:timers/promises';
import type { StepContext, StepResult } from '../../../src/engine/playbook.js';
import type { HostHandle } from '../../../src/host.js';
import { GateError } from '../../../src/errors.js';
import { ClickHouseError } from '../../../src/clickhouse/errors.js';
import { formatDuration } from '../../../src/format.js';
import { gatesFor } from '../gate-params.js';

export interface GateCheck<T = unknown> {
  ok: boolean;
  /** What was observed, for progress notes and the timeout message: "queue_size=12, absolute_delay=40". */
  value: string;
  /** Which gate this value belongs to, when one poll evaluates several. */
  gate?: string;
  /** Stop now with this message: waiting cannot help (e.g. the peer's service is stopped). */
  fatal?: string;
  /** What to do about this `fatal` (instead of the gate's hint). */
  fatalHint?: string;
  data?: T;
}

export interface GateOutcome<T = unknown> {
  elapsedMs: number;
  value: string;
  gate: string;
  data?: T;
}

export interface PollOptions {
  /** Give up after this long (default: what is left of the gate's budget). */
  timeoutMs?: number;
  hint?: string;
  /** The check must pass at every poll for this long before the gate passes (not one lucky poll). */
  holdMs?: number;
  /** Stop polling (a sibling gate already failed): the poll ends with the sibling's error. */
  signal?: AbortSignal;
  /** Message of the GateError on timeout (default: `not passed after <budget>`). */
  timeoutMessage?: (budget: string) => string;
  /**
   * Poll every 25 ms for this long before backing off (a cheap check that ends downtime the
   * moment it passes, e.g. "server answers": a refused /ping costs one round trip).
   */
  fastForMs?: number;
}

/** A gate that does not pass now, in a plan: what a run would wait for. */
class WouldWait extends Error {
  constructor(
    readonly gate: string,
    readonly value: string,
  ) {
    super(`would wait for ${gate}`);
  }
}

/**
 * Whether a check that must hold for HOLD_MS has: OK_SINCE is when the current unbroken run of
 * passing polls began (undefined: the last poll failed). Pure, for the poll loop and its tests.
 */
export function holdState(okSince: number | undefined, ok: boolean, now: number, holdMs: number): { okSince: number | undefined; passed: boolean } {
  if (!ok) return { okSince: undefined, passed: false };
  const since = okSince ?? now;
  return { okSince: since, passed: now - since >= holdMs };
}

/**
 * The gates of one step: one deadline (gates.wait_timeout from the step's start), the step's
 * thresholds, and in plan mode the record of what passed.
 */
export class GateRun {
  readonly gates;
  readonly plan: boolean;
  readonly budgetMs: number;
  private readonly deadline: number;
  private readonly t0 = Date.now();
  private readonly passed: string[] = [];

  constructor(readonly ctx: StepContext) {
    this.gates = gatesFor(ctx);
    this.plan = ctx.host.plan;
    this.budgetMs = this.gates.waitTimeoutMs;
    this.deadline = this.t0 + this.budgetMs;
  }

  get host(): HostHandle {
    return this.ctx.host;
  }

  elapsedMs(): number {
    return Date.now() - this.t0;
  }

  /** What is left of the step's gate budget (a server-side wait such as SYNC REPLICA gets no more). */
  remainingMs(): number {
    return Math.max(0, this.deadline - Date.now());
  }

  /** Poll CHECK until it passes (see the file comment). Progress goes to host.note(), throttled. */
  async poll<T>(gate: string, o: PollOptions, check: () => Promise<GateCheck<T>>): Promise<GateOutcome<T>> {
    const host = this.host;
    const t0 = Date.now();
    const deadline = Math.min(this.deadline, t0 + (o.timeoutMs ?? this.budgetMs));
    let last: GateCheck<T> = { ok: false, value: 'not checked yet' };
    let okSince: number | undefined;
    let lastNote = '';
    let lastNoteAt = 0;
    let attempt = 0;
    for (;;) {
      try {
        host.facts.clear(); // each poll reads the host afresh
        last = await check();
      } catch (err) {
        last = { ok: false, value: errorValue(err) };
      }
      const name = last.gate ?? gate;
      const now = Date.now();
      if (last.fatal) throw new GateError(host.name, name, last.value, last.fatal, { hint: last.fatalHint ?? o.hint });
      const held = holdState(okSince, last.ok, now, o.holdMs ?? 0);
      okSince = held.okSince;
      if (this.plan) {
        if (!last.ok) throw new WouldWait(name, last.value);
        this.passed.push(`${name} (${last.value})`);
        return { elapsedMs: now - t0, value: last.value, gate: name, data: last.data };
      }
      if (held.passed) {
        this.ctx.run.emit({ type: 'gate', host: host.name, gate: name, passed: true, value: last.value, waitedMs: now - t0 });
        return { elapsedMs: now - t0, value: last.value, gate: name, data: last.data };
      }
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('stopped');
      if (now >= deadline) {
        const budget = formatDuration(this.budgetMs);
        this.ctx.run.emit({ type: 'gate', host: host.name, gate: name, passed: false, value: last.value, waitedMs: now - t0 });
        throw new GateError(host.name, name, last.value, o.timeoutMessage?.(budget) ?? `not passed after ${budget}`, { hint: o.hint });
      }
      const text = last.ok ? `"${name}" holding for ${formatDuration(o.holdMs ?? 0)}: ${last.value}` : `waiting for "${name}": ${last.value}`;
      if (text !== lastNote || now - lastNoteAt > 5_000) {
        host.note(`${text} (${formatDuration(Math.max(0, deadline - now))} left)`);
        lastNote = text;
        lastNoteAt = now;
      }
      // Poll fast at first and back off to the configured interval: a restarted server usually
      // answers within a second, and noticing it a whole poll interval late is pure downtime.
      const interval = now - t0 < (o.fastForMs ?? 0) ? 25 : Math.min(this.gates.pollIntervalMs, 25 * 1.5 ** attempt++);
      await sleep(Math.min(interval, Math.max(0, deadline - Date.now())), undefined, { signal: o.signal }).catch(() => {});
    }
  }

  /** The step's result in a plan when every check passed now. */
  planResult(r: Exclude<StepResult, void>): StepResult {
    if (this.passed.length === 0) return r; // nothing polled (e.g. no peers): the facts as they are
    const data = r.data;
    return { changed: false, note: `passes now: ${this.passed.join('; ')}`, data: { passedNow: true, ...(data && typeof data === 'object' ? data : {}) } };
  }
}

/**
 * Run a gate's BODY for a step: the step's StepResult in a run; in a plan, "passes now: …" or
 * "would wait: …" (data.passedNow false, which the plan shows as … rather than ✓).
 */
export async function runGate(ctx: StepContext, body: (g: GateRun) => Promise<StepResult>): Promise<StepResult> {
  const g = new GateRun(ctx);
  try {
    const r = await body(g);
    return g.plan && r && !r.skipped ? g.planResult(r) : r;
  } catch (err) {
    if (!(err instanceof WouldWait)) throw err;
    return {
      changed: false,
      note: `would wait: gate "${err.gate}" not passing now: ${err.value} (a run waits up to ${formatDuration(g.budgetMs)})`,
      data: { passedNow: false, gate: err.gate, value: err.value },
    };
  }
}

export function errorValue(err: unknown): string {
  if (err instanceof ClickHouseError) {
    if (err.kind === 'connection') return 'server not answering';
    if (err.kind === 'timeout') return 'query timed out';
    return `error: ${err.code !== undefined ? `Code ${err.code}: ` : ''}${err.serverMessage.split('\n')[0].slice(0, 200)}`;
  }
  return `error: ${(err as Error)?.message?.split('\n')[0] ?? String(err)}`;
}

/** Wait for all, but once one fails stop the others (they see SIGNAL aborted) and throw the first error. */
export async function allOrFirstError<T, R>(items: T[], fn: (item: T, signal: AbortSignal) => Promise<R>): Promise<R[]> {
  const ac = new AbortController();
  let first: unknown;
  const results = await Promise.allSettled(
    items.map((it) =>
      fn(it, ac.signal).catch((err) => {
        if (first === undefined) first = err;
        ac.abort(err);
        throw err;
      }),
    ),
  );
  if (first !== undefined) throw first;
  return results.map((r) => (r as PromiseFulfilledResult<R>).value);
}

/** A refusal whose message the operator reads first; gate and value stay available on the error. */
export function refusal(host: string, gate: string, value: string, message: string, hint: string): GateError {
  const e = new GateError(host, gate, value, message, { hint });
  e.message = `${message} (gate "${gate}")`;
  return e;
}
