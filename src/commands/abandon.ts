// `chops abandon RUN`: the operator gives up on an unfinished run (finished it by hand, or it no
// longer matters). It stays in `chops runs` as "abandoned", `chops resume` no longer picks it, and
// `chops resume RUN` refuses it. Recorded as a marker file next to the run's state
// (runs/<id>/abandoned, JSON: when, by whom, why), so the state file itself is left as the run
// wrote it — it is the record of what happened on the hosts.
import { readFile, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { RunStore, isActiveElsewhere, isFinished, type RunState } from '../run/state.js';
import { flagText, openInventory } from './common.js';

export const ABANDONED_FILE = 'abandoned';

export interface Abandoned {
  at: string;
  by: string;
  reason?: string;
}

export async function abandonedInfo(store: RunStore, id: string): Promise<Abandoned | undefined> {
  try {
    return JSON.parse(await readFile(join(store.runDir(id), ABANDONED_FILE), 'utf8')) as Abandoned;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { at: '?', by: '?', reason: `unreadable marker: ${(err as Error).message}` };
  }
}

/**
 * What `chops resume` without an id continues: the newest run of THIS inventory that is neither
 * succeeded nor abandoned. Older unfinished runs never shadow it, and runs of other inventories
 * sharing the state directory are not picked.
 */
export function latestResumable(store: RunStore, inventoryPath: string): Promise<RunState | null> {
  return store.latest({ unfinished: true, where: async (st) => st.inventory === inventoryPath && !(await abandonedInfo(store, st.id)) });
}

export async function abandonCommand(runId: string, flags: { inventory?: string; reason?: string }): Promise<number> {
  const inv = await openInventory(flags);
  const store = new RunStore(inv.stateDir);
  const state = await store.load(String(runId));
  if (isFinished(state)) throw new UsageError(`run ${state.id} succeeded; there is nothing to abandon`);
  if (isActiveElsewhere(state)) {
    throw new UsageError(`run ${state.id} is still running (pid ${state.pid})`, { hint: 'stop it first (Ctrl-C, or kill -TERM the pid), then abandon it' });
  }
  const already = await abandonedInfo(store, state.id);
  if (already) {
    process.stdout.write(`run ${state.id} was already abandoned at ${already.at} by ${already.by}\n`);
    return 0;
  }
  const reason = flagText(flags as Record<string, unknown>, 'reason', 'a reason');
  const mark: Abandoned = { at: new Date().toISOString(), by: `${safeUser()}@${hostname()}`, ...(reason ? { reason } : {}) };
  await writeFile(join(store.runDir(state.id), ABANDONED_FILE), `${JSON.stringify(mark)}\n`, { flag: 'wx', mode: 0o644 });
  process.stdout.write(
    `run ${state.id} (${state.playbook}, ${state.outcome}) is abandoned: \`chops resume\` will not pick it; the hosts are as it left them\n`,
  );
  return 0;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '?');
  }
}
