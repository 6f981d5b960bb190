// `chops status`: one row per replica, all hosts asked in parallel: ssh reachability, service
// state and the data disk (one ssh probe), ClickHouse version, uptime, read-only tables, queue and
// delay (over the host's ssh connection). A host that cannot be reached is a row, not a crash.
// Exit 0 when every replica is healthy, 1 when any is not, 2 for usage errors.
import type { Host, Inventory } from '../inventory/types.js';
import type { HostHandle } from '../host.js';
import { openInventory, selectHosts, type GlobalFlags } from './common.js';
import { raw } from '../quote.js';

export interface DiskInfo {
  device: string;
  fsType: string;
  mount: string;
  sizeBytes: number;
  usedBytes: number;
  availBytes: number;
  usePercent: number;
}

export interface StatusRow {
  cluster: string;
  shard: string;
  replica: string;
  host: string;
  address: string;
  reachable: boolean;
  /** Why the host could not be reached over ssh. */
  reason?: string;
  service: 'active' | 'inactive' | 'failed' | 'unknown';
  version?: string;
  uptimeSeconds?: number;
  replicatedTables?: number;
  readonlyTables?: number;
  queueSize?: number;
  maxDelaySeconds?: number;
  disk?: DiskInfo;
  /** ClickHouse could not be queried (the reason). */
  clickhouseError?: string;
  healthy: boolean;
  problems: string[];
}

export async function statusCommand(flags: GlobalFlags): Promise<number> {
  const inv = await openInventory(flags);
  const hosts = await selectHosts(inv, flags.limit);
  const t0 = performance.now();
  const rows = await collectStatus(inv, hosts);
  const ms = performance.now() - t0;
  const healthy = rows.every((r) => r.healthy);
  if (flags.json) {
    process.stdout.write(JSON.stringify({ healthy, durationMs: Math.round(ms), replicas: rows }, null, 2) + '\n');
  } else {
    process.stdout.write(renderStatus(rows, ms));
  }
  return healthy ? 0 : 1;
}

/** Status of HOSTS, all in parallel, over one Session (closed at the end). */
export async function collectStatus(inv: Inventory, hosts: Host[]): Promise<StatusRow[]> {
  const { Session } = await import('../engine/session.js');
  const session = new Session(inv, false, () => {});
  try {
    return await Promise.all(hosts.map((h) => hostStatus(session.handle(h))));
  } finally {
    await session.close();
  }
}

async function hostStatus(handle: HostHandle): Promise<StatusRow> {
  const h = handle.def;
  const row: StatusRow = {
    cluster: h.cluster,
    shard: h.shardName,
    replica: h.replicaName,
    host: h.name,
    address: h.connection === 'local' ? 'local' : h.ssh.address,
    reachable: false,
    service: 'unknown',
    healthy: false,
    problems: [],
  };
  const { statusCommand: svcCommand, parseServiceState } = await import('../../tasks/clickhouse/service.js');
  // One ssh probe: the service state, then the data dir's filesystem.
  try {
    const r = await handle.probe({ nothrow: true, timeoutMs: 20_000 })`${raw(svcCommand(handle.def))}; echo '--chops-df--'; df -P -T -B1 -- ${h.clickhouse.dataDir} 2>&1 | tail -n +2`;
    if (r.code === 255) throw new Error(r.stderr.trim() || 'ssh connection lost');
    const [svc, df] = r.stdout.split('--chops-df--\n');
    row.reachable = true;
    row.service = parseServiceState(svc ?? '');
    row.disk = parseDf(df ?? '');
    if (!row.disk && df?.trim()) row.problems.push(`df ${h.clickhouse.dataDir}: ${df.trim().split('\n')[0]}`);
  } catch (err) {
    row.reason = firstLine(err);
    row.problems.push(`unreachable over ssh: ${row.reason}`);
    return row;
  }
  if (row.service !== 'active') row.problems.push(`service ${h.clickhouse.service} is ${row.service}`);

  const { openChClient } = await import('../clickhouse/client.js');
  let client;
  try {
    client = await openChClient(handle);
    const [info, repl] = await Promise.all([
      client.query<{ version: string; uptime: number }>('SELECT version() AS version, uptime() AS uptime', { timeoutMs: 10_000 }),
      client.query<Record<string, unknown>>(
        'SELECT count() AS tables, sum(is_readonly) AS ro, sum(is_session_expired) AS expired, sum(queue_size) AS queue, max(absolute_delay) AS delay FROM system.replicas',
        { timeoutMs: 10_000 },
      ),
    ]);
    row.version = info[0]?.version;
    row.uptimeSeconds = Number(info[0]?.uptime);
    const s = repl[0] ?? {};
    row.replicatedTables = Number(s.tables ?? 0);
    row.readonlyTables = Number(s.ro ?? 0);
    row.queueSize = Number(s.queue ?? 0);
    row.maxDelaySeconds = Number(s.delay ?? 0);
    if (row.readonlyTables > 0) row.problems.push(`${row.readonlyTables} read-only replicated table(s)`);
    if (Number(s.expired ?? 0) > 0) row.problems.push(`${s.expired} table(s) with an expired ZooKeeper session`);
    if (row.queueSize > h.gates.maxQueueSize) row.problems.push(`replication queue ${row.queueSize} > ${h.gates.maxQueueSize}`);
    if (row.maxDelaySeconds > h.gates.maxDelaySeconds) row.problems.push(`replication delay ${row.maxDelaySeconds}s > ${h.gates.maxDelaySeconds}s`);
  } catch (err: any) {
    row.clickhouseError = err?.serverMessage && err?.kind === 'server' ? err.serverMessage : firstLine(err).replace(/^\S+: ClickHouse(?: \[[^\]]*\])?: /, '');
    row.problems.push(`clickhouse: ${row.clickhouseError}`);
  } finally {
    await client?.close();
  }
  row.healthy = row.problems.length === 0;
  return row;
}

