// Operations on a run's step tree (in memory; the store persists them).
import type { PhaseState, RunState, RunSummary, StepScope, StepState, StepStatus } from './model.js';
import { ONCE_HOST } from './model.js';

/** Build the empty step tree of a plan: every step pending on every host ("*" for once-scoped phases). */
export function buildSteps(phases: Array<{ phase: string; scope: StepScope; steps: string[]; hosts: string[] }>): PhaseState[] {
  return phases.map((ph) => {
    const hosts = ph.scope === 'once' ? [ONCE_HOST] : ph.hosts;
    return {
      phase: ph.phase,
      scope: ph.scope,
      steps: ph.steps.map((name) => ({
        name,
        hosts: Object.fromEntries(hosts.map((h) => [h, { status: 'pending' as StepStatus }])),
      })),
    };
  });
}

/** The state of one step on one host (undefined when the plan does not have it). */
export function getStep(state: RunState, phaseIdx: number, stepName: string, host: string): StepState | undefined {
  return state.steps[phaseIdx]?.steps.find((s) => s.name === stepName)?.hosts[host];
}

const FINAL: ReadonlySet<StepStatus> = new Set(['done', 'failed', 'skipped', 'rolled-back']);

/**
 * Where a step's state lives: the phase's step entry and the host key under which it is kept
 * (a once-scoped phase keeps any host's entry under "*"). Unknown phase or step: a programming
 * error, thrown.
 */
export function locateStep(state: RunState, phaseIdx: number, stepName: string, host: string): { step: PhaseState['steps'][number]; host: string } {
  const phase = state.steps[phaseIdx];
  if (!phase) throw new Error(`run ${state.id}: no phase #${phaseIdx} (the plan has ${state.steps.length})`);
  const step = phase.steps.find((s) => s.name === stepName);
  if (!step) {
    throw new Error(`run ${state.id}: phase "${phase.phase}" has no step "${stepName}" (steps: ${phase.steps.map((s) => s.name).join(', ')})`);
  }
  if (phase.scope === 'once' && host !== ONCE_HOST && !(host in step.hosts)) host = ONCE_HOST;
  return { step, host };
}

/**
 * Update one step on one host in memory (`store.mark()` does this and records it).
 * - status 'started' stamps startedAt (unless given) and clears the previous attempt's finish,
 *   duration, error and data (a resumed run re-runs it);
 * - a final status (done/failed/skipped/rolled-back) stamps finishedAt and, when started,
 *   durationMs (unless given);
 * - `undefined` in the patch deletes that field.
 * The host entry is created when missing (a host added by `--limit` widening); an unknown phase
 * index or step name is a programming error and throws.
 */
export function markStep(state: RunState, phaseIdx: number, stepName: string, host: string, patch: Partial<StepState>, now: Date = new Date()): StepState {
  const at = locateStep(state, phaseIdx, stepName, host);
  const cur: StepState = at.step.hosts[at.host] ?? { status: 'pending' };
  const iso = now.toISOString();
  if (patch.status === 'started') {
    delete cur.finishedAt;
    delete cur.durationMs;
    delete cur.error;
    delete cur.data;
    if (patch.startedAt === undefined) cur.startedAt = iso;
  }
  for (const [k, v] of Object.entries(patch) as Array<[keyof StepState, unknown]>) {
    if (v === undefined) delete cur[k];
    else (cur as unknown as Record<string, unknown>)[k] = v;
  }
  if (patch.status && FINAL.has(patch.status)) {
    if (!('finishedAt' in patch)) cur.finishedAt = iso;
    if (!('durationMs' in patch) && cur.startedAt && cur.finishedAt) {
      const d = Date.parse(cur.finishedAt) - Date.parse(cur.startedAt);
      if (Number.isFinite(d) && d >= 0) cur.durationMs = d;
    }
  }
  at.step.hosts[at.host] = cur;
  return cur;
}

/** First step/host whose status is 'failed', in plan order. */
export function firstFailure(state: RunState): RunSummary['failed'] {
  for (const ph of state.steps) {
    for (const st of ph.steps) {
      for (const [host, s] of Object.entries(st.hosts)) {
        if (s.status === 'failed') return { phase: ph.phase, step: st.name, host, error: s.error };
      }
    }
  }
  return undefined;
}
