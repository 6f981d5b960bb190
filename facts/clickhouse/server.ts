// Which ClickHouse answers and for how long it has been up.
import { defineQueryFact } from '../../src/fact.js';
import { ChopsError } from '../../src/errors.js';
import type { Host } from '../../src/inventory/types.js';

export interface ServerInfo {
  version: string;
  uptimeSeconds: number;
}

export function parseServerInfo(rows: Record<string, unknown>[]): ServerInfo {
  const r = rows[0];
  if (!r || typeof r.version !== 'string' || r.version === '')
    throw new ChopsError(`SELECT version(), uptime() returned ${JSON.stringify(rows).slice(0, 200)}`);
  return { version: r.version, uptimeSeconds: Number(r.uptime) };
}

export const serverInfo = defineQueryFact({
  name: 'server version',
  query: () => 'SELECT version() AS version, uptime() AS uptime',
  parse: (rows) => parseServerInfo(rows),
});

/**
 * Shards whose replicas report different versions, as "shard lab/01: ch1 18.16.1, ch2 19.1.0"
 * (hosts that did not answer are left out). Pure; shared with `chops status`.
 */
export function mixedVersions(rows: Array<{ host: Pick<Host, 'name' | 'cluster' | 'shardName'>; version?: string }>): string[] {
  const byShard = new Map<string, Array<{ name: string; version: string }>>();
  for (const r of rows) {
    if (!r.version) continue;
    const k = `${r.host.cluster}/${r.host.shardName}`;
    if (!byShard.has(k)) byShard.set(k, []);
    byShard.get(k)!.push({ name: r.host.name, version: r.version });
  }
  const out: string[] = [];
  for (const [k, list] of byShard) {
    if (new Set(list.map((x) => x.version)).size > 1) out.push(`shard ${k}: ${list.map((x) => `${x.name} ${x.version}`).join(', ')}`);
  }
  return out;
}
