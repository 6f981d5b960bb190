// Runs a playbook: phases in order, each by its scope, orchestrated by listr2 and drawn by chops'
// own display (engine/live.ts); every step's status goes to the state file as it happens so
// `chops resume` can continue from the exact step.
// Over 300 lines for now: the listr2 task tree, per-step state marks, rollback and the resume
// decisions are one control flow; the next split is the listr2 wiring into its own module.
import type { Host, Inventory } from '../inventory/types.js';
import { type HostMemory, type Phase, type Playbook, type RunContext, type Step, type StepResult, phaseHosts } from './playbook.js';
import { Session } from './session.js';
import { groupByShard } from '../inventory/topology.js';
import { ChopsError, UsageError, errorText, tail } from '../errors.js';

/** Hosts the run needs could not be reached/verified before the first change: an input problem (exit 2). */
export class HostsUnverifiedError extends UsageError {}
import { ONCE_HOST, type RunMemory, type RunState } from '../run/state/model.js';
import { getStep } from '../run/state/steps.js';
import { replicaInProgress, resumeDecision } from '../run/state/resume-policy.js';
import type { RunStore } from '../run/state/store.js';
import { toJson } from '../run/state/json.js';
import type { CommandListener } from '../transport/types.js';
import type { Output } from './output.js';
import { redactor } from '../secrets.js';

export interface ExecuteOptions {
  playbook: Playbook;
  params: Record<string, unknown>;
  inventory: Inventory;
  selected: Host[];
  plan: boolean;
  output: Output;
  /** The playbook's phases for these parameters, when the caller has built them already. */
  phases?: Phase[];
  parallelShards: number;
  parallelHosts: number;
  /** Run mode: state to update (a fresh one, or a resumed one). */
  state?: RunState;
  store?: RunStore;
  /** Every command run/recorded, for the run log. */
  onCommand?: CommandListener;
}

export interface ExecuteResult {
  ok: boolean;
  /** What each step reported (notes, skip reasons), in the order they finished. */
  outcomes: Array<{ host: string; phase: string; step: string; note?: string; skipped?: string; failed?: string }>;
  error?: FailureInfo;
  results: Array<{ host: string; phase: string; step: string; data: unknown }>;
  session: Session;
  interrupted: boolean;
}

export interface FailureInfo {
  host: string;
  phase: string;
  step: string;
  error: unknown;
}

export class Runner {
  private abort = new AbortController();
  private failure?: FailureInfo;
  private results: ExecuteResult['results'] = [];
  private outcomes: ExecuteResult['outcomes'] = [];
  private session: Session;
  private ctx: RunContext;
  private phases: Phase[];
  /** Which step each host is running now, so the run log can attribute every command. */
  readonly currentStep = new Map<string, string>();
  /** Host memory when there is no state file (plan mode, engine tests). */
  private planMemory: RunMemory = {};

  constructor(private readonly o: ExecuteOptions) {
    this.session = new Session(
      o.inventory,
      o.plan,
      (ev) => o.onCommand?.(ev),
      (h) => this.currentStep.get(h),
    );
    this.phases = o.phases ?? o.playbook.phases(o.params, o.inventory);
    this.ctx = {
      runId: o.state?.id,
      inventory: o.inventory,
      selected: o.selected,
      plan: o.plan,
      handle: (h) => this.session.handle(h),
      peers: (h) => o.inventory.hosts.filter((x) => x.cluster === h.cluster && x.shard === h.shard && x.name !== h.name),
      shared: new Map(),
      signal: this.abort.signal,
      emit: (ev) => o.output.event(ev),
    };
  }

  get phaseList(): Phase[] {
    return this.phases;
  }

  /** Open the selected hosts' connections in the background while the run is being set up. */
  preconnect(): void {
    for (const h of this.o.selected) this.session.handle(h).transport.warm?.();
  }

  /** Close every connection (execute() does this itself when it ends). */
  close(): Promise<void> {
    return this.session.close();
  }

