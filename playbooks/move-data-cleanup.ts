// move-data-cleanup: once move-data has verified a replica on its new volume, delete the old data
// directory it set aside (destructive: Type YES), then report `df -h` per host. A replica is
// cleaned only when it is really on the new volume, its server answers, and move-data left its
// verification record; anything else is refused with the reason.
import { definePlaybook } from '../src/engine/playbook.js';
import { ChopsError } from '../src/errors.js';
import { layoutOf, verifiedMarker } from '../tasks/datadir/params.js';
import { phaseOf, readSituation } from '../tasks/datadir/situation.js';
import { serviceState } from '../tasks/clickhouse/service.js';

interface Params {
  'old-dir'?: string;
  staging: string;
}

export default definePlaybook<Params>({
  name: 'move-data-cleanup',
  description: 'After move-data: delete the old data directory set aside on each verified replica (destructive), then df -h',
  params: [
    { name: 'old-dir', type: 'string', description: 'the old data directory move-data set aside (default DATA_DIR-tmp)' },
    { name: 'staging', type: 'string', default: '/mnt/chops-move-data', description: 'the staging point move-data used' },
  ],
  phases: () => [
    {
      name: 'cleanup',
      scope: 'each',
      steps: [
        {
          name: 'check the replica runs on its verified new volume',
          gate: true,
          run: async ({ host, params }) => {
            const l = layoutOf(host.def, params);
            const s = await readSituation(host, l);
            const ph = phaseOf(s);
            if (ph.phase !== 'swapped')
              throw new ChopsError(`${host.name}: not moved: ${ph.why}`, { hint: 'run move-data first; the old directory is kept until then' });
            if (!s.old.exists) return { changed: false, note: `${l.oldDir} already removed` };
            const st = await serviceState(host);
            if (st !== 'active')
              throw new ChopsError(`${host.name}: clickhouse-server is ${st}: not deleting the only other copy of its data while the server is not healthy`);
            const m = await host.probe({ nothrow: true })`cat -- ${verifiedMarker(l)}`;
            if (m.code !== 0)
              throw new ChopsError(`${host.name}: no verification record ${verifiedMarker(l)}: move-data did not finish verifying this replica`, {
                hint: '`chops resume` the move-data run first',
              });
            return { changed: false, note: `verified: ${m.stdout.trim()}` };
          },
        },
        {
          name: 'delete the old data directory',
          destructive: true,
          run: async ({ host, params }) => {
            const l = layoutOf(host.def, params);
            const s = await readSituation(host, l);
            if (!s.old.exists) return { changed: false, skipped: `${l.oldDir} does not exist` };
            if (s.old.mountpoint || s.old.volume) throw new ChopsError(`${host.name}: ${l.oldDir} is a mount point or the new volume: refusing to delete`);
            // --one-file-system: never follow into anything mounted below it.
            await host.$({ timeoutMs: 6 * 3600_000 })`rm -rf --one-file-system -- ${l.oldDir}`;
            await host.$`rm -f -- ${verifiedMarker(l)}`;
            return { note: `deleted ${l.oldDir}` };
          },
        },
        {
          name: 'df -h',
          run: async ({ host, params }) => {
            const l = layoutOf(host.def, params);
            const r = await host.probe`df -h -- ${l.dataDir} $(dirname -- ${l.oldDir})`;
            return { changed: false, note: r.stdout.trim().split('\n').slice(1).join(' | '), data: { df: r.stdout } };
          },
        },
      ],
    },
  ],
  summary(results) {
    const lines: string[] = [];
    for (const r of results) {
      const d = r.data as { df?: string };
      if (d?.df) for (const l of d.df.trimEnd().split('\n')) lines.push(`${r.host} | ${l}`);
    }
    return lines.join('\n') || undefined;
  },
});
