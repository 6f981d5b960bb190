// Where runs live and how their state reaches the disk.
//
// Layout under the state dir:
//   runs/<id>/state.yml             the whole state (JSON, which is YAML), replaced atomically
//   runs/<id>/journal.<epoch>.jsonl step transitions and remembered values since state.yml
//   runs/<id>/run.log               the run log (runlog.ts)
//   locks/<cluster>.lock            lock.ts
// A step transition costs one appended line, not a rewrite of the whole state; state.yml is
// rewritten when a run starts, when a resume takes it over, and when it ends. Loading folds the
// journal in. Error and note texts, step data and memory pass the redactor on the way to disk.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../errors.js';
import { controllerName } from '../proc.js';
import type { Redactor } from '../redact.js';
import { newRunId, isRunId, paramsHash } from './ids.js';
import { encodeRecord, journalFile, parseJournal, replay } from './journal.js';
import { redactJson, toJson } from './json.js';
import type { RunInit, RunState, RunSummary, StepState } from './model.js';
import { isActiveElsewhere, isFinished } from './resume-policy.js';
import { parseStateFile, redactStep, serializeState } from './state-file.js';
import { firstFailure, locateStep, markStep } from './steps.js';
import { RunWriter } from './writer.js';

const STATE_FILE = 'state.yml';
const LOG_FILE = 'run.log';

export class RunStore {
  readonly runsDir: string;
  readonly locksDir: string;
  private writers = new Map<string, RunWriter>();
  private redactor?: Redactor;

  constructor(
    readonly stateDir: string,
    opts: { redactor?: Redactor } = {},
  ) {
    this.runsDir = join(stateDir, 'runs');
    this.locksDir = join(stateDir, 'locks');
    this.redactor = opts.redactor;
  }

  /** Error and note texts, step data and memory pass through this redactor on their way to disk. */
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
  journalPath(id: string, epoch: number): string {
    return join(this.runsDir, id, journalFile(epoch));
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
      memory: {},
    };
    await this.save(state);
    return state;
  }

  /** Read a run's state, its journal folded in. Unknown id, missing or corrupt file: UsageError naming the file. */
  async load(id: string): Promise<RunState> {
    if (!isRunId(id)) {
      throw new UsageError(`"${id}" is not a run id (expected YYYYMMDD-HHMMSS-xxxx)`, {
        hint: 'list runs with `chops runs`',
      });
    }
    const file = this.statePath(id);
    const state = parseStateFile(await readText(file, id), file, id);
    const journal = this.journalPath(id, state.journalEpoch ?? 0);
    let text: string;
    try {
      text = await fsp.readFile(journal, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return state;
      throw new UsageError(`cannot read run journal ${journal}: ${(err as Error).message}`, { cause: err });
    }
    try {
      replay(state, parseJournal(text).records);
    } catch (err) {
      throw new UsageError(`run journal ${journal} is corrupt: ${(err as Error).message}`, {
        hint: `inspect the file; if the run is not needed any more, delete ${this.runDir(id)} and start a new run with \`chops run\``,
        cause: err,
      });
    }
    return state;
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
   * older run. With `where`, the most recent run it accepts.
   */
  async latest(opts: { unfinished?: boolean; where?: (st: RunState) => boolean | Promise<boolean> } = {}): Promise<RunState | null> {
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
      if (opts.where && !(await opts.where(st))) continue;
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
   * Write a run's state whole (state.yml) and start a fresh journal. Cheap to call often and from
   * concurrent code: writes for one run never overlap, and saves made while one is in flight
   * coalesce into one more write of the latest state. The promise resolves once a write
   * containing this call's data is on disk; it is safe to ignore (fire-and-forget): a failure is
   * then reported by the next `flush()`. The final state of a run is also fsync'ed.
   */
  save(state: RunState): Promise<void> {
    return this.writer(state).fold(state);
  }

  /**
   * Update one step on one host (see `markStep`) and record it: one line in the run's journal.
   * The promise resolves once that line is on disk, after everything recorded before it (the
   * step's memory included).
   */
  mark(state: RunState, phaseIdx: number, stepName: string, host: string, patch: Partial<StepState>, now: Date = new Date()): Promise<void> {
    const v = markStep(state, phaseIdx, stepName, host, patch, now);
    const at = locateStep(state, phaseIdx, stepName, host);
    const line = encodeRecord({ t: 'step', at: now.toISOString(), p: phaseIdx, s: stepName, h: at.host, v: redactStep(v, this.redactor) });
    return this.writer(state).append(state, line);
  }

  /**
   * Remember a JSON value for HOST under KEY (undefined forgets it), in state.memory at once and
   * on disk when the promise resolves. Namespace keys by area: 'move-data.oldDir'.
   */
  remember(state: RunState, host: string, key: string, value: unknown, now: Date = new Date()): Promise<void> {
    if (typeof key !== 'string' || key === '') throw new TypeError(`memory key must be a non-empty string, got ${JSON.stringify(key)}`);
    const v = toJson(value, `the value remembered as "${key}" on ${host}`);
    state.memory ??= {}; // a state built by hand (tests) may lack it
    state.memory[host] ??= {};
    const mem = state.memory[host];
    if (v === undefined) delete mem[key];
    else mem[key] = v;
    const r = this.redactor;
    const line = encodeRecord({ t: 'mem', at: now.toISOString(), h: host, k: key, ...(v !== undefined ? { v: r ? redactJson(v, r) : v } : {}) });
    return this.writer(state).append(state, line);
  }

  /** Wait until every scheduled write is on disk; rethrows when the last write of a run failed. */
  async flush(): Promise<void> {
    for (;;) {
      const ws = [...this.writers.values()];
      await Promise.all(ws.map((w) => w.idle()));
      if (ws.every((w) => !w.busy)) break; // writes scheduled meanwhile: wait for them too
    }
    for (const w of this.writers.values()) {
      const err = w.foldError ?? w.appendError;
      if (err) {
        throw new Error(`could not save run state ${this.statePath(w.latest.id)}: ${(err as Error)?.message ?? err}`, {
          cause: err,
        });
      }
    }
  }

  private writer(state: RunState): RunWriter {
    let w = this.writers.get(state.id);
    if (!w) {
      w = new RunWriter(this.runDir(state.id), state, (s) => {
        s.updatedAt = new Date().toISOString();
        return serializeState(s, this.redactor);
      });
      this.writers.set(state.id, w);
    }
    return w;
  }
}

async function readText(file: string, id: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new UsageError(`no run ${id}: state file ${file} does not exist`, { hint: 'list runs with `chops runs`' });
    }
    throw new UsageError(`cannot read run state ${file}: ${(err as Error).message}`, { cause: err });
  }
}
