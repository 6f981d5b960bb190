// What a resume may pick up and what it re-runs. The rules, as they stand:
// - a succeeded run is finished; failed, interrupted and crashed ones can be resumed, unless
//   their process still lives, or the inventory or parameters changed;
// - a step done (or skipped) is not run again, except a gate: while its guarded work (a later
//   changing step of the same host and phase) has not begun its verdict is stale, check again;
//   once it has begun and is not finished, check again if the replica is still serving (the runner
//   asks the phase); once the guarded work is done, the gate is not run again;
// - a replica whose work has begun is in progress and must be finished even when the run stops.
import { UsageError } from '../../errors.js';
import { controllerName, pidAlive } from '../proc.js';
import { canonicalJson, paramsHash } from './ids.js';
import type { RunState } from './model.js';
import { getStep } from './steps.js';

/** What the policy needs to know of a playbook step. */
export interface PolicyStep {
  name: string;
  /** A read-only check whose verdict goes stale. */
  gate?: boolean;
}

/** Succeeded runs are finished; failed, interrupted and (crashed) running ones can be resumed. */
export function isFinished(state: Pick<RunState, 'outcome'>): boolean {
  return state.outcome === 'succeeded';
}

/** outcome is 'running' and the recorded process is alive on this controller (not ours). */
export function isActiveElsewhere(state: Pick<RunState, 'outcome' | 'controller' | 'pid' | 'updatedAt'>): boolean {
  return (
    state.outcome === 'running' &&
    state.controller === controllerName() &&
    state.pid !== process.pid &&
    pidAlive(state.pid, { notStartedAfter: state.updatedAt })
  );
}

/**
 * Refuse to resume a run that must not be resumed: already succeeded, still running, or started
 * with a different inventory file content or different parameters. Pass `params` (not only the
 * hash) to get the names of the changed parameters in the message.
 */
export function assertResumable(state: RunState, current: { inventoryHash: string; paramsHash?: string; params?: Record<string, unknown> }): void {
  if (state.outcome === 'succeeded') {
    throw new UsageError(`run ${state.id} (${state.playbook}) already succeeded; there is nothing to resume`, {
      hint: 'start a new run with `chops run`',
    });
  }
  if (isActiveElsewhere(state)) {
    throw new UsageError(`run ${state.id} is still running (pid ${state.pid} on ${state.controller}, last update ${state.updatedAt})`, {
      hint: `wait for it to finish, or stop that process (kill ${state.pid}) before resuming`,
    });
  }
  const changed: string[] = [];
  if (current.inventoryHash !== state.inventoryHash) {
    changed.push(`the inventory ${state.inventory} changed since the run started`);
  }
  const newHash = current.paramsHash ?? (current.params ? paramsHash(current.params) : undefined);
  if (newHash !== undefined && newHash !== state.paramsHash) {
    const keys = current.params ? diffKeys(state.params ?? {}, current.params) : [];
    changed.push(keys.length ? `parameters differ from the original run: ${keys.join(', ')}` : 'parameters differ from the original run');
  }
  if (changed.length) {
    throw new UsageError(`cannot resume run ${state.id} (${state.playbook}): ${changed.join('; ')}`, {
      hint: 'resume with the same inventory and re-run with the original parameters, or start a new run with `chops run`',
    });
  }
}

function diffKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k])).sort();
}

/** Mark a loaded state as taken over by this process before resuming it (pid, controller, outcome). */
export function reopenForResume(state: RunState): RunState {
  state.pid = process.pid;
  state.controller = controllerName();
  state.outcome = 'running';
  delete state.error;
  return state;
}

/** What a resume does with one step of one host, as far as the run state tells. */
export type ResumeDecision =
  /** Not done yet (or never run): run it, unless the run is stopping. */
  | { kind: 'not-done' }
  /** A gate passed before the interruption whose work has not begun: its verdict is stale, check again. */
  | { kind: 'recheck' }
  /**
   * A gate passed before the interruption whose work had begun: check again if the replica is
   * still serving (nothing is taken down on the strength of a gate that passed before a crash),
   * else skip it and continue with the step that brings the replica back.
   */
  | { kind: 'recheck-if-serving'; reason: string }
  /** Done or skipped before: not repeated. */
  | { kind: 'skip'; reason: string };

/** The decision for step SI of phase PI on HOST (the state's host key); a fresh run (no state) runs everything. */
export function resumeDecision(state: RunState | undefined, pi: number, steps: readonly PolicyStep[], si: number, host: string): ResumeDecision {
  if (!state) return { kind: 'not-done' };
  const prev = getStep(state, pi, steps[si].name, host);
  if (prev?.status !== 'done' && prev?.status !== 'skipped') return { kind: 'not-done' };
  const reason = `already ${prev.status} (resumed run)`;
  if (!steps[si].gate) return { kind: 'skip', reason };
  if (!workBegunAfter(state, pi, steps, si, host)) return { kind: 'recheck' };
  // The work it guards (the first changing step after it, e.g. the stop) is done: nothing left to protect.
  return guardedWorkDone(state, pi, steps, si, host) ? { kind: 'skip', reason } : { kind: 'recheck-if-serving', reason };
}

/** Is the first step after gate SI that changes the host (the work the gate guards) done? */
export function guardedWorkDone(state: RunState, pi: number, steps: readonly PolicyStep[], si: number, host: string): boolean {
  const work = steps.slice(si + 1).find((s) => !s.gate);
  return !work || getStep(state, pi, work.name, host)?.status === 'done';
}

/** Has a step after SI that changes the host (not a gate) begun, so the gate at SI must not be re-run? */
export function workBegunAfter(state: RunState | undefined, pi: number, steps: readonly PolicyStep[], si: number, host: string): boolean {
  if (!state) return false;
  return steps.slice(si + 1).some((s) => {
    if (s.gate) return false;
    const status = getStep(state, pi, s.name, host)?.status;
    return status === 'started' || status === 'done';
  });
}

/**
 * A replica whose work has begun (a step that changes it has started) must be finished (or
 * rolled back), never abandoned. Passing read-only gates does not count: such a replica stops.
 */
export function replicaInProgress(state: RunState | undefined, pi: number, steps: readonly PolicyStep[], host: string): boolean {
  if (!state) return false;
  const status = (s: PolicyStep) => getStep(state, pi, s.name, host)?.status ?? 'pending';
  const begun = steps.some((s) => !s.gate && (status(s) === 'started' || status(s) === 'done'));
  const finished = steps.every((s) => status(s) === 'done' || status(s) === 'skipped');
  return begun && !finished;
}
