// The run journal: one JSON line per step transition or remembered value, appended to
// runs/<id>/journal.<epoch>.jsonl as the run goes, instead of rewriting state.yml each time.
// state.yml records the epoch of the journal that continues it; whenever state.yml is written
// whole (new run, a resume taking over, the end of a run) the epoch moves on and the old journal
// is deleted, so a journal left behind by a crash between the two is never replayed twice.
// Records carry whole values (the step's full state, the memory value), not deltas: replaying
// a record that is already in state.yml changes nothing.
import type { RunState, StepState } from './model.js';
import { locateStep } from './steps.js';

export type JournalRecord =
  | { t: 'step'; at: string; p: number; s: string; h: string; v: StepState }
  /** A remembered value; `v` absent: the key was forgotten. */
  | { t: 'mem'; at: string; h: string; k: string; v?: unknown };

export const journalFile = (epoch: number) => `journal.${epoch}.jsonl`;
export const JOURNAL_RE = /^journal\.(\d+)\.jsonl$/;

export function encodeRecord(r: JournalRecord): string {
  return `${JSON.stringify(r)}\n`;
}

/**
 * Parse a journal. A last line without its newline, or one that does not parse, is a write torn
 * by a crash of the machine (chops itself cannot tear a line: each batch is one write): it was
 * never acknowledged and is dropped. A bad line before the last one is corruption: thrown.
 */
export function parseJournal(text: string): { records: JournalRecord[]; torn?: string } {
  const records: JournalRecord[] = [];
  const lines = text.split('\n');
  const last = lines.pop() ?? ''; // '' when the text ends with a newline
  let torn: string | undefined = last === '' ? undefined : last;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const rec = parseRecord(line);
    if (typeof rec === 'string') {
      if (i === lines.length - 1 && torn === undefined) {
        torn = line;
        break;
      }
      throw new Error(`line ${i + 1}: ${rec}`);
    }
    records.push(rec);
  }
  return { records, ...(torn !== undefined ? { torn } : {}) };
}

function parseRecord(line: string): JournalRecord | string {
  let r: any;
  try {
    r = JSON.parse(line);
  } catch (err) {
    return (err as Error).message;
  }
  if (!r || typeof r !== 'object' || typeof r.at !== 'string' || typeof r.h !== 'string') return 'not a journal record';
  if (r.t === 'step') {
    if (!Number.isInteger(r.p) || typeof r.s !== 'string' || !r.v || typeof r.v.status !== 'string') return 'malformed step record';
    return r;
  }
  if (r.t === 'mem') return typeof r.k === 'string' ? r : 'malformed memory record';
  return `unknown record type ${JSON.stringify(r.t)}`;
}

/** Apply records to a state read from state.yml; updatedAt becomes the last record's time. */
export function replay(state: RunState, records: readonly JournalRecord[]): void {
  for (const r of records) {
    if (r.t === 'step') {
      const at = locateStep(state, r.p, r.s, r.h);
      at.step.hosts[at.host] = r.v;
    } else {
      state.memory[r.h] ??= {};
      const mem = state.memory[r.h];
      if (r.v === undefined) delete mem[r.k];
      else mem[r.k] = r.v;
    }
    if (r.at > state.updatedAt) state.updatedAt = r.at;
  }
}
