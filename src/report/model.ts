// What a report shows, computed from a run's state file and run log (pure: no I/O). One lane
// per host (the once-scoped steps get a lane of their own), each step with its times, outcome,
// note, data and the records (notes, progress, events) that named it; each replica's downtime
// from the step marked `downtime: 'starts'` to the end of the one marked `downtime: 'ends'`.
import { ONCE_HOST, type RunState, type StepStatus } from '../run/state.js';
import type { LoggedCommand, LoggedRecord, ParsedLog } from './runlog-read.js';

/** What the playbook's definition says about a step (when the playbook could be loaded). */
export interface StepMeta {
  gate?: boolean;
  destructive?: boolean;
  waitsFor?: string;
  downtime?: 'starts' | 'ends';
  description?: string;
}

export interface StepBar {
  phase: string;
  phaseIndex: number;
  name: string;
  status: StepStatus;
  start?: number;
  end?: number;
  durationMs?: number;
  changed?: boolean;
  note?: string;
  error?: string;
  meta: StepMeta;
  /** The step's structured result (from the state file). */
  data?: unknown;
  /** When its rollback ran (status rolled-back). */
  rolledBackAt?: number;
  /** Records naming this host and step: results (data), notes, progress, rollbacks, warnings. */
  records: LoggedRecord[];
  commands: number;
  /** The last failing command of this step, for a failed step. */
  failedCommand?: LoggedCommand;
}

export interface Downtime {
  from: number;
  to: number;
  /** 'healthy': the end step passed; 'rolled back': its rollback restarted it; 'open': never confirmed. */
  until: 'healthy' | 'rolled back' | 'open';
}

export interface Lane {
  host: string;
  label: string;
  steps: StepBar[];
  downtime: Downtime[];
}

export interface ReportModel {
  state: RunState;
  t0: number;
  t1: number;
  lanes: Lane[];
  /** Records that name no step (run start/end, warnings about the run, …). */
  runRecords: LoggedRecord[];
  /** Steps of the plan that never started, per host. */
  pending: number;
  metaKnown: boolean;
  /** The run's parameters that are durations (kept in ms), from the playbook's definition, to show them as typed. */
  durationParams?: string[];
}

