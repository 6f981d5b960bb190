// `chops status`: one row per replica, all hosts asked in parallel: ssh reachability, service
// state and the data disk, ClickHouse version, uptime, read-only tables, queue and delay (over the
// host's ssh connection). Read through the same facts as the gates (facts/), with the same
// definition of a healthy replica (facts/clickhouse/replicas.ts). A host that cannot be reached is
// a row, not a crash. Exit 0 when every replica is healthy, 1 when any is not, 2 for usage errors.
import type { Host, Inventory } from '../inventory/types.js';
import type { HostHandle } from '../host.js';
import { assertCredentials, openInventory, selectHosts, type GlobalFlags } from './common.js';
import { readQueryFact } from '../fact.js';
import { formatBytes, formatDuration, renderTable } from '../format.js';
import { clickhouseService } from '../../facts/system/service.js';
import { diskUsage, type DiskUsage } from '../../facts/system/df.js';
import { replicaProblems, replicaRows, replicaRowsArg, shardProblems, summarizeReplicas } from '../../facts/clickhouse/replicas.js';
import { mixedVersions, serverInfo } from '../../facts/clickhouse/server.js';
import { features, hasFastReplicaMetrics, serverCapabilities } from '../../facts/clickhouse/capabilities.js';
import { metricsProblems, replicaMetrics, type ReplicaMetrics } from '../../facts/clickhouse/replica-metrics.js';
import { installedClickhousePackages } from '../../facts/system/packages.js';
import { serverProcess } from '../../facts/system/server-process.js';

export type DiskInfo = DiskUsage;

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
  /** The installed clickhouse-server (or -common-static) package version, when dpkg knows one. */
  package?: string;
  /** The server maps files replaced since its start (a package upgraded, not restarted yet): the first of them. */
  restartPending?: string;
  uptimeSeconds?: number;
  replicatedTables?: number;
  readonlyTables?: number;
  queueSize?: number;
  maxDelaySeconds?: number;
  disk?: DiskInfo;
  /** ClickHouse could not be queried (the reason). */
  clickhouseError?: string;
  /** --verbose: what the capability probe found (feature → present). */
  capabilities?: Record<string, boolean>;
  /** Server-wide replica metrics, where the server recomputes them often (every table, also those the chops user cannot see). */
  metrics?: ReplicaMetrics;
  /** Tables whose replicas are not all active, as seen from this replica (names the inactive ones where the server says). */
  shardView?: string[];
  healthy: boolean;
  problems: string[];
}

export async function statusCommand(flags: GlobalFlags): Promise<number> {
  const inv = await openInventory(flags);
  const hosts = await selectHosts(inv, flags);
  await assertCredentials(inv, hosts);
  const t0 = performance.now();
  const rows = await collectStatus(inv, hosts, { verbose: Boolean((flags as { verbose?: boolean }).verbose) });
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
export async function collectStatus(inv: Inventory, hosts: Host[], opts: { verbose?: boolean } = {}): Promise<StatusRow[]> {
  const { Session } = await import('../engine/session.js');
  const session = new Session(inv, false, () => {});
  try {
    return await Promise.all(hosts.map((h) => hostStatus(session.handle(h), opts)));
  } finally {
    await session.close();
  }
}

async function hostStatus(handle: HostHandle, opts: { verbose?: boolean }): Promise<StatusRow> {
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
  try {
    const [service, disk, pkgs, proc] = await Promise.all([
      handle.fact(clickhouseService),
      handle.fact(diskUsage, h.clickhouse.dataDir),
      handle.fact(installedClickhousePackages).catch(() => undefined), // not a package installation: no column
      handle.fact(serverProcess).catch(() => undefined),
    ]);
    if (proc?.deleted.length) row.restartPending = proc.deleted[0];
    row.reachable = true;
    row.service = service;
    const main = pkgs?.installed.find((p) => p.name === 'clickhouse-server') ?? pkgs?.installed[0];
    if (main) row.package = main.version;
    if ('error' in disk) row.problems.push(`df ${h.clickhouse.dataDir}: ${disk.error}`);
    else {
      row.disk = disk;
      if (!disk.exists) row.problems.push(`data dir ${h.clickhouse.dataDir} does not exist (disk shown: its parent's)`);
    }
  } catch (err) {
    row.reason = firstLine(err);
    row.problems.push(`unreachable over ssh: ${row.reason}`);
    return row;
  }
  if (row.service !== 'active') row.problems.push(`service ${h.clickhouse.service} is ${row.service}`);

  const { openChClient } = await import('../clickhouse/client.js');
  let client: import('../clickhouse/client.js').ChClient | undefined;
  try {
    client = await openChClient(handle);
    // The probe decides what to read (the same facts, and paths, as the gates).
    const caps = await serverCapabilities(client);
    const [info, rows, metrics] = await Promise.all([
      readQueryFact(handle, client, serverInfo),
      readQueryFact(handle, client, replicaRows, replicaRowsArg(caps)),
      hasFastReplicaMetrics(caps) ? readQueryFact(handle, client, replicaMetrics) : undefined,
    ]);
    row.version = info.version;
    row.uptimeSeconds = info.uptimeSeconds;
    if (opts.verbose) row.capabilities = features(caps);
    if (metrics) row.metrics = metrics;
    const shard = shardProblems(rows);
    if (shard.length) row.shardView = shard;
    const s = summarizeReplicas(rows);
    row.replicatedTables = s.tables;
    row.readonlyTables = s.readonly.length;
    row.queueSize = s.queueSize;
    row.maxDelaySeconds = s.maxDelay;
    // The gates' definition of a healthy replica, with the inventory's thresholds; the server-wide
    // metrics add what the per-table rows cannot show (tables hidden from the chops user).
    const problems = replicaProblems(rows, h.gates).map((p) => p.text);
    if (!problems.length && metrics) problems.push(...metricsProblems(metrics, h.gates).map((p) => `server-wide: ${p}`));
    row.problems.push(...problems);
  } catch (err: any) {
    row.clickhouseError = err?.serverMessage && err?.kind === 'server' ? err.serverMessage : firstLine(err).replace(/^\S+: ClickHouse(?: \[[^\]]*\])?: /, '');
    row.problems.push(`clickhouse: ${row.clickhouseError}`);
  } finally {
    await client?.close();
  }
  row.healthy = row.problems.length === 0;
  return row;
}

