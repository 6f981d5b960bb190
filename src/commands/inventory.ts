// `chops inventory check`: validate without connecting anywhere, then show the topology.
import { UsageError } from '../errors.js';
import { openInventory } from './common.js';

export async function inventoryCommand(action: string, flags: { inventory?: string; json?: boolean }): Promise<number> {
  if (action !== 'check') throw new UsageError(`unknown inventory action "${action}"`, { hint: 'use: chops inventory check' });
  const inv = await openInventory(flags);
  if (flags.json) {
    process.stdout.write(JSON.stringify({ path: inv.path, hash: inv.hash, hosts: inv.hosts.map((h) => ({ name: h.name, cluster: h.cluster, shard: h.shardName, replica: h.replicaName, address: h.ssh.address, port: h.ssh.port, user: h.ssh.user, connection: h.connection })) }, null, 2) + '\n');
    return 0;
  }
  const { describeTopology } = await import('../inventory/load.js');
  process.stdout.write(`${inv.path}: OK (${inv.hosts.length} hosts in ${inv.clusters.length} cluster(s))\n\n${describeTopology(inv)}\n`);
  return 0;
}
