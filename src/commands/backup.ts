// `chops backup install|run|status|list`: the backup agent across the cluster.
//   install  = the backup-install playbook (a normal run: plan, state, resume).
//   run      = the agent on the active replica of each shard, now, with exactly cron's command
//              line and environment (templates/backup/cron.ts), shards in parallel.
//   status   = one row per shard from each active replica's status file and node lock; exit 1
//              when a shard has no good backup younger than --max-age, its last run failed, or a
//              run has held the lock longer than --max-lock-hold (so cron/monitoring can alert).
//   list     = the remote lists of every shard, parsed on the node by the agent's own parser.
import type { Host, Inventory } from '../inventory/types.js';
import type { HostHandle } from '../host.js';
import { UsageError } from '../errors.js';
import { openInventory, type GlobalFlags } from './common.js';
import { sh } from '../quote.js';
import { parseDuration } from '../duration.js';
import { formatBytes, formatDuration, renderTable } from '../format.js';
import { redactor } from '../secrets.js';

export interface BackupFlags extends GlobalFlags {
  type?: string;
  shard?: string | number;
  maxAge?: string;
  maxLockHold?: string;
}

const EXIT_MEANING: Record<number, string> = {
  0: 'ok',
  2: 'usage',
  3: 'disabled on this node',
  4: 'node lock busy',
  5: 'create failed',
  6: 'upload failed',
  7: 'retention failed',
  8: 'clickhouse-backup unusable',
  9: 'timeout',
  10: 'remote list unreadable',
  11: 'killed by a signal',
  124: 'chops deadline',
  255: 'connection lost',
};
export const agentExitMeaning = (code: number) => EXIT_MEANING[code] ?? `exit ${code}`;

export async function backupCommand(action: string, flags: BackupFlags): Promise<number> {
  if (action === 'install') {
    const { runCommand } = await import('./run.js');
    return runCommand('backup-install', flags, {});
  }
  if (!['run', 'status', 'list'].includes(action)) throw new UsageError(`unknown backup action "${action}"`, { hint: 'chops backup install|run|status|list' });
  const inv = await openInventory(flags);
  if (!inv.backup) throw new UsageError(`${inv.path}: no \`backup:\` section`, { hint: 'add one (see README "Backup"), then chops backup install' });
  const shards = activeHosts(inv, flags.shard);
  const { Session } = await import('../engine/session.js');
  const session = new Session(inv, false, () => {});
  try {
    if (action === 'run')
      return await runBackups(
        inv,
        shards.map((h) => session.handle(h)),
        flags,
      );
    if (action === 'status')
      return await showStatus(
        inv,
        shards.map((h) => session.handle(h)),
        flags,
      );
    return await showList(
      shards.map((h) => session.handle(h)),
      flags,
    );
  } finally {
    await session.close();
  }
}

/** The active replica of each shard (or of shard N: its name or 1-based index). */
function activeHosts(inv: Inventory, shard: string | number | undefined): Host[] {
  const out: Host[] = [];
  for (const c of inv.clusters) {
    for (const s of c.shards) {
      if (shard !== undefined && String(shard) !== s.name && String(shard) !== String(s.index)) continue;
      const name = inv.backup?.active[s.name];
      out.push(s.replicas.find((h) => h.name === name) ?? s.replicas[0]);
    }
  }
  if (!out.length)
    throw new UsageError(`--shard ${shard}: no such shard`, { hint: `shards: ${inv.clusters.flatMap((c) => c.shards.map((s) => s.name)).join(', ')}` });
  return out;
}

async function runBackups(inv: Inventory, hosts: HostHandle[], flags: BackupFlags): Promise<number> {
  const type = flags.type;
  if (type !== 'full' && type !== 'diff')
    throw new UsageError(`--type must be full or diff, got ${JSON.stringify(type)}`, { hint: 'chops backup run --type full|diff [--shard N]' });
  const { cronCommand, cronEnvironment } = await import('../../templates/backup/cron.js');
  const { AGENT_PATHS } = await import('../../templates/backup/paths.js');
  const b = inv.backup!;
  const env = Object.entries(cronEnvironment()).map(([k, v]) => `${k}=${v}`);
  // exactly what cron runs: its environment only (env -i) and the cron line's command under /bin/sh -c
  const deadlineMs = (b.lockWaitSeconds + 3 * b.commandTimeoutSeconds + 600) * 1000;
  let failed = 0;
  await Promise.all(
    hosts.map(async (h) => {
      const t0 = performance.now();
      process.stdout.write(`shard ${h.def.shardName}: ${type} backup on ${h.name} (${cronCommand(AGENT_PATHS, type)})\n`);
      const r = await h.$({ nothrow: true, timeoutMs: deadlineMs })`env -i ${env} /bin/sh -c ${cronCommand(AGENT_PATHS, type)}`;
      const lines = r.stderr.trim().split('\n').filter(Boolean);
      for (const l of lines.filter((x) => / (warn|error) /.test(x) || / phase (create|upload|no-base|chain|lock-busy)/.test(x)))
        process.stdout.write(`  ${h.name}: ${redactor.redact(l)}\n`);
      const took = formatDuration(performance.now() - t0);
      if (r.code === 0) process.stdout.write(`shard ${h.def.shardName}: ok on ${h.name} in ${took}: ${redactor.redact(lines.at(-2) ?? '')}\n`);
      else {
        failed++;
        process.stderr.write(
          `chops: ${h.name}: backup agent exited ${r.code} (${agentExitMeaning(r.code)}) after ${took}: ${redactor.redact(lines.filter((l) => / error /.test(l)).at(-1) ?? lines.at(-1) ?? '')}\n  fix: see ${AGENT_PATHS.logDir}/agent.log on ${h.name}; chops backup status\n`,
        );
      }
    }),
  );
  return failed ? 1 : 0;
}