export function renderStatus(rows: StatusRow[], ms?: number): string {
  const head = [
    'CLUSTER',
    'SHARD',
    'REPLICA',
    'HOST',
    'SSH',
    'VERSION',
    'PACKAGE',
    'UPTIME',
    'SERVICE',
    'RO',
    'QUEUE',
    'DELAY',
    'DEVICE',
    'FS',
    'SIZE',
    'USE%',
    'HEALTH',
  ];
  const v = (x: unknown, f: (y: any) => string = String) => (x === undefined || x === null || Number.isNaN(x) ? '-' : f(x));
  const table = rows.map((r) => [
    r.cluster,
    r.shard,
    r.replica,
    r.host,
    r.reachable ? 'yes' : 'no',
    v(r.version),
    v(r.package),
    v(r.uptimeSeconds, fmtUptime),
    r.reachable ? r.service : '-',
    v(r.readonlyTables),
    v(r.queueSize),
    v(r.maxDelaySeconds, (d) => `${d}s`),
    v(r.disk?.device),
    v(r.disk?.fsType),
    v(r.disk?.sizeBytes, formatBytes),
    v(r.disk?.usePercent, (p) => `${p}%`),
    r.healthy ? 'ok' : 'UNHEALTHY',
  ]);
  let out = renderTable(head, table);
  const bad = rows.filter((r) => !r.healthy);
  // A shard mixes versions when its servers report different version()s or run different package versions.
  const mixed = mixedVersions(
    rows.map((r) => ({
      host: { name: r.host, cluster: r.cluster, shardName: r.shard },
      version: r.version && `${r.version}${r.package ? ` (package ${r.package})` : ''}`,
    })),
  );
  const pending = rows.filter((r) => r.restartPending);
  if (mixed.length || pending.length) out += '\n';
  for (const m of mixed) out += `mixed versions in ${m}\n`;
  for (const r of pending) out += `${r.host}: restart pending: the server runs files replaced since its start (${r.restartPending})\n`;
  if (bad.length) {
    out += '\n';
    for (const r of bad) out += `${r.host}: ${r.problems.join('; ')}\n`;
  }
  const shards = rows.filter((r) => r.shardView?.length);
  if (shards.length) {
    out += '\n';
    for (const r of shards) out += `${r.host} sees ${r.shardView!.join('; ')}\n`;
  }
  out += `\n${rows.length - bad.length}/${rows.length} replica(s) healthy${ms !== undefined ? ` (${formatDuration(ms)})` : ''}\n`;
  const verbose = rows.filter((r) => r.capabilities);
  if (verbose.length) {
    out += `\ncapabilities (probed on each server):\n`;
    for (const r of verbose)
      out += `  ${r.host}: ${Object.entries(r.capabilities!)
        .map(([k, v]) => `${k} ${v ? 'yes' : 'no'}`)
        .join(', ')}\n`;
  }
  return out;
}

function fmtUptime(s: number): string {
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}
