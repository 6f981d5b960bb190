// The listr2 task tree of a run: phases in order; inside a phase its scope's order (once: the
// first selected host; each: hosts in parallel; rolling: shards in parallel, a shard's replicas
// one after another); inside a host its steps in order, each skipped as the resume policy says.
// listr2 orchestrates (order, concurrency, skips) and never draws: the renderer is silent.
import type { ListrSilentRenderer, ListrSubClassOptions, ListrTask, ListrTaskWrapper } from 'listr2';
import type { Host } from '../inventory/types.js';
import { groupByShard } from '../inventory/topology.js';
import { ONCE_HOST } from '../run/state/model.js';
import { replicaInProgress, resumeDecision } from '../run/state/resume-policy.js';
import { type Phase, phaseHosts } from './playbook.js';
import type { ExecuteOptions } from './run-types.js';
import type { Session } from './session.js';
import type { StepExecutor } from './step-exec.js';

/** listr2's context is not used: what a run learns lives in the runner and the run state. */
export type ListrCtx = Record<string, never>;
export type RunTask = ListrTask<ListrCtx, ListrSilentRenderer, ListrSilentRenderer>;
export type RunTaskWrapper = ListrTaskWrapper<ListrCtx, ListrSilentRenderer, ListrSilentRenderer>;
type SubListOptions = ListrSubClassOptions<ListrCtx, ListrSilentRenderer, ListrSilentRenderer>;

export interface TreeDeps {
  o: ExecuteOptions;
  session: Session;
  steps: StepExecutor;
  /** Aborted when the run stops (first failure, or a signal). */
  signal: AbortSignal;
}

const STOPPED = 'stopped: the run is stopping';
const inOrder: SubListOptions = { concurrent: false, exitOnError: true };

/** The top level: one task per phase, in order; a phase is skipped once the run is stopping. */
export function phaseTasks(phases: Phase[], d: TreeDeps): RunTask[] {
  return phases.map((phase, pi) => ({
    title: `${phase.name} (${describeScope(phase)})`,
    skip: () => (d.signal.aborted ? STOPPED : false),
    task: (_, t) => t.newListr(scopeTasks(phase, pi, d), phaseListOptions(phase, d.o)),
  }));
}

export function describeScope(p: Phase): string {
  return p.scope === 'rolling' ? 'rolling: shards in parallel, one replica at a time' : p.scope === 'each' ? 'each host in parallel' : 'once';
}

function phaseListOptions(phase: Phase, o: ExecuteOptions): SubListOptions {
  if (phase.scope === 'each') return { concurrent: o.parallelHosts, exitOnError: false };
  if (phase.scope === 'rolling') return { concurrent: o.parallelShards, exitOnError: false };
  return inOrder;
}

function scopeTasks(phase: Phase, pi: number, d: TreeDeps): RunTask[] {
  // Phase.hosts narrows the selection (a canary phase and the phase of the others after it);
  // a 'once' phase always runs on the first selected host.
  const sel = phaseHosts(phase, d.o.selected);
  if (phase.scope === 'once') {
    const host = d.o.selected[0];
    return [{ title: `${host.name}`, task: (_, t) => t.newListr(stepTasks(phase, pi, host, ONCE_HOST, d), inOrder) }];
  }
  if (phase.scope === 'each') {
    return sel.map((host) => ({ title: host.name, task: (_, t) => t.newListr(stepTasks(phase, pi, host, host.name, d), inOrder) }));
  }
  return rollingTasks(phase, pi, sel, d);
}

/** Rolling: one task per shard; replicas strictly one after the other inside it. */
function rollingTasks(phase: Phase, pi: number, sel: Host[], d: TreeDeps): RunTask[] {
  return groupByShard(sel).map((replicas) => ({
    title: `shard ${replicas[0].cluster}/${replicas[0].shardName}`,
    task: (_, t) =>
      t.newListr(
        replicas.map((host) => ({
          title: host.name,
          skip: () => (d.signal.aborted && !inProgress(pi, phase, host, d) ? STOPPED : false),
          task: (_, rt) => rt.newListr(stepTasks(phase, pi, host, host.name, d), inOrder),
        })),
        inOrder,
      ),
  }));
}

/** A replica whose work has begun must be finished (or rolled back), never abandoned (resume-policy.ts). */
function inProgress(pi: number, phase: Phase, host: Host, d: TreeDeps): boolean {
  return replicaInProgress(d.o.state, pi, phase.steps, host.name);
}

function stepTasks(phase: Phase, pi: number, host: Host, stateHost: string, d: TreeDeps): RunTask[] {
  return phase.steps.map((step, si) => ({
    title: step.name,
    // A step's skip is told to the display too (a resumed run's done steps count as finished there).
    skip: async () => {
      const why = await stepSkip(phase, pi, si, host, stateHost, d);
      if (why) d.o.output.stepSkipped(host.name, phase.name, step.name, why);
      return why;
    },
    // No listr title or output is set: its renderer is silent, and each change would be an event
    // through listr2 (and a redaction) per step per host for nobody.
    task: async () => {
      const handle = d.session.handle(host);
      handle.onNote = (text) => d.o.output.note(host.name, step.name, text);
      try {
        await d.steps.runStep(phase, pi, step, host, stateHost);
      } finally {
        handle.onNote = undefined;
      }
    },
  }));
}

async function stepSkip(phase: Phase, pi: number, si: number, host: Host, stateHost: string, d: TreeDeps): Promise<string | false> {
  // What the state says a resume does with this step (src/run/state/resume-policy.ts); the
  // replica's serving state is a fact read now, in this process.
  const r = resumeDecision(d.o.state, pi, phase.steps, si, stateHost);
  if (r.kind === 'recheck') return false;
  if (r.kind === 'recheck-if-serving') return (await d.steps.servingNow(phase, host)) ? false : r.reason;
  if (r.kind === 'skip') return r.reason;
  // In a rolling phase a replica that has started its steps finishes them; elsewhere stop at once.
  if (d.signal.aborted && !(phase.scope === 'rolling' && inProgress(pi, phase, host, d))) return STOPPED;
  return false;
}
