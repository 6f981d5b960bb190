// What backup-install does on one node: check the tools, render the four files from the
// inventory's backup section, write each only when it differs (rerun = unchanged), and check
// the logrotate file with the node's own `logrotate -d` before it is installed.
import type { StepContext, StepResult } from '../../src/engine/playbook.js';
import type { Host, Inventory } from '../../src/inventory/types.js';
import type { BackupSettings, RemoteStorage } from '../../src/inventory/backup-schema.js';
import { ChopsError, UsageError } from '../../src/errors.js';
import { readSecret } from '../../src/inventory/secrets.js';
import { renderAgent } from '../../templates/backup/agent.js';
import { renderBackupConfig } from '../../templates/backup/config-yml.js';
import { renderCron } from '../../templates/backup/cron.js';
import { renderLogrotate } from '../../templates/backup/logrotate.js';
import { AGENT_PATHS } from '../../templates/backup/paths.js';
import { activeReplica } from '../../facts/backup/status.js';
import { nextRuns, staggerCron, validateCron } from './schedule.js';

export function backupSettings(inv: Inventory): BackupSettings {
  if (!inv.backup)
    throw new UsageError(`${inv.path}: no \`backup:\` section`, {
      hint: 'add `backup: {schedule: {full: "30 20 * * 6", diff: "0 * * * *"}, remote: {type: sftp, address: ..., path: ...}}`',
    });
  return inv.backup;
}

export interface ShardSchedule {
  full: string;
  diff: string;
}

/** Per shard (cluster/name): validated and staggered schedules. Throws UsageError (exit 2) before anything runs. */
export function shardSchedules(inv: Inventory): Map<string, ShardSchedule> {
  const b = backupSettings(inv);
  validateCron(b.schedule.full, b.scheduleWhere.full);
  validateCron(b.schedule.diff, b.scheduleWhere.diff);
  const out = new Map<string, ShardSchedule>();
  let k = 0;
  for (const c of inv.clusters) {
    for (const s of c.shards) {
      const off = Math.round((k * b.staggerSeconds) / 60);
      const sched = { full: staggerCron(b.schedule.full, off, b.scheduleWhere.full), diff: staggerCron(b.schedule.diff, off, b.scheduleWhere.diff) };
      validateCron(sched.full, `${b.scheduleWhere.full} staggered for shard ${s.name}`);
      validateCron(sched.diff, `${b.scheduleWhere.diff} staggered for shard ${s.name}`);
      out.set(`${c.name}/${s.name}`, sched);
      k++;
    }
  }
  return out;
}

export function activeHostOf(inv: Inventory, h: Host): Host {
  return activeReplica(inv.hosts, { name: h.shardName, cluster: h.cluster }, inv.backup?.active)!;
}

async function remoteWithSecrets(b: BackupSettings, where: string): Promise<RemoteStorage> {
  const r = b.remote;
  if (r.type === 'sftp') {
    return {
      type: 'sftp',
      address: r.address,
      port: r.port,
      username: r.username,
      password: r.password ? await readSecret(r.password, `${where} backup.remote.password`) : '',
      key: r.key,
      path: r.path,
      compressionFormat: r.compressionFormat,
    };
  }
  return {
    type: 's3',
    bucket: r.bucket,
    endpoint: r.endpoint,
    region: r.region,
    path: r.path,
    accessKey: await readSecret(r.accessKey, `${where} backup.remote.access_key`),
    secretKey: await readSecret(r.secretKey, `${where} backup.remote.secret_key`),
    compressionFormat: r.compressionFormat,
  };
}

/** The four files of one node, rendered (secrets included: only config.yml holds them). */
export async function renderNodeFiles(inv: Inventory, h: Host) {
  const b = backupSettings(inv);
  const sched = shardSchedules(inv).get(`${h.cluster}/${h.shardName}`)!;
  const active = activeHostOf(inv, h);
  const enabled = b.enabled && active.name === h.name;
  const reason = !b.enabled ? 'backup.enabled is false' : `${active.name} is the active replica of shard ${h.shardName}`;
  const remote = await remoteWithSecrets(b, inv.path);
  // {cluster} and {shard} in the remote path (as clickhouse-backup expands macros): each shard
  // has a folder of its own, so its list, bases and retention see only its own backups.
  remote.path = remote.path.replaceAll('{cluster}', h.cluster).replaceAll('{shard}', h.shardName);
  const password = h.clickhouse.password ? await readSecret(h.clickhouse.password, h.where) : '';
  return {
    enabled,
    reason,
    schedule: sched,
    config: renderBackupConfig({
      remote,
      clickhouse: { host: 'localhost', port: h.clickhouse.tcpPort, username: h.clickhouse.user, password, timeout: '5m' },
      logLevel: 'info',
    }),
    agent: renderAgent({
      paths: AGENT_PATHS,
      hostName: h.name,
      cluster: h.cluster,
      shard: h.shardName,
      enabled,
      activeHost: active.name,
      namePrefix: '',
      keepLocal: b.keepLocal,
      keepRemote: b.keepRemote,
      fullIntervalSeconds: b.fullIntervalSeconds,
      maxChain: b.maxChain,
      lockWaitSeconds: b.lockWaitSeconds,
      commandTimeoutSeconds: b.commandTimeoutSeconds,
      listTimeoutSeconds: 300,
    }),
    cron: renderCron({ paths: AGENT_PATHS, full: sched.full, diff: sched.diff, enabled, disabledReason: reason }),
    logrotate: renderLogrotate({ paths: AGENT_PATHS, frequency: b.logRotate.frequency, rotate: b.logRotate.keep }),
  };
}

type Files = Awaited<ReturnType<typeof renderNodeFiles>>;
const filesKey = (host: string) => `backup-install:files:${host}`;

