// The backup agent and a move: a move needs a recent good backup of every shard before it
// starts, and the agent must not write shadow/ or backup/ on a node while its server is stopped
// for the final pass and the swap (move-data.md condition 1).
//
// Both go through what the agent itself shares with chops, never a copy of it:
//   - the agent's status: facts/backup/status.ts (`backupStatus` + `newestGoodBackup`, the same
//     reading as `chops backup status`), judged per shard below (pure);
//   - the pause: the node lock of tasks/backup/node-lock.ts (`flock` on AGENT_PATHS.lockFile, the
//     file the agent takes before any work), held from before the stop until the replica is
//     healthy on its new volume; the steps inside that window take it again after a resume.
import type { StepContext } from '../../src/engine/playbook.js';
import type { HostHandle } from '../../src/host.js';
import { backupStatus, type NewestBackup, newestGoodBackup } from '../../facts/backup/status.js';
import { releaseNodeLock, takeNodeLock } from '../backup/node-lock.js';
import { formatDuration } from '../../src/format.js';

/** What move-data does while it holds the node lock (the lock's owner line names it). */
export const MOVE_LOCK_WHAT = 'move-data: stop, final pass and swap';

/** Hold the node lock (no-op when this run holds it already): before the stop, and again in every step of the stop window after a resume. */
export async function pauseBackupAgent(ctx: StepContext<any>): Promise<{ changed: boolean; note: string }> {
  const had = ctx.run.shared.has(`node-lock:${ctx.host.name}`);
  if (ctx.host.plan) {
    // a plan records the lock once, not once per step of the window
    const k = `move-data.plan-node-lock:${ctx.host.name}`;
    if (ctx.run.shared.has(k)) return { changed: false, note: 'node lock (planned above)' };
    ctx.run.shared.set(k, true);
    await takeNodeLock(ctx, MOVE_LOCK_WHAT);
    return { changed: true, note: "would hold the backup agent's node lock" };
  }
  await takeNodeLock(ctx, MOVE_LOCK_WHAT);
  return { changed: !had, note: had ? 'node lock already held by this run' : 'backup agent paused (node lock held)' };
}

export async function resumeBackupAgent(ctx: StepContext<any>): Promise<{ changed: boolean; note: string }> {
  const held = ctx.run.shared.has(`node-lock:${ctx.host.name}`);
  await releaseNodeLock(ctx);
  return { changed: held, note: held ? 'backup agent may run again (node lock released)' : 'the node lock was not held' };
}

/** The newest good backup a node's agent recorded, or why it cannot be known. */
export async function readNewestBackup(host: HostHandle): Promise<{ newest?: NewestBackup; error?: string }> {
  try {
    const s = await host.fact(backupStatus);
    if (!s.present) return { error: s.installed ? 'the agent has written no status yet' : 'no backup agent installed (chops backup install)' };
    return { newest: newestGoodBackup(s) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** A shard passes when one of its replicas has a good backup at most MAXAGEMS old (missing information never passes). */
export function judgeShardBackups(statuses: Array<{ host: string; newest?: NewestBackup; error?: string }>, maxAgeMs: number): { ok: boolean; detail: string } {
  const fresh = statuses.filter((s) => s.newest && s.newest.ageSeconds * 1000 <= maxAgeMs);
  if (fresh.length) {
    const g = fresh[0].newest!;
    return { ok: true, detail: `${fresh[0].host}: ${g.type} backup ${g.name} finished ${g.finished} (${formatDuration(g.ageSeconds * 1000)} ago)` };
  }
  return {
    ok: false,
    detail: statuses
      .map(
        (s) =>
          `${s.host}: ${s.error ?? (s.newest ? `newest good backup ${s.newest.name} is ${formatDuration(s.newest.ageSeconds * 1000)} old` : 'no good backup')}`,
      )
      .join('; '),
  };
}
