// The per-run log (runs/<id>/run.log): every command chops ran or probed, its exit code, time and
// output, plus free-form events. Line-oriented and append-only; everything passes the Redactor.
//
//   2026-11-21T08:00:00.123Z host=h1 step="stop server" exit=0 1.2ms $ systemctl stop clickhouse-server
//     | stdout line
//     ! stderr line

import { promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CommandListener } from '../transport/types.js';
import { AppendFile } from './append-file.js';
import { TurnBuffer } from './turn-buffer.js';
import { Redactor } from './redact.js';
import { isRunId, runIdTime } from './state/ids.js';
import { isActiveElsewhere } from './state/resume-policy.js';
import { readStateHead, type StateHead } from './state/state-file.js';
import { RunStore } from './state/store.js';

export interface CommandEntry {
  host: string;
  step?: string;
  kind: 'exec' | 'probe' | 'put' | 'forward';
  command: string;
  code: number;
  durationMs: number;
  stdout?: string;
  stderr?: string;
  /** Entry time; default now. */
  at?: Date;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024;

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${ms.toFixed(1)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${((ms - m * 60_000) / 1000).toFixed(1)}s`;
}

/** Keep at most `max` bytes of a stream: its head and its tail, with a note about the cut. */
function streamLines(text: string, max: number, prefix: string, label: string): string {
  if (!text) return '';
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= max) return outputLines(text, prefix);
  const headBytes = Math.ceil(max / 2);
  const tailBytes = max - headBytes;
  const head = buf.subarray(0, headBytes).toString('utf8');
  const tail = tailBytes > 0 ? buf.subarray(buf.length - tailBytes).toString('utf8') : '';
  const note = `  ${prefix}… [${label}: ${buf.length - max} of ${buf.length} bytes not logged]\n`;
  return outputLines(head, prefix) + note + outputLines(tail, prefix);
}

function outputLines(text: string, prefix: string): string {
  if (!text) return '';
  const lines = text.replace(/\r\n/g, '\n').replace(/\r/g, '\n').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let out = '';
  for (const l of lines) out += `  ${prefix}${l}\n`;
  return out;
}

const oneLine = (s: string) => s.replace(/[\r\n\t]+/g, ' ').trim();

export class RunLog {
  readonly path: string;
  readonly redactor: Redactor;
  readonly maxOutputBytes: number;
  private file: AppendFile;
  /** Entries of one event-loop turn, written together (one write(2), so hosts never interleave). */
  private pending = new TurnBuffer((text) => this.writeNow(text));
  private closed = false;
  private error: Error | undefined;

  constructor(path: string, opts: { redactor?: Redactor; maxOutputBytes?: number } = {}) {
    this.path = path;
    this.redactor = opts.redactor ?? new Redactor();
    this.maxOutputBytes = Math.max(0, opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES);
    this.file = new AppendFile(path);
  }

  /** Open (append to) runs/<id>/run.log. */
  static async open(path: string, opts: { redactor?: Redactor; maxOutputBytes?: number } = {}): Promise<RunLog> {
    await fsp.mkdir(dirname(path), { recursive: true });
    return new RunLog(path, opts);
  }

  /** First write error, if any (also thrown by close()). */
  get lastError(): Error | undefined {
    return this.error;
  }

  private write(text: string): void {
    // A straggling command after close, or a write that already failed (a torn entry must not
    // get the next one glued to it): dropped rather than crashing the run.
    if (this.closed || this.error) return;
    this.pending.write(text);
  }

  private writeNow(text: string): void {
    if (this.error) return;
    try {
      this.file.write(text); // whole entries only, so concurrent hosts never interleave lines
    } catch (err) {
      this.error = err as Error; // a full disk must not stop the run; close() rejects with it
    }
  }

  logCommand(e: CommandEntry): void {
    const r = this.redactor;
    const at = (e.at ?? new Date()).toISOString();
    const cmd = r.redact(e.command).replace(/\r\n?/g, '\n').split('\n');
    const step = e.step !== undefined ? ` step=${JSON.stringify(oneLine(e.step))}` : '';
    const kind = e.kind === 'exec' ? '' : ` kind=${e.kind}`;
    let out = `${at} host=${oneLine(e.host) || '-'}${step}${kind} exit=${e.code} ${formatDuration(e.durationMs)} $ ${cmd[0]}\n`;
    for (const l of cmd.slice(1)) out += `  > ${l}\n`;
    // Redact whole streams before cutting them, so that no secret is split by the cut.
    const stdout = e.stdout ? r.redact(e.stdout) : '';
    const stderr = e.stderr ? r.redact(e.stderr) : '';
    const max = this.maxOutputBytes;
    const so = Buffer.byteLength(stdout);
    const se = Buffer.byteLength(stderr);
    let soMax = so;
    let seMax = se;
    if (so + se > max) {
      // stderr explains failures: it gets at least half of the budget when it needs it.
      seMax = Math.min(se, Math.max(Math.floor(max / 2), max - so));
      soMax = max - seMax;
    }
    out += streamLines(stdout, soMax, '| ', 'stdout');
    out += streamLines(stderr, seMax, '! ', 'stderr');
    this.write(out);
  }

  /** A free-form line (phase started, run interrupted, …); multi-line text is indented. */
  logEvent(text: string, at: Date = new Date()): void {
    const lines = this.redactor.redact(text).replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n');
    let out = `${at.toISOString()} ${lines[0]}\n`;
    for (const l of lines.slice(1)) out += `  ${l}\n`;
    this.write(out);
  }

  /**
   * A run event (src/engine/events.ts) as one line `<time> event {json}`, so `chops report` can
   * show what gates observed and what long steps reported. Redacted like every other line.
   */
  logRecord(ev: object, at: Date = new Date()): void {
    let json: string;
    try {
      json = JSON.stringify(ev);
    } catch {
      json = JSON.stringify({ type: String((ev as { type?: unknown }).type ?? 'event'), unserializable: true });
    }
    this.write(`${at.toISOString()} event ${this.redactor.redact(json).replace(/[\r\n]+/g, ' ')}\n`);
  }

  /**
   * A transport CommandListener that logs every command; `stepOf(host)` names the step currently
   * running on that host. Forwards are logged as events.
   */
  listener(stepOf: (host: string) => string | undefined = () => undefined): CommandListener {
    return ({ host, kind, result }) => {
      this.logCommand({
        host,
        step: stepOf(host),
        kind,
        command: result.recorded ? `${result.command}  # (plan: recorded, not run)` : result.command,
        code: result.code,
        durationMs: result.durationMs,
        stdout: result.stdout,
        stderr: result.stderr,
      });
    };
  }

  /** Flush and close the file. Idempotent; rejects with the first write error, if any. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.pending.flush();
      this.closed = true;
      try {
        this.file.close();
      } catch (err) {
        this.error ??= err as Error;
      }
    }
    if (this.error) throw new Error(`could not write run log ${this.path}: ${this.error.message}`, { cause: this.error });
  }
}

/**
 * What pruning needs of a past run (outcome, owner, last update), reading as little as it can:
 * the head of state.yml and, while the run has a journal, the journal's modification time (the
 * last transition recorded). A state file of an older chops, without that head, is read whole.
 */