async function files(ctx: StepContext<any>): Promise<Files> {
  const k = filesKey(ctx.host.name);
  let f = ctx.run.shared.get(k) as Promise<Files> | undefined;
  if (!f) {
    f = renderNodeFiles(ctx.run.inventory, ctx.host.def);
    ctx.run.shared.set(k, f);
  }
  return f;
}

const done = (changed: boolean, what: string): StepResult => (changed ? { note: `${what} written` } : { changed: false, skipped: 'unchanged' });

export async function checkTools(ctx: StepContext<any>): Promise<StepResult> {
  const r = await ctx.host.probe({
    nothrow: true,
    timeoutMs: 30_000,
  })`for t in flock timeout logrotate awk; do command -v "$t" >/dev/null || echo "missing $t"; done; ${AGENT_PATHS.binary} --version 2>&1 | head -n 1; echo "tz $(cat /etc/timezone 2>/dev/null || readlink /etc/localtime | sed 's|.*/zoneinfo/||')"`;
  const lines = r.stdout.split('\n');
  const missing = lines.filter((l) => l.startsWith('missing ')).map((l) => l.slice(8));
  const version = /^Version:\s*v?(\d+\.\d+\.\d+)/m.exec(r.stdout)?.[1];
  if (missing.length || !version) {
    throw new ChopsError(
      `${ctx.host.name}: the backup agent needs ${[...missing, ...(version ? [] : ['clickhouse-backup (its --version printed no version)'])].join(', ')}`,
      {
        hint: 'install clickhouse-backup (Altinity releases) and util-linux/coreutils/logrotate on the node, then rerun chops backup install',
      },
    );
  }
  const tz =
    lines
      .find((l) => l.startsWith('tz '))
      ?.slice(3)
      .trim() || 'UTC';
  ctx.run.shared.set(`backup-install:tz:${ctx.host.name}`, tz);
  return { changed: false, note: `clickhouse-backup ${version}, time zone ${tz}` };
}

export async function writeDirs(ctx: StepContext<any>): Promise<StepResult> {
  const dirs = [AGENT_PATHS.logDir, AGENT_PATHS.stateDir, '/etc/clickhouse-backup'];
  const r = await ctx.host.probe({ nothrow: true })`for d in ${dirs}; do [ -d "$d" ] || echo "$d"; done`;
  const missing = r.stdout.split('\n').filter(Boolean);
  if (!missing.length) return { changed: false, skipped: 'unchanged' };
  await ctx.host.$`install -d -m 0755 -o root -g root ${missing}`;
  return { note: `created ${missing.join(' ')}` };
}

export async function writeConfig(ctx: StepContext<any>): Promise<StepResult> {
  const f = await files(ctx);
  return done((await ctx.host.putFile(AGENT_PATHS.config, f.config, { mode: '0600', owner: 'root', group: 'root' })).changed, `${AGENT_PATHS.config} (0600)`);
}

export async function writeAgent(ctx: StepContext<any>): Promise<StepResult> {
  const f = await files(ctx);
  return done(
    (await ctx.host.putFile(AGENT_PATHS.agent, f.agent, { mode: '0755', owner: 'root', group: 'root' })).changed,
    `${AGENT_PATHS.agent}${f.enabled ? '' : ' (disabled)'}`,
  );
}

export async function writeCron(ctx: StepContext<any>): Promise<StepResult> {
  const f = await files(ctx);
  const changed = (await ctx.host.putFile(AGENT_PATHS.cronFile, f.cron, { mode: '0644', owner: 'root', group: 'root' })).changed;
  const tz = (ctx.run.shared.get(`backup-install:tz:${ctx.host.name}`) as string | undefined) ?? 'UTC';
  const next = f.enabled ? { full: nextRuns(f.schedule.full, tz), diff: nextRuns(f.schedule.diff, tz) } : undefined;
  const data = {
    host: ctx.host.name,
    cluster: ctx.host.def.cluster,
    shard: ctx.host.def.shardName,
    enabled: f.enabled,
    reason: f.reason,
    full: f.schedule.full,
    diff: f.schedule.diff,
    tz,
    next,
  };
  const what = f.enabled
    ? `full "${f.schedule.full}", diff "${f.schedule.diff}"; next FULL ${next!.full[0]}, next DIFF ${next!.diff[0]}`
    : `disabled (${f.reason})`;
  return changed ? { note: what, data } : { changed: false, skipped: `unchanged: ${what}`, data };
}

export async function writeLogrotate(ctx: StepContext<any>): Promise<StepResult> {
  const f = await files(ctx);
  // `logrotate -d` on the node reads a temp copy first: a file it rejects is never installed.
  const chk = await ctx.host.probe({
    nothrow: true,
    stdin: f.logrotate,
    timeoutMs: 30_000,
  })`t=$(mktemp /tmp/chops-logrotate.XXXXXX) || exit 1; cat >"$t"; chmod 0644 "$t"; logrotate -d "$t" 2>&1; rc=$?; rm -f "$t"; exit $rc`;
  const errors = chk.stdout.split('\n').filter((l) => /^error:/i.test(l));
  if (chk.code !== 0 || errors.length) {
    throw new ChopsError(
      `${ctx.host.name}: logrotate -d rejects the rendered ${AGENT_PATHS.logrotateFile} (exit ${chk.code}): ${errors.join('; ') || chk.stdout.trim().split('\n').slice(-3).join('; ')}`,
      { hint: 'check backup.log_rotate in the inventory' },
    );
  }
  return done(
    (await ctx.host.putFile(AGENT_PATHS.logrotateFile, f.logrotate, { mode: '0644', owner: 'root', group: 'root' })).changed,
    `${AGENT_PATHS.logrotateFile} (logrotate -d: ok)`,
  );
}
