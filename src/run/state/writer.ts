// One run's writes, in order and never overlapping: journal appends (one line per step
// transition or remembered value) and whole rewrites of state.yml ("folds"). Writing starts in
// the check phase of the event-loop turn a call was made in, so calls of the same turn (every
// host whose answer arrived in it) and calls made while a write is in flight are batched: the
// appends into one write() of all their lines, the folds into one rewrite that serializes the
// latest state when it starts. Each call's promise resolves once its data is on disk (in the
// kernel: see the fsync policy below).
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { AppendFile } from '../append-file.js';
import { flushTurnBuffers } from '../turn-buffer.js';
import { sweepTempFiles, writeFileAtomic } from './atomic-write.js';
import { JOURNAL_RE, journalFile } from './journal.js';
import type { RunState } from './model.js';

interface Op {
  kind: 'append' | 'fold';
  lines: string[];
  started: boolean;
  done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

export class RunWriter {
  /** Latest state object handed to fold() or append(): what the next fold writes. */
  latest: RunState;
  /** The journal epoch of state.yml on disk: appends go to journal.<epoch>.jsonl. */
  private epoch: number;
  private ops: Op[] = [];
  private running = false;
  private scheduled = false;
  private journal?: AppendFile;
  /** Lines were appended to the journal of the current epoch (it exists and must go at the next fold). */
  private journalUsed = false;
  private folded = false;
  /** The last fold failed (cleared by a successful one). */
  foldError: unknown;
  /** An append failed: the journal may miss a line, so no more appends until a fold. */
  appendError: unknown;

  constructor(
    private readonly dir: string,
    state: RunState,
    private readonly serialize: (s: RunState) => string,
  ) {
    this.latest = state;
    this.epoch = state.journalEpoch ?? 0;
  }

  get file(): string {
    return join(this.dir, 'state.yml');
  }

  /** Write STATE whole to state.yml and start a fresh journal. */
  fold(state: RunState): Promise<void> {
    this.latest = state;
    return this.enqueue('fold');
  }

  /** Append one encoded record (STATE already holds its effect). */
  append(state: RunState, line: string): Promise<void> {
    this.latest = state;
    // The first record a process writes for a run follows a fold: state.yml then names this
    // process as the owner, and the journal continued is its own (never one a crash tore).
    if (!this.folded && !this.ops.some((o) => o.kind === 'fold')) void this.enqueue('fold').catch(() => {});
    return this.enqueue('append', line);
  }

  /** Resolves when everything scheduled so far is written (never rejects). */
  async idle(): Promise<void> {
    while (this.ops.length) await this.ops[this.ops.length - 1].done.catch(() => {});
  }

  get busy(): boolean {
    return this.ops.length > 0;
  }

  private enqueue(kind: Op['kind'], line?: string): Promise<void> {
    const last = this.ops[this.ops.length - 1];
    if (last && !last.started && last.kind === kind) {
      if (line !== undefined) last.lines.push(line);
      return last.done;
    }
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // reported by flush() when the caller does not wait for it
    this.ops.push({ kind, lines: line !== undefined ? [line] : [], started: false, done, resolve, reject });
    // Started in the check phase of this event-loop turn, not at once: every host whose answer
    // arrived in this turn marks its step by then, and all their lines go in one write(2)
    // (one per step per host otherwise: ~400 per run on the 20-host fan-out). Each caller still
    // waits for its line to be on disk before it sends its next command.
    if (!this.running && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        if (!this.running) void this.pump();
      });
    }
    return done;
  }

  private async pump(): Promise<void> {
    this.running = true;
    while (this.ops.length) {
      const op = this.ops[0];
      op.started = true;
      try {
        flushTurnBuffers(); // the run log first: after a crash it is never behind the state
        if (op.kind === 'fold') await this.writeFold();
        else await this.writeLines(op.lines);
        op.resolve();
      } catch (err) {
        op.reject(err);
      }
      this.ops.shift();
    }
    this.running = false;
  }

  private async writeFold(): Promise<void> {
    const state = this.latest;
    const next = this.epoch + 1;
    state.journalEpoch = next;
    try {
      // The rename alone makes each write atomic against a crash of chops itself (SIGKILL, OOM):
      // the kernel keeps the data. fsync — against a crash of the whole machine — costs a disk
      // flush on the critical path, so only the final state of a run is fsync'ed; after a power
      // loss a resume may redo the last few (idempotent) steps.
      await writeFileAtomic(this.file, this.serialize(state), { durable: state.outcome !== 'running' });
    } catch (err) {
      state.journalEpoch = this.epoch;
      this.foldError = err;
      throw err;
    }
    this.foldError = undefined;
    this.appendError = undefined;
    const old = this.epoch;
    this.epoch = next;
    this.closeJournal();
    if (!this.folded) {
      this.folded = true;
      await sweepTempFiles(this.file);
      await this.removeJournals((e) => e < next);
    } else if (this.journalUsed) {
      await fsp.unlink(join(this.dir, journalFile(old))).catch(() => {});
    }
    this.journalUsed = false;
  }

  private async writeLines(lines: string[]): Promise<void> {
    if (this.appendError) throw this.appendError;
    try {
      this.journal ??= new AppendFile(join(this.dir, journalFile(this.epoch)));
      this.journalUsed = true;
      // One write for the batch: lines of concurrent hosts never interleave. Not fsync'ed, as
      // state.yml between folds (see writeFold).
      this.journal.write(lines.join(''));
    } catch (err) {
      this.appendError = err;
      throw err;
    }
  }

  /** Delete journals of older epochs (left by a crash between a fold and its cleanup). */
  private async removeJournals(which: (epoch: number) => boolean): Promise<void> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      const m = JOURNAL_RE.exec(n);
      if (m && which(Number(m[1]))) await fsp.unlink(join(this.dir, n)).catch(() => {});
    }
  }

  /** Close the journal file (the writer can still be used; it reopens it). */
  async close(): Promise<void> {
    await this.idle();
    this.closeJournal();
  }

  private closeJournal(): void {
    try {
      this.journal?.close();
    } catch {
      /* nothing left to write to it */
    }
    this.journal = undefined;
  }
}
