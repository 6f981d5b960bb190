// One run of a playbook, from lock to log pruning: the application layer that `chops run` and
// `chops resume` (and anything else that runs a playbook for real) share. The command layer only
// parses flags, confirms, and renders what this returns.
//
//   lock (per cluster) → run log → runner (phases, state file) → outcome on disk → prune old logs
import { hostname } from 'node:os';
import { rm } from 'node:fs/promises';
import type { Host, Inventory } from '../inventory/types.js';
import type { Phase, Playbook } from './playbook.js';
import type { Session } from './session.js';
import { Runner, errorText, type ExecuteResult } from './runner.js';
import type { Output } from './output.js';
import type { RunState } from '../run/state/model.js';
import type { RunStore } from '../run/state/store.js';
import type { RunEvent } from './events.js';
import { acquireLock, type RunLock } from '../run/lock.js';
import { RunLog, pruneLogs } from '../run/runlog.js';
import type { Redactor } from '../run/redact.js';
import { formatDuration } from '../format.js';

export interface RunRequest {
  playbook: Playbook;
  params: Record<string, unknown>;
  inventory: Inventory;
  selected: Host[];
  phases: Phase[];
  output: Output;
  parallelShards: number;
  parallelHosts: number;
  store: RunStore;
  state: RunState;
  /** A resumed run: a stale lock of the same run may be reclaimed, and state is never removed. */
  resuming: boolean;
  redactor: Redactor;
  /** Aborted: start nothing new; replicas in progress finish their steps (first Ctrl-C). */
  stop?: AbortSignal;
  /** Aborted: save the state and give up at once (second Ctrl-C); executeRun resolves with 'aborted'. */
  abort?: AbortSignal;
  /** The run's connections, already being opened while its state was created (run.ts). */
  session?: Session;
}

export interface RunReport {
  outcome: 'succeeded' | 'failed' | 'interrupted' | 'aborted';
  result?: ExecuteResult;
  state: RunState;
  durationMs: number;
  logPath: string;
  /** What stopped the run, when a signal did. */
  stoppedBy?: string;
}

