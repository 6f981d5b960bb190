// The run state file: which step ran on which host with what result, so that a run interrupted
// by a crash, a Ctrl-C or a failed step can be resumed where it stopped.
//
// Layout under the state dir:  runs/<id>/state.yml   runs/<id>/run.log   locks/<cluster>.lock
// state.yml is only ever replaced whole (temp file in the same dir, fsync, rename), so a crash
// leaves either the old or the new version, never a torn one.

import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../errors.js';
import { controllerName, pidAlive } from './proc.js';
import type { Redactor } from './redact.js';
import { emitYaml } from './yaml-emit.js';

export type StepStatus = 'pending' | 'started' | 'done' | 'failed' | 'skipped' | 'rolled-back';
export const STEP_STATUSES: readonly StepStatus[] = ['pending', 'started', 'done', 'failed', 'skipped', 'rolled-back'];

export interface StepState {
  status: StepStatus;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  changed?: boolean;
  error?: string;
  note?: string;
  /** The step's structured result (StepResult.data): what a report or a later reader needs. */
  data?: unknown;
}

export type StepScope = 'each' | 'rolling' | 'once';
export type RunOutcome = 'running' | 'succeeded' | 'failed' | 'interrupted';

/** Host key used by steps that run once for the whole cluster. */
export const ONCE_HOST = '*';

export interface PhaseState {
  phase: string;
  scope: StepScope;
  steps: Array<{ name: string; hosts: Record<string, StepState> }>;
}

export interface RunState {
  version: 1;
  id: string;
  playbook: string;
  params: Record<string, unknown>;
  paramsHash: string;
  /** Absolute path of the inventory file. */
  inventory: string;
  inventoryHash: string;
  cluster: string;
  limit?: string[];
  createdAt: string;
  updatedAt: string;
  pid: number;
  /** Hostname of the control machine. */
  controller: string;
  outcome: RunOutcome;
  error?: string;
  /** phase index -> step name -> host name -> state (once-scoped steps use host "*") */
  steps: PhaseState[];
  /**
   * Per-host memory of the run (ctx.memory): what a step learned that a later step, a rollback or
   * a resumed run needs (the version before an upgrade, the mount before a swap). host -> key -> JSON.
   */
  memory?: Record<string, Record<string, unknown>>;
}

/** What `create()` needs; the rest (id, hashes of params, times, pid, controller) is filled in. */
export interface RunInit {
  playbook: string;
  params: Record<string, unknown>;
  inventory: string;
  inventoryHash: string;
  cluster: string;
  limit?: string[];
  steps: PhaseState[];
}

/** One row of `chops runs`. */
export interface RunSummary {
  id: string;
  /** Absent when the state file could not be read (see `unreadable`). */
  playbook?: string;
  cluster?: string;
  outcome?: RunOutcome;
  createdAt?: string;
  updatedAt?: string;
  /** updatedAt - createdAt. */
  durationMs?: number;
  /** First failed step, when there is one. */
  failed?: { phase: string; step: string; host: string; error?: string };
  error?: string;
  /** outcome is 'running' and its process is alive on this controller. */
  active?: boolean;
  /** outcome is 'running' but its process is gone from this controller (crashed, killed). */
  crashed?: boolean;
  /** Why the state file could not be read. */
  unreadable?: string;
}

const ID_RE = /^\d{8}-\d{6}-[0-9a-f]{4}$/;
const STATE_FILE = 'state.yml';
const LOG_FILE = 'run.log';

/** True for ids produced by `newRunId()` (also the guard against path tricks in `load(id)`). */
export function isRunId(id: string): boolean {
  return ID_RE.test(id);
}