async function lastUpdate(store: RunStore, id: string): Promise<StateHead | undefined> {
  let head: StateHead | undefined;
  try {
    head = await readStateHead(store.statePath(id));
  } catch {
    return undefined;
  }
  if (!head) {
    try {
      const st = await store.load(id);
      return { outcome: st.outcome, updatedAt: st.updatedAt, pid: st.pid, controller: st.controller, journalEpoch: st.journalEpoch ?? 0 };
    } catch {
      return undefined;
    }
  }
  try {
    const { mtime } = await fsp.stat(store.journalPath(id, head.journalEpoch));
    if (mtime.getTime() > Date.parse(head.updatedAt)) head.updatedAt = mtime.toISOString();
  } catch {
    /* no journal: state.yml is the whole story */
  }
  return head;
}

export interface PrunedRun {
  id: string;
  path: string;
  outcome: string;
  updatedAt: string;
}

/**
 * Delete the directories (state, journal, log) of runs whose last update is older than
 * `retentionDays` (0: all of them), failed and interrupted ones included; never the current run,
 * a run whose process is still at work, or a directory whose state file is missing or
 * unreadable. Runs at the end of every run, so it reads as little as it can: nothing for a run
 * created within the retention (its id says when), the head of state.yml for the others.
 * Returns what was removed.
 */
export async function pruneLogs(stateDir: string, retentionDays: number, opts: Date | { now?: Date; currentRunId?: string } = {}): Promise<PrunedRun[]> {
  if (!Number.isFinite(retentionDays) || retentionDays < 0) {
    if (retentionDays === Infinity) return [];
    throw new RangeError(`log retention must be a number of days >= 0, got ${retentionDays}`);
  }
  const { now = new Date(), currentRunId } = opts instanceof Date ? { now: opts } : opts;
  const cutoff = now.getTime() - retentionDays * 86_400_000;
  const store = new RunStore(stateDir);
  const removed: PrunedRun[] = [];
  for (const id of await store.ids()) {
    if (id === currentRunId || !isRunId(id)) continue;
    // A run created after the cutoff was updated after it too: no need to open anything. In the
    // steady state (older runs already pruned) this is every run.
    if (runIdTime(id) >= cutoff) continue;
    const seen = await lastUpdate(store, id);
    if (!seen) continue; // missing or unreadable: never touched
    // A run still at work is never touched. Anything else older than the retention goes, failed
    // and interrupted runs too: a run left unresumed that long should not be resumed any more.
    const last = Date.parse(seen.updatedAt);
    if (!Number.isFinite(last) || last >= cutoff) continue;
    if (isActiveElsewhere(seen)) continue;
    const path = join(store.runsDir, id);
    await fsp.rm(path, { recursive: true, force: true });
    removed.push({ id, path, outcome: seen.outcome, updatedAt: seen.updatedAt });
  }
  return removed;
}
