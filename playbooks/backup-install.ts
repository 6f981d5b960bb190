// backup-install: put the backup agent on every node, scheduled by cron, its logs rotated.
// The schedules are checked with cron-parser before anything connects (a bad one: exit 2).
// One replica per shard is the active one (backup.active, else the first) and gets the
// schedule; the others get the same files with the cron lines commented out and an agent that
// refuses to run, so switching the active replica is a re-install. Rerun: every step unchanged.
import { definePlaybook } from '../src/engine/playbook.js';
import { renderTable } from '../src/format.js';
import { checkTools, shardSchedules, writeAgent, writeConfig, writeCron, writeDirs, writeLogrotate } from '../tasks/backup/install.js';

export default definePlaybook({
  name: 'backup-install',
  description: 'Install or update the clickhouse-backup agent, its config, cron schedule and logrotate on every node (inventory `backup:`)',
  params: [],
  phases: (_params, inventory) => {
    shardSchedules(inventory); // validates every schedule: exit 2 before any connection
    return [
      {
        name: 'install backup agent',
        scope: 'each',
        steps: [
          { name: 'check tools', run: checkTools }, //             flock, timeout, logrotate, clickhouse-backup --version, time zone
          { name: 'create directories', run: writeDirs }, //       log dir, state dir, /etc/clickhouse-backup
          { name: 'write clickhouse-backup config', run: writeConfig }, // 0600 root: the only file with secrets
          { name: 'install agent', run: writeAgent }, //            disabled on the replicas that are not active
          { name: 'check and install logrotate', run: writeLogrotate }, // logrotate -d on the node first
          { name: 'install cron schedule', run: writeCron }, //     last: nothing is scheduled before the rest is in place
        ],
      },
    ];
  },
  summary(results) {
    const rows = results
      .filter((r) => r.step === 'install cron schedule' && r.data)
      .map(
        (r) =>
          r.data as {
            host: string;
            shard: string;
            enabled: boolean;
            reason: string;
            full: string;
            diff: string;
            tz: string;
            next?: { full: string[]; diff: string[] };
          },
      )
      .filter((d) => d.enabled)
      .sort((a, b) => a.shard.localeCompare(b.shard))
      .map((d) => [d.shard, d.host, `${d.full}  →  ${d.next!.full.join(', ')}`, `${d.diff}  →  ${d.next!.diff.join(', ')}`]);
    if (!rows.length) return 'no active backup replica: nothing scheduled';
    return `Next runs per shard (node time zone):\n${renderTable(['SHARD', 'ACTIVE', 'FULL (next 3)', 'DIFF (next 3)'], rows)}`;
  },
});