function seconds(flag: string | undefined, dflt: number, name: string): number {
  if (flag === undefined) return dflt;
  const ms = parseDuration(String(flag));
  if (ms === undefined || ms <= 0) throw new UsageError(`--${name} must be a duration like 36h or 90m, got ${JSON.stringify(flag)}`);
  return ms / 1000;
}

async function showStatus(inv: Inventory, hosts: HostHandle[], flags: BackupFlags): Promise<number> {
  const maxAge = seconds(flags.maxAge, inv.backup!.maxAgeSeconds, 'max-age');
  const maxHold = seconds(flags.maxLockHold, inv.backup!.maxLockHoldSeconds, 'max-lock-hold');
  const { backupStatus, newestGoodBackup } = await import('../../facts/backup/status.js');
  const { judgeShard } = await import('../../tasks/backup/judge.js');
  const rows = await Promise.all(
    hosts.map(async (h) => {
      try {
        const s = await h.fact(backupStatus);
        return judgeShard(h.def, s, newestGoodBackup(s), { maxAge, maxHold });
      } catch (e: any) {
        return judgeShard(h.def, undefined, undefined, { maxAge, maxHold }, redactor.redact(String(e?.message ?? e)));
      }
    }),
  );
  const ok = rows.every((r) => r.problems.length === 0);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ ok, maxAgeSeconds: maxAge, maxLockHoldSeconds: maxHold, shards: rows }, null, 2)}\n`);
  } else {
    const ago = (s?: number) => (s === undefined ? '-' : `${formatDuration(s * 1000)} ago`);
    const size = (n?: number, prev?: number | null) =>
      n === undefined ? '-' : `${formatBytes(n)}${prev ? ` (${n >= prev ? '+' : ''}${Math.round(((n - prev) / prev) * 100)}%)` : ''}`;
    const table = renderTable(
      ['SHARD', 'HOST', 'LAST FULL', 'AGE', 'LAST DIFF', 'AGE', 'SIZE (CHANGE)', 'BASE / CHAIN', 'LAST RUN', 'LOCK', 'PROBLEMS'],
      rows.map((r) => [
        r.shard,
        r.host,
        r.lastFull?.name ?? '-',
        ago(r.lastFull?.ageSeconds),
        r.lastDiff?.name ?? '-',
        ago(r.lastDiff?.ageSeconds),
        r.newest ? size(r.newest.sizeBytes, r.newest.previousSizeBytes) : '-',
        r.lastDiff ? `${r.lastDiff.base ?? '-'} / ${r.lastDiff.chain}` : '-',
        r.lastRun ?? '-',
        r.lock,
        r.problems.join('; ') || 'ok',
      ]),
    );
    process.stdout.write(table);
  }
  return ok ? 0 : 1;
}

async function showList(hosts: HostHandle[], flags: BackupFlags): Promise<number> {
  const { AGENT_PATHS } = await import('../../templates/backup/paths.js');
  const { parseAgentList } = await import('../../tasks/backup/judge.js');
  let bad = 0;
  const all = (
    await Promise.all(
      hosts.map(async (h) => {
        const r = await h.probe({ nothrow: true, timeoutMs: 600_000 })`${AGENT_PATHS.agent} list remote`;
        if (r.code !== 0) {
          bad++;
          process.stderr.write(
            `chops: ${h.name}: ${sh`${AGENT_PATHS.agent} list remote`} exited ${r.code}: ${redactor.redact(r.stderr.trim().split('\n').at(-1) ?? '')}\n`,
          );
          return [];
        }
        return parseAgentList(r.stdout).map((b) => ({ shard: h.def.shardName, host: h.name, ...b }));
      }),
    )
  ).flat();
  if (flags.json) process.stdout.write(`${JSON.stringify({ ok: bad === 0, backups: all }, null, 2)}\n`);
  else
    process.stdout.write(
      renderTable(
        ['SHARD', 'NAME', 'DATE', 'SIZE', 'BASE', 'CHAIN', 'STATE'],
        all.map((b) => [b.shard, b.name, b.date, formatBytes(b.sizeBytes), b.base ?? '-', b.chain < 0 ? 'broken chain' : b.chain, b.good ? 'good' : b.state]),
      ),
    );
  return bad ? 1 : 0;
}