  /** Stop starting new work (a signal, or the first failure). */
  stop(reason: string): void {
    if (!this.abort.signal.aborted) this.abort.abort(new Error(reason));
  }

  async execute(): Promise<ExecuteResult> {
    const { Listr } = await import('listr2');
    const o = this.o;
    const tasks = this.phases.map((phase, pi) => ({
      title: `${phase.name} (${describeScope(phase)})`,
      skip: () => (this.abort.signal.aborted ? 'stopped: the run is stopping' : false),
      task: (_: unknown, t: any) => t.newListr(this.phaseTasks(phase, pi), phaseListOptions(phase, o)),
    }));
    // listr2 orchestrates (order, concurrency, skips); it never draws. The operator sees
    // chops' own display (engine/output.ts), which costs the same whatever the fan-out.
    const list = new Listr(tasks, { concurrent: false, exitOnError: true, renderer: 'silent', registerSignalListeners: false } as any);
    o.output.begin(this.displayShape());
    try {
      await list.run();
    } catch {
      // the failure is recorded in this.failure with its context; listr's copy is not needed
    } finally {
      o.output.end();
    }
    await this.session.close();
    return {
      ok: !this.failure && !this.abort.signal.aborted,
      error: this.failure,
      results: this.results,
      outcomes: this.outcomes,
      session: this.session,
      interrupted: !this.failure && this.abort.signal.aborted,
    };
  }

  /** What the live display needs to know up front: phases, their hosts (by shard) and steps. */
  private displayShape() {
    const sel = this.o.selected;
    return this.phases.map((ph) => ({
      name: ph.name,
      scope: describeScope(ph),
      steps: ph.steps.map((s) => s.name),
      hosts: ph.scope === 'once' ? sel.slice(0, 1).map((h) => h.name) : phaseHosts(ph, sel).map((h) => h.name),
      group: ph.scope === 'rolling' ? Object.fromEntries(phaseHosts(ph, sel).map((h) => [h.name, `shard ${h.cluster}/${h.shardName}`])) : undefined,
    }));
  }

  /** A step's skip, told to the display too (a resumed run's done steps count as finished there). */
  private shownSkip(host: Host, phase: Phase, step: Step, skip: () => Promise<string | false>): () => Promise<string | false> {
    return async () => {
      const why = await skip();
      if (why) this.o.output.stepSkipped(host.name, phase.name, step.name, why);
      return why;
    };
  }

  private phaseTasks(phase: Phase, pi: number): any[] {
    const sel = phaseHosts(phase, this.o.selected);
    if (phase.scope === 'once') {
      const host = this.o.selected[0];
      return [
        {
          title: `${host.name}`,
          task: (_: unknown, t: any) => t.newListr(this.stepTasks(phase, pi, host, ONCE_HOST), { concurrent: false, exitOnError: true }),
        },
      ];
    }
    if (phase.scope === 'each') {
      return sel.map((host) => ({
        title: host.name,
        task: (_: unknown, t: any) => t.newListr(this.stepTasks(phase, pi, host, host.name), { concurrent: false, exitOnError: true }),
      }));
    }
    // rolling: one task per shard; replicas strictly one after the other inside it
    return groupByShard(sel).map((replicas) => ({
      title: `shard ${replicas[0].cluster}/${replicas[0].shardName}`,
      task: (_: unknown, t: any) =>
        t.newListr(
          replicas.map((host) => ({
            title: host.name,
            skip: () => (this.abort.signal.aborted && !this.replicaInProgress(pi, phase, host) ? 'stopped: the run is stopping' : false),
            task: (_: unknown, rt: any) => rt.newListr(this.stepTasks(phase, pi, host, host.name), { concurrent: false, exitOnError: true }),
          })),
          { concurrent: false, exitOnError: true },
        ),
    }));
  }

  /** A replica whose work has begun must be finished (or rolled back), never abandoned (resume-policy.ts). */
  private replicaInProgress(pi: number, phase: Phase, host: Host): boolean {
    return replicaInProgress(this.o.state, pi, phase.steps, host.name);
  }