/** `YYYYMMDD-HHMMSS-<4 hex>` in UTC: lexical order is creation order (to the second). */
export function newRunId(now: Date = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp =
    `${p(now.getUTCFullYear(), 4)}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-` +
    `${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

/** Canonical JSON: object keys sorted at every depth, undefined dropped, Dates as ISO strings. */
export function canonicalJson(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'bigint') return v.toString();
      return v;
    }
    if (v instanceof Date) return v.toISOString();
    if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : norm(x)));
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined && typeof x !== 'function') out[k] = norm(x);
    }
    return out;
  };
  return JSON.stringify(norm(value)) ?? 'null';
}

/** Stable sha256 (hex) of run parameters: key order does not matter. */
export function paramsHash(params: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(params ?? {})).digest('hex');
}

/** Build the empty step tree of a plan: every step pending on every host ("*" for once-scoped phases). */
export function buildSteps(
  phases: Array<{ phase: string; scope: StepScope; steps: string[]; hosts: string[] }>,
): PhaseState[] {
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
 * Update one step on one host in memory (call `store.save(state)` afterwards).
 * - status 'started' stamps startedAt (unless given) and clears the previous attempt's finish,
 *   duration and error (a resumed run re-runs it);
 * - a final status (done/failed/skipped/rolled-back) stamps finishedAt and, when started,
 *   durationMs (unless given);
 * - `undefined` in the patch deletes that field.
 * The host entry is created when missing (a host added by `--limit` widening); an unknown phase
 * index or step name is a programming error and throws.
 */
export function markStep(
  state: RunState,
  phaseIdx: number,
  stepName: string,
  host: string,
  patch: Partial<StepState>,
  now: Date = new Date(),
): StepState {
  const phase = state.steps[phaseIdx];
  if (!phase) throw new Error(`run ${state.id}: no phase #${phaseIdx} (the plan has ${state.steps.length})`);
  const step = phase.steps.find((s) => s.name === stepName);
  if (!step) {
    throw new Error(
      `run ${state.id}: phase "${phase.phase}" has no step "${stepName}" (steps: ${phase.steps.map((s) => s.name).join(', ')})`,
    );
  }
  if (phase.scope === 'once' && host !== ONCE_HOST && !(host in step.hosts)) host = ONCE_HOST;
  const cur: StepState = step.hosts[host] ?? { status: 'pending' };
  const iso = now.toISOString();
  if (patch.status === 'started') {
    delete cur.finishedAt;
    delete cur.durationMs;
    delete cur.error;
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
  step.hosts[host] = cur;
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

/** Succeeded runs are finished; failed, interrupted and (crashed) running ones can be resumed. */
export function isFinished(state: Pick<RunState, 'outcome'>): boolean {
  return state.outcome === 'succeeded';
}

/** outcome is 'running' and the recorded process is alive on this controller (not ours). */
export function isActiveElsewhere(state: RunState): boolean {
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
export function assertResumable(
  state: RunState,
  current: { inventoryHash: string; paramsHash?: string; params?: Record<string, unknown> },
): void {
  if (state.outcome === 'succeeded') {
    throw new UsageError(`run ${state.id} (${state.playbook}) already succeeded; there is nothing to resume`, {
      hint: 'start a new run with `chops run`',
    });
  }
  if (isActiveElsewhere(state)) {
    throw new UsageError(
      `run ${state.id} is still running (pid ${state.pid} on ${state.controller}, last update ${state.updatedAt})`,
      { hint: `wait for it to finish, or stop that process (kill ${state.pid}) before resuming` },
    );
  }
  const changed: string[] = [];
  if (current.inventoryHash !== state.inventoryHash) {
    changed.push(`the inventory ${state.inventory} changed since the run started`);
  }
  const newHash = current.paramsHash ?? (current.params ? paramsHash(current.params) : undefined);
  if (newHash !== undefined && newHash !== state.paramsHash) {
    const keys = current.params ? diffKeys(state.params ?? {}, current.params) : [];
    changed.push(
      keys.length ? `parameters differ from the original run: ${keys.join(', ')}` : 'parameters differ from the original run',
    );
  }
  if (changed.length) {
    throw new UsageError(`cannot resume run ${state.id} (${state.playbook}): ${changed.join('; ')}`, {
      hint:
        'resume with the same inventory and re-run with the original parameters, or start a new run with `chops run`',
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

interface Writer {
  /** Latest object handed to save(); serialized when its write starts. */
  latest: RunState;
  /** The write scheduled but not started yet (coalesces further saves). */
  queued: Promise<void> | null;
  /** Completion of everything scheduled so far; never rejects. */
  tail: Promise<void>;
  error: unknown;
  /** Leftover temp files of crashed writers were cleaned up. */
  swept: boolean;
}

export class RunStore {
  readonly runsDir: string;
  readonly locksDir: string;
  private writers = new Map<string, Writer>();
  private redactor?: Redactor;

  constructor(
    readonly stateDir: string,
    opts: { redactor?: Redactor } = {},
  ) {
    this.runsDir = join(stateDir, 'runs');
    this.locksDir = join(stateDir, 'locks');
    this.redactor = opts.redactor;
  }

  /** Error and note texts pass through this redactor before they reach state.yml. */
  setRedactor(redactor: Redactor | undefined): void {
    this.redactor = redactor;
  }

  runDir(id: string): string {
    return join(this.runsDir, id);
  }
  statePath(id: string): string {
    return join(this.runsDir, id, STATE_FILE);
  }
  logPath(id: string): string {
    return join(this.runsDir, id, LOG_FILE);
  }

  /** Start a new run: claims a fresh id (its directory) and writes the first state file. */
  async create(init: RunInit, now: Date = new Date()): Promise<RunState> {
    await fsp.mkdir(this.runsDir, { recursive: true });
    let id = '';
    for (let attempt = 0; ; attempt++) {
      id = newRunId(now);
      try {
        await fsp.mkdir(this.runDir(id)); // not recursive: EEXIST means the id is taken
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 50) throw err;
      }
    }
    const iso = now.toISOString();
    const state: RunState = {
      version: 1,
      id,
      playbook: init.playbook,
      params: init.params ?? {},
      paramsHash: paramsHash(init.params ?? {}),
      inventory: init.inventory,
      inventoryHash: init.inventoryHash,
      cluster: init.cluster,
      ...(init.limit ? { limit: [...init.limit] } : {}),
      createdAt: iso,
      updatedAt: iso,
      pid: process.pid,
      controller: controllerName(),
      outcome: 'running',
      steps: init.steps,
    };
    await this.save(state);
    return state;
  }

  /** Read a run's state. Unknown id, missing or corrupt file: UsageError naming the file. */
  async load(id: string): Promise<RunState> {
    if (!isRunId(id)) {
      throw new UsageError(`"${id}" is not a run id (expected YYYYMMDD-HHMMSS-xxxx)`, {
        hint: 'list runs with `chops runs`',
      });
    }
    const file = this.statePath(id);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw new UsageError(`no run ${id}: state file ${file} does not exist`, { hint: 'list runs with `chops runs`' });
      }
      throw new UsageError(`cannot read run state ${file}: ${(err as Error).message}`, { cause: err });
    }
    return parseState(text, file, id);
  }

  /** Ids of all runs, oldest first (directories with a valid id name). */
  async ids(): Promise<string[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.runsDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names.filter(isRunId).sort();
  }

  /**
   * The most recent run, or with `unfinished` the most recent one that is not succeeded (what
   * `chops resume` picks). Null when there is none. A directory without a state file (a crash
   * during create) is skipped; a corrupt state file throws, rather than silently picking an
   * older run.
   */
  async latest(opts: { unfinished?: boolean } = {}): Promise<RunState | null> {
    const ids = await this.ids();
    for (let i = ids.length - 1; i >= 0; i--) {
      let st: RunState;
      try {
        st = await this.load(ids[i]);
      } catch (err) {
        if (err instanceof UsageError && / does not exist$/.test(err.message)) continue;
        throw err;
      }
      if (opts.unfinished && isFinished(st)) continue;
      return st;
    }
    return null;
  }

  /** Summaries of all runs, newest first, for `chops runs`. Unreadable states are listed, not fatal. */
  async list(): Promise<RunSummary[]> {
    const out: RunSummary[] = [];
    for (const id of (await this.ids()).reverse()) {
      let st: RunState;
      try {
        st = await this.load(id);
      } catch (err) {
        out.push({ id, unreadable: (err as Error).message });
        continue;
      }
      const d = Date.parse(st.updatedAt) - Date.parse(st.createdAt);
      const active = st.outcome === 'running' && (st.pid === process.pid || isActiveElsewhere(st));
      out.push({
        id,
        playbook: st.playbook,
        cluster: st.cluster,
        outcome: st.outcome,
        createdAt: st.createdAt,
        updatedAt: st.updatedAt,
        durationMs: Number.isFinite(d) ? d : undefined,
        failed: firstFailure(st),
        ...(st.error ? { error: st.error } : {}),
        active,
        crashed: st.outcome === 'running' && !active && st.controller === controllerName(),
      });
    }
    return out;
  }

  /**
   * Persist a run's state atomically. Cheap to call very often and from concurrent code: writes
   * for one run never overlap; a save while a write is in flight schedules exactly one more write,
   * which serializes the latest state when it starts (saves in between coalesce into it).
   * The promise resolves once a write containing this call's data is on disk. It is safe to ignore
   * (fire-and-forget): a failure is then reported by the next `flush()`.
   */
  save(state: RunState): Promise<void> {
    let w = this.writers.get(state.id);
    if (!w) {
      w = { latest: state, queued: null, tail: Promise.resolve(), error: undefined, swept: false };
      this.writers.set(state.id, w);
    }
    w.latest = state;
    if (w.queued) return w.queued;
    const writer = w;
    const p = writer.tail.then(() => {
      writer.queued = null; // from here on, a new save() schedules another write
      const first = !writer.swept;
      writer.swept = true;
      return this.writeNow(writer.latest, first);
    });
    writer.queued = p;
    writer.tail = p.then(
      () => {
        writer.error = undefined;
      },
      (err) => {
        writer.error = err;
      },
    );
    return p;
  }

  /** Wait until every scheduled save is on disk; rethrows when the last write of a run failed. */
  async flush(): Promise<void> {
    for (;;) {
      const tails = [...this.writers.values()].map((w) => w.tail);
      await Promise.all(tails);
      // Saves made while we waited extend the tails; loop until nothing new was scheduled.
      if ([...this.writers.values()].every((w, i) => w.tail === tails[i] && !w.queued)) break;
    }
    for (const w of this.writers.values()) {
      if (w.error) {
        const err = w.error;
        throw new Error(`could not save run state ${this.statePath(w.latest.id)}: ${(err as Error)?.message ?? err}`, {
          cause: err,
        });
      }
    }
  }

  private serialize(state: RunState): string {
    state.updatedAt = new Date().toISOString();
    let doc: RunState = state;
    const r = this.redactor;
    if (r) {
      doc = {
        ...state,
        ...(state.error !== undefined ? { error: r.redact(state.error) } : {}),
        ...(state.memory !== undefined ? { memory: redactJson(r, state.memory) } : {}),
        steps: state.steps.map((ph) => ({
          ...ph,
          steps: ph.steps.map((st) => ({
            name: st.name,
            hosts: Object.fromEntries(
              Object.entries(st.hosts).map(([h, s]) => [
                h,
                {
                  ...s,
                  ...(s.error !== undefined ? { error: r.redact(s.error) } : {}),
                  ...(s.note !== undefined ? { note: r.redact(s.note) } : {}),
                  ...(s.data !== undefined ? { data: redactJson(r, s.data) } : {}),
                },
              ]),
            ),
          })),
        })),
      };
    }
    return `# chops run state — rewritten as the run progresses; do not edit while it runs\n${emitYaml(doc as unknown as Record<string, unknown>)}`;
  }

  private async writeNow(state: RunState, sweep: boolean): Promise<void> {
    const dir = this.runDir(state.id);
    const text = this.serialize(state);
    // The rename alone makes each write atomic against a crash of chops itself (SIGKILL, OOM):
    // the kernel keeps the data. fsync — against a crash of the whole machine — costs a disk
    // flush per step on the critical path, so only the final state of a run is fsync'ed; after a
    // power loss a resume may redo the last few (idempotent) steps.
    await writeFileAtomic(join(dir, STATE_FILE), text, { durable: state.outcome !== 'running' });
    if (sweep) await sweepTempFiles(dir, STATE_FILE);
  }
}

/** Write a file so that readers see the old or the new content, never a mix: temp + fsync + rename. */
export async function writeFileAtomic(file: string, text: string, opts: { durable?: boolean } = {}): Promise<void> {
  const durable = opts.durable ?? true;
  const dir = join(file, '..');
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx', 0o600);
    await fh.writeFile(text, 'utf8');
    if (durable) await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, file);
  } catch (err) {
    await fh?.close().catch(() => {});
    await fsp.unlink(tmp).catch(() => {});
    throw err;
  }
  if (!durable) return;
  // Make the rename itself durable; not every platform lets a directory be fsync'ed.
  try {
    const d = await fsp.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* best effort */
  }
}

/** Remove `<name>.<pid>.<hex>.tmp` files left by writers that died mid-write (their pid is gone). */
async function sweepTempFiles(dir: string, name: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(`${name}.`) || !e.endsWith('.tmp')) continue;
    const pid = Number(e.slice(name.length + 1).split('.')[0]);
    if (pid === process.pid || pidAlive(pid)) continue;
    await fsp.unlink(join(dir, e)).catch(() => {});
  }
}

