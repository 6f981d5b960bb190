// One step on one host: its state marks (on disk before and after it runs), what it returns
// (restated as "would make N changes" in a plan), what it remembers, and the rollback of its
// host's earlier steps when it fails. The order steps run in is src/engine/listr-tree.ts's.
import type { Host } from '../inventory/types.js';
import type { HostMemory, Phase, RunContext, Step, StepContext, StepResult } from './playbook.js';
import type { Session } from './session.js';
import type { ExecuteOptions, ExecuteResult, FailureInfo } from './run-types.js';
import { errorText } from '../errors.js';
import type { RunMemory } from '../run/state/model.js';
import { getStep } from '../run/state/steps.js';
import type { RunStore } from '../run/state/store.js';
import { toJson } from '../run/state/json.js';

export class StepExecutor {
  /** The run's first failure, with its context. */
  failure?: FailureInfo;
  readonly results: ExecuteResult['results'] = [];
  readonly outcomes: ExecuteResult['outcomes'] = [];
  /** Host memory when there is no state file (plan mode, engine tests). */
  private planMemory: RunMemory = {};

  constructor(
    private readonly o: ExecuteOptions,
    private readonly session: Session,
    private readonly ctx: RunContext,
    /** Which step each host is running now (Runner.currentStep, for the run log). */
    private readonly currentStep: Map<string, string>,
    /** Stop starting new work (the run's first failure). */
    private readonly stop: (reason: string) => void,
  ) {}

  private contextOf(host: Host): StepContext {
    return { host: this.session.handle(host), params: this.o.params, run: this.ctx, memory: this.memoryOf(host.name) };
  }

  async runStep(phase: Phase, pi: number, step: Step, host: Host, stateHost: string): Promise<void> {
    const o = this.o;
    const handle = this.session.handle(host);
    const sctx = this.contextOf(host);
    this.currentStep.set(host.name, step.name);
    handle.facts.open(); // facts are read afresh by each step, then cached until it changes something
    // A step the previous process had begun and never finished (killed mid-step): its commands
    // may have run on the host. The step reads the host again and says what it found; the note
    // tells the operator that what it found may be the dead process's work.
    const interrupted = o.state && getStep(o.state, pi, step.name, stateHost)?.status === 'started';
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
    const r = withInterrupted(o.plan ? this.planned(host.name, step.name, res ?? {}) : (res ?? {}), interrupted);
    // Awaited: "done" (with the step's data and the host's memory) must be on disk before the
    // next step starts, so a crash never repeats it and a resumed run knows what it learned.
    const data = r.data === undefined || !o.state ? {} : { data: stepData(r.data, step.name, host.name) };
    if (r.skipped) {
      await this.mark(pi, step.name, stateHost, { status: 'done', changed: false, note: r.skipped, ...data });
    } else {
      await this.mark(pi, step.name, stateHost, { status: 'done', changed: r.changed ?? true, note: r.note, ...data });
    }
    this.outcomes.push({ host: host.name, phase: phase.name, step: step.name, note: r.note, skipped: r.skipped });
    if (r.data !== undefined) {
      this.results.push({ host: host.name, phase: phase.name, step: step.name, data: r.data });
    }
    o.output.stepDone(host.name, phase.name, step.name, ms, r);
  }

  /** Is the replica serving now (resume decisions)? Unknown counts as serving: gates run again. */
  async servingNow(phase: Phase, host: Host): Promise<boolean> {
    if (phase.scope !== 'rolling') return true;
    if (!phase.replicaServing) return true;
    try {
      return await phase.replicaServing(this.contextOf(host));
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
        await step.rollback(this.contextOf(host));
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

const INTERRUPTED = 'the interrupted run had begun this step';

/** A result whose step the previous process had begun: its note says so (see runStep). */
function withInterrupted(r: Exclude<StepResult, void>, interrupted: boolean | undefined): Exclude<StepResult, void> {
  if (!interrupted) return r;
  if (r.skipped) return { ...r, skipped: `${r.skipped}; ${INTERRUPTED}` };
  return { ...r, note: r.note ? `${r.note}; ${INTERRUPTED}` : INTERRUPTED };
}