/** The data line of `df -P -T -B1` (device, type, size, used, avail, capacity, mount). */
export function parseDf(text: string): DiskInfo | undefined {
  const line = text.split('\n').find((l) => /\s\d+%\s/.test(`${l} `));
  if (!line) return undefined;
  const f = line.trim().split(/\s+/);
  if (f.length < 7) return undefined;
  const [device, fsType, size, used, avail, cap] = f;
  return { device, fsType, mount: f.slice(6).join(' '), sizeBytes: Number(size), usedBytes: Number(used), availBytes: Number(avail), usePercent: Number(cap.replace('%', '')) };
}

export function renderStatus(rows: StatusRow[], ms?: number): string {
  const head = ['CLUSTER', 'SHARD', 'REPLICA', 'HOST', 'SSH', 'VERSION', 'UPTIME', 'SERVICE', 'RO', 'QUEUE', 'DELAY', 'DEVICE', 'FS', 'SIZE', 'USE%', 'HEALTH'];
  const v = (x: unknown, f: (y: any) => string = String) => (x === undefined || x === null || Number.isNaN(x) ? '-' : f(x));
  const table = rows.map((r) => [
    r.cluster,
    r.shard,
    r.replica,
    r.host,
    r.reachable ? 'yes' : 'no',
    v(r.version),
    v(r.uptimeSeconds, fmtUptime),
    r.reachable ? r.service : '-',
    v(r.readonlyTables),
    v(r.queueSize),
    v(r.maxDelaySeconds, (d) => `${d}s`),
    v(r.disk?.device),
    v(r.disk?.fsType),
    v(r.disk?.sizeBytes, fmtBytes),
    v(r.disk?.usePercent, (p) => `${p}%`),
    r.healthy ? 'ok' : 'UNHEALTHY',
  ]);
  let out = formatTable(head, table);
  const bad = rows.filter((r) => !r.healthy);
  if (bad.length) {
    out += '\n';
    for (const r of bad) out += `${r.host}: ${r.problems.join('; ')}\n`;
  }
  out += `\n${rows.length - bad.length}/${rows.length} replica(s) healthy${ms !== undefined ? ` (${(ms / 1000).toFixed(2)}s)` : ''}\n`;
  return out;
}

// Same as runs.ts's; a copy avoids loading the run store for `status`.
function formatTable(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(w[i])).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

function fmtUptime(s: number): string {
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

function fmtBytes(n: number): string {
  const u = ['B', 'K', 'M', 'G', 'T', 'P'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < u.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x >= 10 || i === 0 ? Math.round(x) : x.toFixed(1)}${u[i]}`;
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}
