// The plain-text topology table of `chops inventory check`: what chops would touch, and how.

import type { Inventory } from './types.js';
import { hostPort } from './values.js';

export function describeTopology(inv: Inventory): string {
  const header = ['CLUSTER', 'SHARD', 'REPLICA', 'HOST', 'ADDRESS:PORT', 'USER', 'SUDO'];
  const rows = inv.hosts.map((h) => [
    h.cluster,
    h.shardName,
    h.replicaName,
    h.name,
    h.connection === 'local' ? 'local' : hostPort(h.ssh.address, h.ssh.port),
    h.connection === 'local' ? '-' : h.ssh.user,
    h.ssh.sudo ? 'yes' : 'no',
  ]);
  // A loop, not Math.max(...rows): spreading 130 000 rows overflows the call stack.
  const widths = header.map((h) => h.length);
  for (const r of rows) for (let i = 0; i < r.length; i++) if (r[i].length > widths[i]) widths[i] = r[i].length;
  const render = (r: string[]) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  const shards = inv.clusters.reduce((n, c) => n + c.shards.length, 0);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return [
    render(header),
    ...rows.map(render),
    '',
    `${plural(inv.clusters.length, 'cluster')}, ${plural(shards, 'shard')}, ${plural(inv.hosts.length, 'host')}`,
  ].join('\n');
}

/**
 * Hosts grouped by shard (cluster + shard), shards in first-seen order, replicas in replica order:
 * the order the runner works a rolling phase in, and the order diagrams draw it in.
 */
export function groupByShard<T extends { cluster: string; shard: unknown; replica: number }>(hosts: T[]): T[][] {
  const m = new Map<string, T[]>();
  for (const h of hosts) {
    const k = `${h.cluster}\0${String(h.shard)}`;
    if (!m.has(k)) m.set(k, []);
    m.get(k)!.push(h);
  }
  for (const list of m.values()) list.sort((a, b) => a.replica - b.replica);
  return [...m.values()];
}
