// The plain-text topology table of `chops inventory check`: what chops would touch, and how.

import type { Inventory } from './types.js';

export function describeTopology(inv: Inventory): string {
  const header = ['CLUSTER', 'SHARD', 'REPLICA', 'HOST', 'ADDRESS:PORT', 'USER', 'SUDO'];
  const rows = inv.hosts.map((h) => [
    h.cluster,
    h.shardName,
    h.replicaName,
    h.name,
    h.connection === 'local' ? 'local' : `${h.ssh.address}:${h.ssh.port}`,
    h.connection === 'local' ? '-' : h.ssh.user,
    h.ssh.sudo ? 'yes' : 'no',
  ]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i].length)));
  const render = (r: string[]) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
  const shards = inv.clusters.reduce((n, c) => n + c.shards.length, 0);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return [
    render(header),
    ...rows.map(render),
    '',
    `${plural(inv.clusters.length, 'cluster')}, ${plural(shards, 'shard')}, ${plural(inv.hosts.length, 'host')}`,
  ].join('\n');
}