  /**
   * Reach and verify every host the run will touch, and every peer its gates will read, before
   * the first change (issue: a run restarted four replicas of other shards before it found that
   * one host's key was unknown). Connections are already opening (preconnect); this waits for
   * them and runs `true` on each. Throws one error naming every host that failed and its fix.
   */
  async verifyHosts(): Promise<void> {
    const need = new Map<string, Host>();
    for (const h of this.o.selected) need.set(h.name, h);
    if (this.phases.some((p) => p.scope === 'rolling')) {
      for (const h of this.o.selected) for (const p of this.ctx.peers(h)) need.set(p.name, p);
    }
    const hosts = [...need.values()].filter((h) => h.connection !== 'local');
    const results = await Promise.allSettled(hosts.map((h) => this.session.handle(h).transport.probe('true', { timeoutMs: 30_000, sudo: false })));
    const failed: Array<{ host: Host; why: string; hint?: string }> = [];
    results.forEach((r, i) => {
      const host = hosts[i];
      if (r.status === 'rejected') failed.push({ host, why: errorText(r.reason), hint: r.reason instanceof ChopsError ? r.reason.hint : undefined });
      else if (r.value.code !== 0) failed.push({ host, why: `\`true\` exited ${r.value.code}${r.value.stderr.trim() ? `: ${tail(r.value.stderr, 2)}` : ''}` });
    });
    if (!failed.length) return;
    const role = (h: Host) =>
      this.o.selected.includes(h)
        ? 'to be worked on'
        : `peer of ${this.o.selected
            .filter((s) => this.ctx.peers(s).includes(h))
            .map((s) => s.name)
            .join(', ')}, read by its gates`;
    const lines = failed.map((f) => `  ${f.host.name} (${role(f.host)}): ${f.why}${f.hint ? `\n    fix: ${f.hint}` : ''}`);
    throw new HostsUnverifiedError(`${failed.length} of ${hosts.length} host(s) could not be reached and verified; nothing was changed:\n${lines.join('\n')}`, {
      hint: 'fix the hosts named above (or leave them out with --limit when they are not needed), then run the same command again',
    });
  }

  private stepTasks(phase: Phase, pi: number, host: Host, stateHost: string): any[] {
    return this.stepTaskList(phase, pi, host, stateHost).map((t, si) => ({ ...t, skip: this.shownSkip(host, phase, phase.steps[si], t.skip) }));
  }

  private stepTaskList(phase: Phase, pi: number, host: Host, stateHost: string) {
    return phase.steps.map((step, si) => ({
      title: step.name,
      skip: async () => {
        // What the state says a resume does with this step (src/run/state/resume-policy.ts); the
        // replica's serving state is a fact read now, in this process.
        const d = resumeDecision(this.o.state, pi, phase.steps, si, stateHost);
        if (d.kind === 'recheck') return false;
        if (d.kind === 'recheck-if-serving') return (await this.servingNow(phase, host)) ? false : d.reason;
        if (d.kind === 'skip') return d.reason;
        // In a rolling phase a replica that has started its steps finishes them; elsewhere stop at once.
        if (this.abort.signal.aborted && !(phase.scope === 'rolling' && this.replicaInProgress(pi, phase, host))) return 'stopped: the run is stopping';
        return false;
      },
      task: async (_: unknown, t: any) => {
        const handle = this.session.handle(host);
        handle.onNote = (text) => {
          t.output = redactor.redact(text);
          this.o.output.note(host.name, step.name, text);
        };
        try {
          await this.runStep(phase, pi, step, host, stateHost, (title) => (t.title = redactor.redact(title)));
        } finally {
          handle.onNote = undefined;
        }
        if (si === phase.steps.length - 1) t.title = `${step.name}`;
      },
    }));
  }

