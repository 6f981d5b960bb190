// Pure verdicts for `chops backup status` and the parser of the agent's normalized list
// (`chops-backup-agent list remote`: the agent parses clickhouse-backup's own layouts).
import type { Host } from '../../src/inventory/types.js';
import type { BackupNodeStatus, BackupRecord, NewestBackup } from '../../facts/backup/status.js';

export interface ShardVerdict {
  cluster: string;
  shard: string;
  host: string;
  lastFull?: { name: string; finished: string; ageSeconds: number; sizeBytes: number; previousSizeBytes: number | null };
  lastDiff?: { name: string; finished: string; ageSeconds: number; sizeBytes: number; previousSizeBytes: number | null; base: string | null; chain: number };
  newest?: NewestBackup & { sizeBytes: number; previousSizeBytes: number | null };
  lastRun?: string;
  lastError?: string | null;
  lock: string;
  problems: string[];
}

export function judgeShard(
  h: Host,
  s: BackupNodeStatus | undefined,
  newest: NewestBackup | undefined,
  lim: { maxAge: number; maxHold: number },
  readError?: string,
): ShardVerdict {
  const v: ShardVerdict = { cluster: h.cluster, shard: h.shardName, host: h.name, lock: '?', problems: [] };
  if (!s) {
    v.problems.push(`status unreadable: ${readError}`);
    return v;
  }
  const age = (f: string) => Math.max(0, s.nodeNow - Date.parse(f) / 1000);
  const seen = (b: BackupRecord) => ({
    name: b.name,
    finished: b.finished,
    ageSeconds: age(b.finished),
    sizeBytes: b.sizeBytes,
    previousSizeBytes: b.previousSizeBytes,
  });
  if (s.lastFull) v.lastFull = seen(s.lastFull);
  if (s.lastDiff) v.lastDiff = { ...seen(s.lastDiff), base: s.lastDiff.base, chain: s.lastDiff.chain };
  if (newest) {
    const r = newest.type === 'full' ? s.lastFull! : s.lastDiff!;
    v.newest = { ...newest, sizeBytes: r.sizeBytes, previousSizeBytes: r.previousSizeBytes };
  }
  const a = s.lastAttempt;
  if (a) {
    v.lastRun =
      a.result === 'ok'
        ? `ok ${a.type}`
        : a.result === 'running'
          ? s.lock.held
            ? `running ${a.type ?? a.requested}`
            : `interrupted (${a.phase})`
          : `failed ${a.requested} exit ${a.exitCode}`;
    v.lastError = a.error;
  }
  v.lock = s.lock.held ? `held ${s.lock.heldSeconds !== undefined ? `${Math.round(s.lock.heldSeconds)} s ` : ''}by ${s.lock.holder}` : 'free';
  if (!s.installed) v.problems.push('agent not installed (chops backup install)');
  if (!newest) v.problems.push('no good backup yet');
  else if (newest.ageSeconds > lim.maxAge)
    v.problems.push(`newest good backup is ${Math.round(newest.ageSeconds / 3600)} h old (limit ${Math.round(lim.maxAge / 3600)} h)`);
  if (a?.result === 'failed') v.problems.push(`last run failed: ${a.error ?? `exit ${a.exitCode}`}`);
  if (a?.result === 'running' && !s.lock.held) v.problems.push(`last run was interrupted in phase ${a.phase}`);
  if (s.lock.held && (s.lock.heldSeconds ?? 0) > lim.maxHold)
    v.problems.push(`lock held for ${Math.round((s.lock.heldSeconds ?? 0) / 60)} min (limit ${Math.round(lim.maxHold / 60)} min)`);
  return v;
}

export interface ListedBackup {
  name: string;
  date: string;
  sizeBytes: number;
  base: string | null;
  state: 'ok' | 'broken';
  chain: number;
  good: boolean;
}

/** The agent's list output: name, date, size_bytes, required, ok|broken, chain, good (tab-separated). */
export function parseAgentList(text: string): ListedBackup[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      const f = l.split('\t');
      if (f.length !== 7 || !/^\d+$/.test(f[2]) || (f[4] !== 'ok' && f[4] !== 'broken'))
        throw new Error(`agent list line ${i + 1} not understood: ${JSON.stringify(l)}`);
      return {
        name: f[0],
        date: f[1],
        sizeBytes: Number(f[2]),
        base: f[3] === '-' ? null : f[3],
        state: f[4] as 'ok' | 'broken',
        chain: Number(f[5]),
        good: f[6] === '1',
      };
    });
}
