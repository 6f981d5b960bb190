// `chops unlock <cluster>`: clear the lock of a run that died without releasing it.
import { breakStaleLock } from '../run/lock.js';
import { openInventory } from './common.js';

export async function unlockCommand(cluster: string, flags: { inventory?: string; force?: boolean }): Promise<number> {
  const inv = await openInventory(flags);
  const removed = await breakStaleLock(inv.stateDir, cluster, { force: flags.force });
  process.stdout.write(removed ? `removed stale lock of run ${removed.runId} (pid ${removed.pid} on ${removed.controller})\n` : `cluster ${cluster} is not locked\n`);
  return 0;
}
