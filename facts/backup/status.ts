// The backup agent's status on a node: its status file (written by the agent after every run,
// templates/backup/agent-body.ts) and the state of the node lock. A pure parser, fixture-tested
// (test/unit/backup-status.test.ts); read by `chops backup status` and by move-data's backup
// precondition (newestGoodBackup).
import { defineFact } from '../../src/fact.js';
import { ChopsError } from '../../src/errors.js';
import { sh } from '../../src/quote.js';
import { AGENT_PATHS } from '../../templates/backup/paths.js';

export interface BackupRecord {
  name: string;
  base: string | null;
  chain: number;
  finished: string;
  sizeBytes: number;
  previousSizeBytes: number | null;
  durationSeconds: number;
}

export interface BackupAttempt {
  type: 'full' | 'diff' | null;
  requested: 'full' | 'diff' | null;
  name: string | null;
  base: string | null;
  chain: number;
  started: string;
  pid: number;
  result: 'ok' | 'failed' | 'running';
  exitCode: number;
  phase: string;
  durationSeconds: number;
  error: string | null;
}

export interface BackupNodeStatus {
  /** false: no status file (agent never ran, or not installed). */
  present: boolean;
  installed: boolean;
  enabled?: boolean;
  shard?: string;
  lastAttempt?: BackupAttempt;
  lastFull?: BackupRecord;
  lastDiff?: BackupRecord;
  lock: { held: boolean; holder?: string; heldSeconds?: number };
  /** The node's clock (epoch seconds) when read: ages are measured against it. */
  nodeNow: number;
}

const S = AGENT_PATHS;

export const backupStatus = defineFact<BackupNodeStatus>({
  name: 'backup agent status',
  command: () =>
    sh`echo '--installed--'; test -x ${S.agent} && echo yes || echo no; echo '--status--'; cat ${`${S.stateDir}/status.json`} 2>/dev/null; echo; ` +
    sh`echo '--lock--'; if [ ! -e ${S.lockFile} ] || flock -n ${S.lockFile} true; then echo free; else echo busy; cat ${`${S.lockFile}.owner`} 2>/dev/null; fi; echo '--now--'; date +%s`,
  parse: ({ stdout, code, stderr }, _arg, host) => parseBackupStatus(stdout, code, stderr, host.name),
});

export function parseBackupStatus(stdout: string, code: number, stderr: string, hostName: string): BackupNodeStatus {
  const sec: Record<string, string> = {};
  let cur = '';
  for (const line of stdout.split('\n')) {
    const m = /^--([a-z]+)--$/.exec(line);
    if (m) {
      cur = m[1];
      sec[cur] = '';
    } else if (cur) sec[cur] += `${line}\n`;
  }
  const nodeNow = Number(sec.now?.trim());
  const lockLines = (sec.lock ?? '').trim().split('\n');
  if (code !== 0 || !Number.isFinite(nodeNow) || nodeNow <= 0 || (lockLines[0] !== 'free' && lockLines[0] !== 'busy')) {
    throw new ChopsError(`${hostName}: cannot read the backup agent status (exit ${code}): ${stderr.trim() || 'unexpected output'}`);
  }
  const holder = lockLines.slice(1).join(' ').trim();
  const since = /since (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)/.exec(holder)?.[1];
  const lock =
    lockLines[0] === 'busy'
      ? { held: true, holder: holder || 'holder unknown', heldSeconds: since ? Math.max(0, nodeNow - Date.parse(since) / 1000) : undefined }
      : { held: false };
  const base: BackupNodeStatus = { present: false, installed: sec.installed?.trim() === 'yes', lock, nodeNow };
  const text = (sec.status ?? '').trim();
  if (!text) return base;
  let j: any;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new ChopsError(`${hostName}: backup status file ${S.stateDir}/status.json is not valid JSON (${(e as Error).message})`, {
      hint: 'the next agent run rewrites it; check the disk of the node',
    });
  }
  if (j?.format !== 1) throw new ChopsError(`${hostName}: backup status file has unknown format ${JSON.stringify(j?.format)}`);
  const rec = (r: any): BackupRecord | undefined =>
    r
      ? {
          name: r.name,
          base: r.base ?? null,
          chain: r.chain ?? 0,
          finished: r.finished,
          sizeBytes: r.size_bytes ?? 0,
          previousSizeBytes: r.previous_size_bytes ?? null,
          durationSeconds: r.duration_s ?? 0,
        }
      : undefined;
  const a = j.last_attempt;
  return {
    ...base,
    present: true,
    enabled: j.enabled,
    shard: j.shard,
    lastAttempt: a
      ? {
          type: a.type,
          requested: a.requested,
          name: a.name,
          base: a.base,
          chain: a.chain,
          started: a.started,
          pid: a.pid,
          result: a.result,
          exitCode: a.exit_code,
          phase: a.phase,
          durationSeconds: a.duration_s,
          error: a.error,
        }
      : undefined,
    lastFull: rec(j.last_full),
    lastDiff: rec(j.last_diff),
  };
}

export interface NewestBackup {
  type: 'full' | 'diff';
  name: string;
  finished: string;
  ageSeconds: number;
}

/**
 * The newest good backup a node's agent recorded (uploaded and seen whole in the remote list;
 * a failed upload never gets here), with its age by the node's clock. Undefined: none.
 * move-data's backup precondition: refuse when this is undefined or older than its limit.
 */
export function newestGoodBackup(s: BackupNodeStatus): NewestBackup | undefined {
  const c = (['full', 'diff'] as const)
    .map((type) => ({ type, r: type === 'full' ? s.lastFull : s.lastDiff }))
    .filter((x): x is { type: 'full' | 'diff'; r: BackupRecord } => !!x.r && Number.isFinite(Date.parse(x.r.finished)))
    .sort((x, y) => Date.parse(y.r.finished) - Date.parse(x.r.finished))[0];
  if (!c) return undefined;
  return { type: c.type, name: c.r.name, finished: c.r.finished, ageSeconds: Math.max(0, s.nodeNow - Date.parse(c.r.finished) / 1000) };
}

/** The host that backs up SHARD: backup.active names it, else the shard's first replica. */
export function activeReplica<H extends { name: string; shardName: string; cluster: string; replica: number }>(
  hosts: H[],
  shard: { name: string; cluster: string },
  active: Record<string, string> = {},
): H | undefined {
  const inShard = hosts.filter((h) => h.cluster === shard.cluster && h.shardName === shard.name);
  return inShard.find((h) => h.name === active[shard.name]) ?? inShard.sort((a, b) => a.replica - b.replica)[0];
}
