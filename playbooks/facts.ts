// facts: what is this host? OS, kernel, disks, mounts, free space under the data dir, and the
// state of the ClickHouse service. Read-only; safe on production at any time.
import { definePlaybook } from '../src/engine/playbook.js';
import { gatherFacts, type HostFacts } from '../tasks/system/facts.js';

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
      const disks = f.disks.filter((d) => d.type === 'disk').map((d) => `${d.name}:${gib(d.size)}${d.children?.length ? `(${d.children.length} parts)` : d.fstype ? `(${d.fstype})` : '(empty)'}`).join(' ') || (f.disksError ? 'n/a' : 'none');
      const dd = f.dataDir.sizeBytes !== undefined ? `${f.dataDir.filesystem} ${gib(f.dataDir.availBytes!)} free of ${gib(f.dataDir.sizeBytes!)} (${f.dataDir.usePercent}% used)` : `? (${f.dataDir.error})`;
      return [r.host, f.os, f.kernel, disks, dd, f.clickhouseService];
    });
    const head = ['HOST', 'OS', 'KERNEL', 'DISKS', 'DATA DIR', 'CLICKHOUSE'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
    return [head, ...rows].map((r) => r.map((c, i) => String(c).padEnd(w[i])).join('  ').trimEnd()).join('\n');
  },
});

function gib(bytes: number): string {
  return bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(1)}G` : `${Math.round(bytes / (1 << 20))}M`;
}
