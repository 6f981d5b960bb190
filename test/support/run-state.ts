// A run's state as chops sees it, read synchronously from the state dir: state.yml with its
// journal folded in (a running or crashed run has its latest transitions only in the journal).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { journalFile, parseJournal, replay } from '../../src/run/state/journal.js';
import type { RunState } from '../../src/run/state/model.js';
import { parseStateFile } from '../../src/run/state/state-file.js';

export function readRunStateIn(stateDir: string, runId: string): RunState {
  const dir = join(stateDir, 'runs', runId);
  const file = join(dir, 'state.yml');
  const state = parseStateFile(readFileSync(file, 'utf8'), file, runId);
  const journal = join(dir, journalFile(state.journalEpoch ?? 0));
  if (existsSync(journal)) replay(state, parseJournal(readFileSync(journal, 'utf8')).records);
  return state;
}
