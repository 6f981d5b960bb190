// `chops inventory check`: validate without connecting anywhere, then show the topology.
// The local SSH files (identity_file, known_hosts) are checked too, as warnings: the check often
// runs where the inventory is edited (a laptop, CI) rather than on the control machine that holds
// the keys. `plan`, `run`, `resume` and `status` refuse the same problems with exit 2.
import { UsageError } from '../errors.js';
import { printable, show } from '../inventory/values.js';
import { flagText, openInventory } from './common.js';

export async function inventoryCommand(action: string, flags: { inventory?: string; json?: boolean }): Promise<number> {
  if (action !== 'check') throw new UsageError(`unknown inventory action ${show(String(action))}`, { hint: 'use: chops inventory check' });
  flagText(flags as Record<string, unknown>, 'inventory', 'an inventory file');
  const inv = await openInventory(flags);
  const { credentialProblems } = await import('../transport/credentials.js');
  const warnings = await credentialProblems(inv.hosts);
  if (flags.json) {
    process.stdout.write(
      JSON.stringify(
        {
          path: inv.path,
          hash: inv.hash,
          warnings: warnings.map((w) => ({ host: w.host, where: w.where, message: w.message, hint: w.hint })),
          hosts: inv.hosts.map((h) => ({
            name: h.name,
            cluster: h.cluster,
            shard: h.shardName,
            replica: h.replicaName,
            address: h.ssh.address,
            port: h.ssh.port,
            user: h.ssh.user,
            connection: h.connection,
          })),
        },
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  const { describeTopology } = await import('../inventory/load.js');
  const path = printable(inv.path, { oneLine: true });
  for (const w of warnings.slice(0, 20))
    process.stderr.write(`warning: ${printable(w.where, { oneLine: true })}: host ${w.host}: ${w.message}\n    fix: ${w.hint}\n`);
  if (warnings.length > 20) process.stderr.write(`warning: ... and ${warnings.length - 20} more\n`);
  const note = warnings.length ? ` — ${warnings.length} warning(s) about this machine's SSH files: plan/run/status will refuse until they are fixed` : '';
  process.stdout.write(`${path}: OK (${inv.hosts.length} hosts in ${inv.clusters.length} cluster(s))${note}\n\n${describeTopology(inv)}\n`);
  return 0;
}
