// A run's state as chops sees it, read synchronously from the state dir: state.yml with its
// journal folded in (a running or crashed run has its latest transitions only in the journal).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { journalFile, parseJournal, replay } from '../../src/run/state/journal.js';
import type { RunInit, RunState } from '../../src/run/state/model.js';
import { buildSteps } from '../../src/run/state/steps.js';
import { parseStateFile } from '../../src/run/state/state-file.js';

export function readRunStateIn(stateDir: string, runId: string): RunState {
  const dir = join(stateDir, 'runs', runId);
  const file = join(dir, 'state.yml');
  const state = parseStateFile(readFileSync(file, 'utf8'), file, runId);
  const journal = join(dir, journalFile(state.journalEpoch ?? 0));
  if (existsSync(journal)) replay(state, parseJournal(readFileSync(journal, 'utf8')).records);
  return state;
}

/** A two-phase rolling-restart-like run (a once preflight on h1, a rolling restart of h1 and h2), for the state tests. */
export function sampleRunInit(over: Partial<RunInit> = {}): RunInit {
  return {
    playbook: 'rolling-restart',
    params: { version: '24.8', batch: 1 },
    inventory: '/etc/chops/inventory.yml',
    inventoryHash: 'inv-hash-1',
    cluster: 'main',
    steps: buildSteps([
      { phase: 'preflight', scope: 'once', steps: ['check cluster'], hosts: ['h1', 'h2'] },
      { phase: 'restart', scope: 'rolling', steps: ['stop server', 'start server'], hosts: ['h1', 'h2'] },
    ]),
    ...over,
  };
}