export async function executeRun(req: RunRequest): Promise<RunReport> {
  const { store, state, inventory, playbook } = req;
  const locks: RunLock[] = [];
  let log: RunLog | undefined;
  // Every event, note and step outcome also goes to the run log, for `chops report` (step data is in the state).
  const output = recordingOutput(req.output, (ev) => log?.logRecord(ev));
  const logPath = store.logPath(state.id);
  // Connections open in the background while the lock, the log and the renderer are set up.
  const runner: Runner = new Runner({
    playbook,
    params: req.params,
    inventory,
    selected: req.selected,
    output,
    phases: req.phases,
    parallelShards: req.parallelShards,
    parallelHosts: req.parallelHosts,
    plan: false,
    state,
    store,
    session: req.session,
    onCommand: (ev) =>
      log?.logCommand({
        host: ev.host,
        step: runner.currentStep.get(ev.host),
        kind: ev.kind,
        command: ev.result.command,
        code: ev.result.code,
        durationMs: ev.result.durationMs,
        stdout: ev.result.stdout,
        stderr: ev.result.stderr,
      }),
  });
  runner.preconnect();
  const reason = (s?: AbortSignal) => String((s?.reason as Error)?.message ?? s?.reason ?? 'a signal');
  const onStop = () => runner.stop(reason(req.stop));
  req.stop?.addEventListener('abort', onStop, { once: true });
  let aborted: Promise<RunReport> | undefined;
  let resolveAbort!: (r: Promise<RunReport>) => void;
  const abortNow = new Promise<RunReport>((resolve) => (resolveAbort = resolve));
  const onAbort = () => {
    state.outcome = 'interrupted';
    state.error = `interrupted by ${reason(req.abort)}`;
    aborted = store
      .save(state)
      .then(() => store.flush())
      .finally(() => {
        for (const l of locks) l.releaseSync();
      })
      .then(() => ({ outcome: 'aborted' as const, state, durationMs: 0, logPath, stoppedBy: reason(req.abort) }));
    resolveAbort(aborted);
  };
  req.abort?.addEventListener('abort', onAbort, { once: true });
  // A hard abort counts only while the runner works: once it is done, a second Ctrl-C during the
  // final save must neither rewrite the outcome nor skip the cleanup below (connections left
  // open would keep the process alive).
  const endAbortWindow = () => req.abort?.removeEventListener('abort', onAbort);
  try {
    try {
      for (const cluster of new Set(req.selected.map((h) => h.cluster))) {
        locks.push(await acquireLock(inventory.stateDir, cluster, { runId: state.id, reclaimStale: req.resuming }));
      }
      // Every host the run touches, and every peer its gates read, answers before anything changes.
      await runner.verifyHosts();
      // Opened before anything changes: a run log that cannot be created (EMFILE, a full disk,
      // a file left unwritable) refuses the run here, with the cleanup below.
      log = await RunLog.open(logPath, { redactor: req.redactor });
    } catch (err) {
      // Nothing ran: a new run that could not start leaves no state behind (it would otherwise
      // look like a crashed run and be picked by `chops resume`).
      if (!req.resuming) await rm(store.runDir(state.id), { recursive: true, force: true });
      await runner.close();
      throw err;
    }
    log.logEvent(`${req.resuming ? 'resume' : 'run'} ${state.id} playbook=${playbook.name} by pid ${process.pid} on ${hostname()} inventory=${inventory.path}`);
    output.event({
      type: 'run-start',
      runId: state.id,
      playbook: playbook.name,
      params: req.params,
      hosts: req.selected.map((h) => h.name),
      resumed: req.resuming,
    });
    if (output.mode === 'plain') output.text(`run ${state.id}: ${playbook.name} on ${req.selected.length} host(s); log: ${logPath}`);
    const t0 = performance.now();
    const raced = await Promise.race([runner.execute({ keepOpen: true }), abortNow]);
    if ('outcome' in raced) return raced; // hard abort: the state says "interrupted"; resume redoes what was running
    endAbortWindow();
    const res = raced;
    const stoppedBy = req.stop?.aborted ? reason(req.stop) : undefined;
    const outcome = res.ok ? 'succeeded' : res.error ? 'failed' : 'interrupted';
    state.outcome = outcome;
    if (res.error) state.error = `${res.error.host}: ${res.error.step}: ${errorText(res.error.error)}`;
    else if (stoppedBy) state.error = `interrupted by ${stoppedBy}`;
    await store.save(state);
    await store.flush();
    const ms = performance.now() - t0;
    log.logEvent(`outcome ${state.outcome} after ${formatDuration(ms)}`);
    output.event({ type: 'run-end', runId: state.id, outcome: state.outcome, durationMs: Math.round(ms) });
    if (res.ok) void pruneLogs(inventory.stateDir, inventory.logRetentionDays, { currentRunId: state.id }).catch(() => {});
    return { outcome, result: res, state, durationMs: ms, logPath, stoppedBy };
  } finally {
    req.stop?.removeEventListener('abort', onStop);
    endAbortWindow();
    if (!aborted) {
      try {
        // The run's outcome stands; a run log that could not be written whole is said, not hidden.
        await log?.close().catch((e) => output.notice(`warning: ${errorText(e)}`));
        for (const l of locks) await l.release();
      } finally {
        // Last (execute kept them open): each disconnect sets that host's sshd tearing its
        // session down, and on a loaded control machine those compete with chops' own last writes.
        await runner.close();
      }
    }
  }
}

/** OUT, with every event and note also handed to RECORD. */
function recordingOutput(out: Output, record: (ev: RunEvent) => void): Output {
  return {
    ...out,
    event(ev) {
      record(ev);
      out.event(ev);
    },
    note(host, step, text) {
      record({ type: 'note', host, step, text });
      out.note(host, step, text);
    },
    // The state keeps only a step's last status (a rollback sets a replica's steps back to
    // pending); the log keeps how each attempt ended.
    stepDone(host, phase, step, ms, r) {
      const rr = r ?? {};
      record({
        type: 'step-done',
        host,
        phase,
        step,
        durationMs: Math.round(ms),
        changed: rr.skipped ? false : (rr.changed ?? true),
        skipped: rr.skipped,
        note: rr.note,
      });
      out.stepDone(host, phase, step, ms, r);
    },
    stepFailed(host, phase, step, err, ms) {
      record({ type: 'step-failed', host, phase, step, durationMs: Math.round(ms), error: errorText(err) });
      out.stepFailed(host, phase, step, err, ms);
    },
  };
}
