// facts: what is this host? OS, kernel, disks, mounts, free space under the data dir, and the
// state of the ClickHouse service. Read-only; safe on production at any time.
import { definePlaybook } from '../src/engine/playbook.js';
import { gatherFacts, type HostFacts } from '../tasks/system/facts.js';
import { formatBytes, renderTable } from '../src/format.js';

export default definePlaybook({
  name: 'facts',
  description: 'Gather per-host facts: OS, kernel, disks (lsblk), mounts, data-dir free space, ClickHouse service state',
  params: [],
  phases: () => [
    {
      name: 'gather facts',
      scope: 'each',
      steps: [
        {
          name: 'gather facts',
          description: 'OS, kernel, lsblk, mounts, data-dir free space, service state (read-only)',
          run: async ({ host }) => ({ changed: false, data: await gatherFacts(host) }),
        },
      ],
    },
  ],
  summary(results) {
    const rows = results.map((r) => {
      const f = r.data as HostFacts;
      const disks =
        f.disks
          .filter((d) => d.type === 'disk')
          .map((d) => `${d.name}:${formatBytes(d.size)}${d.children?.length ? `(${d.children.length} parts)` : d.fstype ? `(${d.fstype})` : '(empty)'}`)
          .join(' ') || (f.disksError ? 'n/a' : 'none');
      const dd =
        'error' in f.dataDir
          ? `? (${f.dataDir.error})`
          : `${f.dataDir.fsType} ${formatBytes(f.dataDir.availBytes)} free of ${formatBytes(f.dataDir.sizeBytes)} (${f.dataDir.usePercent}% used)`;
      return [r.host, f.os, f.kernel, disks, dd, f.clickhouseService];
    });
    return renderTable(['HOST', 'OS', 'KERNEL', 'DISKS', 'DATA DIR', 'CLICKHOUSE'], rows).trimEnd();
  },
});