  private async runStep(phase: Phase, pi: number, step: Step, host: Host, stateHost: string, setTitle: (s: string) => void): Promise<void> {
    const o = this.o;
    const handle = this.session.handle(host);
    const sctx = { host: handle, params: o.params, run: this.ctx, memory: this.memoryOf(host.name) };
    this.currentStep.set(host.name, step.name);
    handle.facts.open(); // facts are read afresh by each step, then cached until it changes something
    // On disk before the step's first command: after a crash the state names exactly the step
    // that was in progress, and a step still "pending" there never ran.
    await this.mark(pi, step.name, stateHost, { status: 'started' });
    o.output.stepStart(host.name, phase.name, step.name);
    const t0 = performance.now();
    let res: StepResult;
    try {
      res = await step.run(sctx).finally(() => handle.facts.close());
    } catch (err) {
      const ms = performance.now() - t0;
      await this.mark(pi, step.name, stateHost, { status: 'failed', error: errorText(err) });
      o.output.stepFailed(host.name, phase.name, step.name, err, ms);
      this.outcomes.push({ host: host.name, phase: phase.name, step: step.name, failed: errorText(err) });
      if (!this.failure) this.failure = { host: host.name, phase: phase.name, step: step.name, error: err };
      this.stop(`${host.name}: ${step.name} failed`);
      if (!o.plan) await this.rollback(phase, pi, step, host, stateHost);
      throw err;
    }
    const ms = performance.now() - t0;
    const r = o.plan ? this.planned(host.name, step.name, res ?? {}) : (res ?? {});
    // Awaited: "done" (with the step's data and the host's memory) must be on disk before the
    // next step starts, so a crash never repeats it and a resumed run knows what it learned.
    const data = r.data === undefined || !o.state ? {} : { data: stepData(r.data, step.name, host.name) };
    if (r.skipped) {
      await this.mark(pi, step.name, stateHost, { status: 'done', changed: false, note: r.skipped, ...data });
      setTitle(`${step.name}: ${r.skipped}`);
    } else {
      await this.mark(pi, step.name, stateHost, { status: 'done', changed: r.changed ?? true, note: r.note, ...data });
      if (r.note) setTitle(`${step.name}: ${r.note}`);
    }
    this.outcomes.push({ host: host.name, phase: phase.name, step: step.name, note: r.note, skipped: r.skipped });
    if (r.data !== undefined) {
      this.results.push({ host: host.name, phase: phase.name, step: step.name, data: r.data });
    }
    o.output.stepDone(host.name, phase.name, step.name, ms, r);
  }

  /** Is the replica serving now (resume decisions)? Unknown counts as serving: gates run again. */
  private async servingNow(phase: Phase, host: Host): Promise<boolean> {
    if (phase.scope !== 'rolling') return true;
    if (!phase.replicaServing) return true;
    const handle = this.session.handle(host);
    try {
      return await phase.replicaServing({ host: handle, params: this.o.params, run: this.ctx, memory: this.memoryOf(host.name) });
    } catch {
      return true;
    }
  }

  /**
   * Plan mode is the engine's business, not the task's: a step runs the same code in a plan, its
   * changes are recorded by the plan transport, and here its result is restated as what a run
   * would do. Measurements a step made (durations, bytes) mean nothing when nothing ran.
   */
  private planned(host: string, step: string, r: Exclude<StepResult, void>): Exclude<StepResult, void> {
    if (r.skipped) return r;
    const n = this.session.plannedChanges().filter((c) => c.host === host && c.step === step).length;
    if (n === 0) return { ...r, changed: false };
    return { changed: true, note: `would make ${n} change${n === 1 ? '' : 's'}` };
  }

