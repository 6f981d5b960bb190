// The topology cross-check (not a gate): before any change, the inventory must describe the
// cluster the servers say they form (system.macros and system.clusters of every node).
import type { RunContext, StepContext, StepResult } from '../../src/engine/playbook.js';
import type { Host } from '../../src/inventory/types.js';
import { ChopsError } from '../../src/errors.js';
import { chClient } from '../../src/clickhouse/client.js';
import { serverCapabilities } from '../../facts/clickhouse/capabilities.js';
import { ClickHouseError } from '../../src/clickhouse/errors.js';
import { sql } from '../../src/clickhouse/sql.js';
import { errorValue } from './gates/poll.js';
import { readQueryFact } from '../../src/fact.js';
import { keeperState } from '../../facts/clickhouse/keeper.js';
import { mixedVersions, serverInfo } from '../../facts/clickhouse/server.js';

export interface TopologyFinding {
  host: string;
  message: string;
}

/**
 * Compare the inventory with what the servers say, for EVERY inventory host of the cluster(s)
 * being worked on (not only --limit): each server's macros (shard, replica) must match its
 * inventory entry, and its system.clusters entry for the cluster must have the inventory's shard
 * count and replicas per shard. Nodes are identified by macros (18.16's is_local is per shard).
 * Any mismatch throws a ChopsError listing all of them. Hosts that cannot be asked are listed in
 * the note (requireAll: fail instead). Meant for a `once` step at the start of a playbook.
 */
export async function checkTopology(ctx: StepContext, opts: { requireAll?: boolean } = {}): Promise<StepResult> {
  const run = ctx.run;
  const clusters = run.inventory.clusters.filter((c) => run.selected.some((s) => s.cluster === c.name));
  const hosts = clusters.flatMap((c) => c.shards.flatMap((s) => s.replicas));
  const results = await Promise.all(hosts.map((h) => topologyOf(run, h)));
  const mismatches: string[] = [];
  const unverified: TopologyFinding[] = [];
  const clusterFindings = new Map<string, string[]>();
  for (const [i, h] of hosts.entries()) {
    const r = results[i];
    if ('error' in r) {
      unverified.push({ host: h.name, message: r.error });
      continue;
    }
    const shard = r.macros.shard;
    const replica = r.macros.replica;
    if (shard !== h.shardName || replica !== h.replicaName) {
      mismatches.push(
        `inventory says ${h.name} is shard ${h.shardName} replica ${h.replicaName}, the server's macros say shard ${shard ?? '(no shard macro)'} replica ${replica ?? '(no replica macro)'}`,
      );
    }
    const cluster = clusters.find((c) => c.name === h.cluster)!;
    const want = cluster.shards.map((s) => s.replicas.length);
    let finding: string | undefined;
    if (r.clusterShards.length === 0) {
      finding = `the server has no cluster "${h.cluster}" in system.clusters (remote_servers)`;
    } else if (r.clusterShards.length !== want.length || r.clusterShards.some((n, j) => n !== want[j])) {
      finding = `system.clusters says cluster ${h.cluster} has ${describeShards(r.clusterShards)}, the inventory has ${describeShards(want)}`;
    }
    if (finding) {
      if (!clusterFindings.has(finding)) clusterFindings.set(finding, []);
      clusterFindings.get(finding)!.push(h.name);
    }
  }
  for (const [finding, names] of clusterFindings) mismatches.push(`${names.join(', ')}: ${finding}`);
  // A host that does not answer cannot be compared, and is noted rather than refused: the
  // per-replica gates refuse to stop its peers and fail its own "idle" check, so an unverified
  // host is never changed and never loses a peer because of this.
  if (opts.requireAll) for (const u of unverified) mismatches.push(`${u.host}: cannot check: ${u.message}`);
  if (mismatches.length) {
    throw new ChopsError(`topology mismatch between the inventory and the servers:\n  - ${mismatches.join('\n  - ')}`, {
      hint: "fix the inventory (shard `name`, `replica_name`, shard membership) or the servers' <macros>/<remote_servers>; chops does not work on a cluster whose layout it cannot trust",
    });
  }
  const checked = hosts.length - unverified.length;
  // Embedded Keeper members are one group across the run (tasks/clickhouse/gates/keeper.ts): say which hosts they are.
  const keeperHosts = hosts.filter((_, i) => !('error' in results[i]) && (results[i] as HostTopology).keeper).map((h) => h.name);
  const shards = clusters.reduce((a, c) => a + c.shards.length, 0);
  // Mixed versions in a shard are normal during an upgrade (and a resumed one): reported, not refused.
  const mixed = mixedVersions(hosts.map((h, i) => ({ host: h, version: 'error' in results[i] ? undefined : (results[i] as HostTopology).version })));
  for (const m of mixed) run.emit({ type: 'warning', text: `mixed versions in ${m}` });
  return {
    changed: false,
    note: `inventory matches the servers: ${checked}/${hosts.length} replica(s) checked, ${shards} shard(s) in ${clusters.map((c) => c.name).join(', ')}${keeperHosts.length ? `; embedded Keeper on ${keeperHosts.join(', ')} (one of them down at a time)` : ''}${mixed.length ? `; mixed versions in ${mixed.join('; ')}` : ''}${unverified.length ? `; NOT checked: ${unverified.map((u) => `${u.host} (${u.message})`).join('; ')}` : ''}`,
    data: {
      checked: hosts.filter((_, i) => !('error' in results[i])).map((h) => h.name),
      unverified,
      keeperHosts,
      versions: Object.fromEntries(
        hosts.flatMap((h, i) => ('error' in results[i] || !(results[i] as HostTopology).version ? [] : [[h.name, (results[i] as HostTopology).version]])),
      ),
      mixed,
    },
  };
}

