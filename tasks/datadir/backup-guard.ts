// The backup agent and a move (issue 11's agent, branch backup): a move needs a recent good backup
// of every shard before it starts, and the agent must not write shadow/ or backup/ on a node while
// its final pass runs (move-data.md condition 1).
//
// The node lock: the agent takes `flock` on its lock file before any work and waits a bounded time
// when it is busy (templates/backup/agent-body.ts, branch backup: `exec 9>>"$LOCK_FILE"; flock -w`).
// chops pauses it by holding that flock from a small process on the node (`flock LOCK sleep`),
// whose pid is kept next to the lock; the kernel drops a flock when its holder dies, so a lock
// left by a dead run never blocks forever. Until tasks/backup/node-lock.ts lands this is the
// interim implementation of the same contract (path by --backup-lock).
import type { HostHandle } from '../../src/host.js';
import { ChopsError } from '../../src/errors.js';
import { sh } from '../../src/quote.js';

export async function pauseBackupAgent(host: HostHandle, lock: string, owner: string, waitS: number): Promise<{ changed: boolean; note: string }> {
  const holder = `${lock}.chops-holder`;
  const r = await host.$({ timeoutMs: (waitS + 30) * 1000, nothrow: true })`mkdir -p -- $(dirname -- ${lock})
if [ -s ${holder} ] && p=$(cat ${holder}) && [ -r "/proc/$p/cmdline" ] && tr '\\0' ' ' < "/proc/$p/cmdline" | grep -q '^sleep '; then echo "held $p"; exit 0; fi
rm -f -- ${holder}
setsid flock -w ${String(waitS)} ${lock} sh -c 'echo "$1" > "$2.owner"; echo $$ > "$2.chops-holder"; exec sleep 86400' chops-lock ${owner} ${lock} </dev/null >/dev/null 2>&1 &
i=0; while [ $i -lt ${String(waitS * 10 + 20)} ]; do
  if [ -s ${holder} ]; then echo "took $(cat ${holder})"; exit 0; fi
  kill -0 $! 2>/dev/null || { echo "flock gave up" >&2; exit 4; }
  sleep 0.1; i=$((i+1))
done; exit 4`;
  // The holder's answer exists once the command ran; a plan takes no lock and says so.
  const answer = await host.whenApplied(undefined, async () => r);
  if (!answer) return { changed: true, note: `would hold the backup agent's node lock ${lock}` };
  if (answer.code !== 0)
    throw new ChopsError(`${host.name}: the backup agent's node lock ${lock} is still held after ${waitS}s (a backup is running?): ${answer.stderr.trim()}`, {
      hint: 'wait for the backup to finish (chops backup status), then `chops resume`',
    });
  const held = answer.stdout.trim();
  return {
    changed: held.startsWith('took'),
    note: held.startsWith('held') ? `already paused (${held})` : `backup agent paused (node lock ${lock} held by pid ${held.split(' ')[1]})`,
  };
}

export async function resumeBackupAgent(host: HostHandle, lock: string): Promise<{ changed: boolean; note: string }> {
  const holder = `${lock}.chops-holder`;
  const r = await host.$({
    timeoutMs: 30_000,
  })`if [ -s ${holder} ] && p=$(cat ${holder}) && [ -r "/proc/$p/cmdline" ] && tr '\\0' ' ' < "/proc/$p/cmdline" | grep -q '^sleep '; then kill "$p"; rm -f -- ${holder} ${`${lock}.owner`}; echo released; else rm -f -- ${holder}; echo none; fi`;
  const released = r.stdout.trim() === 'released';
  return { changed: released, note: released ? 'backup agent may run again' : 'the node lock was not held' };
}

// ------------------------------------------------------------------ the backup precondition

/** What the agent writes (status.json, format 1: last_full / last_diff with `finished`). */
export interface BackupStatus {
  host?: string;
  lastGood?: { name: string; finished: Date; type: 'full' | 'diff' };
}

export function parseBackupStatus(text: string): BackupStatus {
  const j = JSON.parse(text) as Record<string, any>;
  if (j.format !== 1) throw new Error(`unknown status format ${JSON.stringify(j.format)} (expected 1)`);
  let best: BackupStatus['lastGood'];
  for (const type of ['full', 'diff'] as const) {
    const f = j[`last_${type}`];
    if (!f || typeof f.finished !== 'string' || typeof f.name !== 'string') continue;
    const at = new Date(f.finished);
    if (Number.isNaN(at.getTime())) continue;
    if (!best || at > best.finished) best = { name: f.name, finished: at, type };
  }
  return { host: typeof j.host === 'string' ? j.host : undefined, lastGood: best };
}

/** A shard passes when one of its replicas has a good backup newer than MAXAGEMS (missing information never passes). */
export function judgeShardBackups(
  statuses: Array<{ host: string; status?: BackupStatus; error?: string }>,
  now: Date,
  maxAgeMs: number,
): { ok: boolean; detail: string } {
  const fresh = statuses.filter((s) => s.status?.lastGood && now.getTime() - s.status.lastGood.finished.getTime() <= maxAgeMs);
  if (fresh.length) {
    const g = fresh[0].status!.lastGood!;
    return { ok: true, detail: `${fresh[0].host}: ${g.type} backup ${g.name} finished ${g.finished.toISOString()}` };
  }
  return {
    ok: false,
    detail: statuses
      .map(
        (s) => `${s.host}: ${s.error ?? (s.status?.lastGood ? `last good backup ${s.status.lastGood.finished.toISOString()} is too old` : 'no good backup')}`,
      )
      .join('; '),
  };
}

export async function readBackupStatus(host: HostHandle, path: string): Promise<{ status?: BackupStatus; error?: string }> {
  const r = await host.probe({ nothrow: true, timeoutMs: 15_000 })`cat -- ${path}`;
  if (r.code !== 0) return { error: `no agent status at ${path}` };
  try {
    return { status: parseBackupStatus(r.stdout) };
  } catch (e) {
    return { error: `unreadable agent status ${path}: ${(e as Error).message}` };
  }
}

export { sh };