export function buildModel(state: RunState, log: ParsedLog, meta?: (phaseIndex: number, step: string) => StepMeta | undefined): ReportModel {
  const onceSteps = new Set(state.steps.flatMap((ph) => (ph.scope === 'once' ? ph.steps.map((s) => s.name) : [])));
  const laneKey = (host: string | undefined, step: string | undefined) => (step && onceSteps.has(step) && !hostHasStep(state, host, step) ? ONCE_HOST : host);
  const lanes = new Map<string, Lane>();
  const lane = (host: string) => {
    if (!lanes.has(host)) lanes.set(host, { host, label: host, steps: [], downtime: [] });
    return lanes.get(host)!;
  };
  let pending = 0;
  state.steps.forEach((ph, pi) => {
    for (const st of ph.steps) {
      for (const [host, s] of Object.entries(st.hosts)) {
        if (!s.startedAt) {
          pending++;
          continue;
        }
        lane(host).steps.push({
          phase: ph.phase,
          phaseIndex: pi,
          name: st.name,
          status: s.status,
          start: ms(s.startedAt),
          end: ms(s.finishedAt),
          durationMs: s.durationMs,
          changed: s.changed,
          note: s.note,
          error: s.error,
          data: s.data,
          meta: meta?.(pi, st.name) ?? {},
          records: [],
          commands: 0,
        });
      }
    }
  });
  for (const l of lanes.values()) l.steps.sort((a, b) => a.phaseIndex - b.phaseIndex || (a.start ?? 0) - (b.start ?? 0));

  // After a rollback the runner sets the replica's other steps back to pending (a resume starts
  // it over from its first gate): how they ended, and which were undone, is in the run log.
  const recordOf = (type: string, host: string, s: StepBar) =>
    log.records.filter((r) => r.type === type && r.step === s.name && laneKey(r.host, r.step) === host && r.at >= (s.start ?? 0) - 1000).pop();
  for (const [host, l] of lanes) {
    for (const s of l.steps) {
      const undone = recordOf('rollback', host, s);
      if (s.status === 'pending') {
        const done = recordOf('step-done', host, s);
        if (done) {
          s.status = 'done';
          s.changed = done.changed as boolean | undefined;
          s.note ??= (done.skipped ?? done.note) as string | undefined;
        } else s.status = s.end !== undefined ? 'done' : 'started'; // a log without outcomes: what the times say
      }
      if (undone && undone.ok === true && s.status !== 'failed') {
        s.status = 'rolled-back';
        s.end = undone.at;
      }
    }
  }

  // A rolled-back step's finish time is when its rollback ran; the step itself ended when the
  // next step of the host began.
  for (const l of lanes.values()) {
    l.steps.forEach((s, i) => {
      if (s.status !== 'rolled-back') return;
      s.rolledBackAt = s.end;
      const next = l.steps.slice(i + 1).find((n) => n.phaseIndex === s.phaseIndex && n.start !== undefined);
      s.end = next?.start ?? s.end;
      s.durationMs = s.end !== undefined && s.start !== undefined ? s.end - s.start : s.durationMs;
    });
  }

  const find = (host: string | undefined, step: string | undefined, at: number) => {
    if (host && !step) return runningAt(host, at);
    const key = laneKey(host, step);
    const l = key ? lanes.get(key) : undefined;
    if (!l || !step) return undefined;
    const cands = l.steps.filter((s) => s.name === step);
    // The attempt that was running at AT (a resumed run may have run a step twice).
    return cands.find((s) => s.start !== undefined && at >= s.start - 1000 && (s.end === undefined || at <= s.end + 60_000)) ?? cands[cands.length - 1];
  };
  // An event that names a host but no step (a gate's verdict) belongs to the step running there then.
  const runningAt = (host: string, at: number) =>
    [...(lanes.get(host)?.steps ?? []), ...(lanes.get(ONCE_HOST)?.steps ?? [])].find(
      (s) => s.start !== undefined && at >= s.start && at <= (s.end ?? Infinity),
    );
  const runRecords: LoggedRecord[] = [];
  for (const r of log.records) {
    const bar = find(r.host, r.step, r.at);
    if (bar) bar.records.push(r);
    else runRecords.push(r);
  }
  for (const c of log.commands) {
    const bar = find(c.host, c.step, c.at);
    if (!bar) continue;
    bar.commands++;
    if (bar.status === 'failed' && c.code !== 0) bar.failedCommand = c;
    if (laneKey(c.host, c.step) === ONCE_HOST) lanes.get(ONCE_HOST)!.label = `once (on ${c.host})`;
  }
  if (lanes.has(ONCE_HOST) && lanes.get(ONCE_HOST)!.label === ONCE_HOST) lanes.get(ONCE_HOST)!.label = 'once';

  for (const l of lanes.values()) l.downtime = downtimeOf(l.steps, state);

  const times = [...lanes.values()].flatMap((l) => l.steps.flatMap((s) => [s.start, s.end, s.rolledBackAt])).filter((t): t is number => t !== undefined);
  const t0 = Math.min(ms(state.createdAt) ?? Infinity, ...times);
  const t1 = Math.max(ms(state.updatedAt) ?? -Infinity, ...times);
  // The once lane first, then hosts in the order the state lists them (inventory order).
  const order = [ONCE_HOST, ...Object.keys(state.steps.find((p) => p.scope !== 'once')?.steps[0]?.hosts ?? {})];
  const sorted = [...lanes.values()].sort((a, b) => rank(order, a.host) - rank(order, b.host));
  return { state, t0, t1, lanes: sorted, runRecords, pending, metaKnown: !!meta };
}

function downtimeOf(steps: StepBar[], state: RunState): Downtime[] {
  const out: Downtime[] = [];
  let open: { from: number; phase: number } | undefined;
  const runEnd = ms(state.updatedAt) ?? Date.now();
  for (const s of steps) {
    if (s.meta.downtime === 'starts' && s.start !== undefined && !open) open = { from: s.start, phase: s.phaseIndex };
    if (!open || s.phaseIndex !== open.phase) continue;
    if (s.status === 'rolled-back' && s.meta.downtime === 'starts' && s.rolledBackAt !== undefined) {
      out.push({ from: open.from, to: s.rolledBackAt, until: 'rolled back' });
      open = undefined;
    } else if (s.meta.downtime === 'ends' && s.status === 'done' && s.end !== undefined) {
      out.push({ from: open.from, to: s.end, until: 'healthy' });
      open = undefined;
    }
  }
  if (open) {
    // No "ends" step passed: down until the last thing that happened in its phase, or the run's end.
    const last = steps
      .filter((s) => s.phaseIndex === open!.phase)
      .flatMap((s) => [s.end, s.rolledBackAt])
      .filter((t): t is number => t !== undefined);
    out.push({ from: open.from, to: last.length ? Math.max(...last) : runEnd, until: 'open' });
  }
  return out;
}

function hostHasStep(state: RunState, host: string | undefined, step: string): boolean {
  if (!host) return false;
  return state.steps.some((ph) => ph.scope !== 'once' && ph.steps.some((s) => s.name === step && host in s.hosts));
}

function rank(order: string[], host: string): number {
  const i = order.indexOf(host);
  return i < 0 ? order.length : i;
}

function ms(iso: string | undefined): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : undefined;
}