function describeShards(replicasPerShard: number[]): string {
  return `${replicasPerShard.length} shard(s) with ${replicasPerShard.join('/')} replicas`;
}

interface HostTopology {
  macros: Record<string, string | undefined>;
  /** Replica count per shard_num (index 0 = shard 1) of the host's cluster in system.clusters. */
  clusterShards: number[];
  /** Runs an embedded ClickHouse Keeper (facts/clickhouse/keeper.ts). */
  keeper: boolean;
  /** version(), when the server said */
  version?: string;
}

async function topologyOf(run: RunContext, h: Host): Promise<HostTopology | { error: string }> {
  try {
    const client = await chClient(run, h);
    const [macros, clusterRows, keeper, info] = await Promise.all([
      client.query<{ macro: string; substitution: string }>(`SELECT macro, substitution FROM system.macros`, { timeoutMs: 10_000 }),
      client.query<{ shard_num: number; replicas: string }>(
        sql`SELECT shard_num, count() AS replicas FROM system.clusters WHERE cluster = ${h.cluster} GROUP BY shard_num ORDER BY shard_num`,
        { timeoutMs: 10_000 },
      ),
      readQueryFact(run.handle(h), client, keeperState),
      // for the mixed-versions report only: a server that does not say is not a topology problem
      readQueryFact(run.handle(h), client, serverInfo).catch(() => undefined),
      // the capability probe the gates need, here in the preflight (all hosts at once) rather
      // than on the first replica's path; a failure is the gates' to report
      serverCapabilities(client, run.emit).catch(() => undefined),
    ]);
    const m: Record<string, string> = {};
    for (const r of macros) m[r.macro] = r.substitution;
    const clusterShards: number[] = [];
    for (const r of clusterRows) clusterShards[Number(r.shard_num) - 1] = Number(r.replicas);
    for (let i = 0; i < clusterShards.length; i++) clusterShards[i] ??= 0;
    return { macros: m, clusterShards, keeper: keeper.member, version: info?.version };
  } catch (err) {
    return { error: err instanceof ClickHouseError ? errorValue(err) : (err as Error).message.split('\n')[0] };
  }
}