/** Every string inside VALUE passed through the redactor (structure kept). */
function redactJson<T>(r: Redactor, value: T): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return r.redact(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

function parseState(text: string, file: string, id: string): RunState {
  const bad = (why: string, cause?: unknown) =>
    new UsageError(`run state ${file} is corrupt: ${why}`, {
      hint: `inspect or restore the file; if the run is not needed any more, delete ${join(file, '..')} and start a new run with \`chops run\``,
      cause,
    });
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw bad((err as Error).message.split('\n')[0], err);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw bad('not a YAML mapping');
  const s = doc as Record<string, unknown>;
  if (s.version !== 1) {
    throw bad(`unsupported version ${JSON.stringify(s.version)} (this chops reads version 1)`);
  }
  if (s.id !== id) throw bad(`id ${JSON.stringify(s.id)} does not match its directory ${id}`);
  for (const k of ['playbook', 'paramsHash', 'inventory', 'inventoryHash', 'cluster', 'createdAt', 'updatedAt', 'controller']) {
    if (typeof s[k] !== 'string') throw bad(`missing or invalid "${k}"`);
  }
  if (typeof s.pid !== 'number') throw bad('missing or invalid "pid"');
  if (!['running', 'succeeded', 'failed', 'interrupted'].includes(s.outcome as string)) {
    throw bad(`invalid outcome ${JSON.stringify(s.outcome)}`);
  }
  if (s.params == null) s.params = {};
  if (typeof s.params !== 'object' || Array.isArray(s.params)) throw bad('"params" is not a mapping');
  if (!Array.isArray(s.steps)) throw bad('"steps" is not a list');
  if (s.memory != null && (typeof s.memory !== 'object' || Array.isArray(s.memory))) throw bad('"memory" is not a mapping');
  s.steps.forEach((ph: unknown, i: number) => {
    const p = ph as PhaseState;
    if (!p || typeof p.phase !== 'string' || !['each', 'rolling', 'once'].includes(p.scope) || !Array.isArray(p.steps)) {
      throw bad(`phase #${i} is malformed`);
    }
    for (const st of p.steps) {
      if (!st || typeof st.name !== 'string' || !st.hosts || typeof st.hosts !== 'object') {
        throw bad(`a step of phase "${p.phase}" is malformed`);
      }
      for (const [h, hs] of Object.entries(st.hosts)) {
        if (!hs || !STEP_STATUSES.includes((hs as StepState).status)) {
          throw bad(`step "${st.name}" on host ${h} has an invalid status`);
        }
      }
    }
  });
  return doc as RunState;
}
