// `chops unlock <cluster>`: clear the lock of a run that died without releasing it.
import { breakStaleLock } from '../run/lock.js';
import { UsageError } from '../errors.js';
import { show } from '../inventory/values.js';
import { openInventory } from './common.js';

export async function unlockCommand(cluster: string, flags: { inventory?: string; force?: boolean }): Promise<number> {
  const inv = await openInventory(flags);
  // A typo must not answer "not locked" (exit 0) while the real cluster stays locked.
  if (!inv.clusters.some((c) => c.name === String(cluster))) {
    throw new UsageError(`no cluster named ${show(String(cluster))} in ${inv.path}`, { hint: `clusters: ${inv.clusters.map((c) => c.name).join(', ')}` });
  }
  const removed = await breakStaleLock(inv.stateDir, String(cluster), { force: flags.force });
  process.stdout.write(
    removed ? `removed stale lock of run ${removed.runId} (pid ${removed.pid} on ${removed.controller})\n` : `cluster ${cluster} is not locked\n`,
  );
  return 0;
}