  /**
   * The host's memory: in the run state when there is one (each set() is a journal line, on disk
   * before the step's "done", which is queued after it), in this runner otherwise (plan mode).
   * What is kept is a JSON copy, exactly what a resumed run will read back.
   */
  private memoryOf(host: string): HostMemory {
    const { state, store } = this.o;
    const root = (): RunMemory => state?.memory ?? this.planMemory;
    return {
      get: <T>(key: string) => {
        const v = root()[host]?.[key];
        return (v === undefined ? undefined : structuredClone(v)) as T | undefined;
      },
      set: (key, value) => {
        if (state && store) {
          void store.remember(state, host, key, value); // a write failure fails the step's "done"
          return;
        }
        const v = toJson(value, `the value remembered as "${key}" on ${host}`);
        const m = (root()[host] ??= {});
        if (v === undefined) delete m[key];
        else m[key] = v;
      },
    };
  }

  /**
   * Undo, in reverse order, the steps of this phase that ran on HOST (including the failed one).
   * When every undo succeeded the host is back where the phase found it, and the state says so:
   * the host's whole sequence for this phase is pending again, gates included — a resume runs it
   * from the first gate (a "start" left marked done would otherwise never run again, and a
   * resume would stop a healthy replica and wait for it forever).
   */
  private async rollback(phase: Phase, pi: number, failed: Step, host: Host, stateHost: string): Promise<void> {
    const idx = phase.steps.indexOf(failed);
    const handle = this.session.handle(host);
    for (let i = idx; i >= 0; i--) {
      const step = phase.steps[i];
      if (!step.rollback) continue;
      const st = this.o.state ? getStep(this.o.state, pi, step.name, stateHost)?.status : i === idx ? 'failed' : 'done';
      if (i !== idx && st !== 'done') continue;
      this.o.output.note(host.name, step.name, `rolling back "${step.name}"`);
      try {
        handle.facts.close();
        await step.rollback({ host: handle, params: this.o.params, run: this.ctx, memory: this.memoryOf(host.name) });
        await this.mark(pi, step.name, stateHost, i === idx ? { note: 'rolled back after failure' } : { status: 'rolled-back' });
        this.o.output.event({ type: 'rollback', host: host.name, phase: phase.name, step: step.name, ok: true });
      } catch (err) {
        this.o.output.event({ type: 'rollback', host: host.name, phase: phase.name, step: step.name, ok: false, error: errorText(err) });
        this.o.output.note(host.name, step.name, `ROLLBACK FAILED: ${errorText(err)} — the host needs manual attention`);
        return;
      }
    }
    if (!phase.steps.slice(0, idx + 1).some((s) => s.rollback)) return; // nothing was undone: the state stays as it happened
    // The failed step stays "failed" (chops runs shows where the run failed); every other step
    // of the host in this phase is pending again.
    for (const s of phase.steps) if (s !== failed) await this.mark(pi, s.name, stateHost, { status: 'pending', note: undefined, changed: undefined });
  }

  /** Record a step transition (a journal line); the returned promise resolves once it is on disk. */
  private mark(pi: number, step: string, host: string, patch: Parameters<RunStore['mark']>[4]): Promise<void> {
    const { state, store } = this.o;
    if (!state || !store) return Promise.resolve();
    return store.mark(state, pi, step, host, patch);
  }
}

/** StepResult.data as it is kept in the step's state: JSON, or why it could not be kept. */
function stepData(data: unknown, step: string, host: string): unknown {
  try {
    return toJson(data, `the data of step "${step}" on ${host}`);
  } catch (err) {
    // The step did its work; data that JSON cannot hold must not turn that into a failure.
    return { unserializable: (err as Error).message };
  }
}

function describeScope(p: Phase): string {
  return p.scope === 'rolling' ? 'rolling: shards in parallel, one replica at a time' : p.scope === 'each' ? 'each host in parallel' : 'once';
}

function phaseListOptions(phase: Phase, o: ExecuteOptions): Record<string, unknown> {
  if (phase.scope === 'each') return { concurrent: o.parallelHosts, exitOnError: false };
  if (phase.scope === 'rolling') return { concurrent: o.parallelShards, exitOnError: false };
  return { concurrent: false, exitOnError: true };
}

export { groupByShard } from '../inventory/topology.js';

export { errorText } from '../errors.js';
