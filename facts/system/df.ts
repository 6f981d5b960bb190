// Free space of the filesystem holding a directory (the ClickHouse data dir): `df -P -B1 -T` on
// the directory, or on its nearest existing parent when it does not exist (yet). Used by
// `chops status`, the facts playbook and move-data's preflight.
import { defineFact } from '../../src/fact.js';
import { sh } from '../../src/quote.js';

export interface DiskUsage {
  /** The directory asked about. */
  path: string;
  /** False when PATH does not exist and the figures are those of its nearest existing parent. */
  exists: boolean;
  device: string;
  fsType: string;
  /** Mount point of the filesystem. */
  mount: string;
  sizeBytes: number;
  usedBytes: number;
  availBytes: number;
  usePercent: number;
}

export type DiskUsageFact = DiskUsage | { path: string; error: string };

/** The data line of `df -P -B1 -T` (device, type, size, used, avail, capacity, mount), or undefined. */
export function parseDfLine(text: string): Omit<DiskUsage, 'path' | 'exists'> | undefined {
  const line = text.split('\n').find((l) => /^\S+\s+\S+\s+\d+\s+\d+\s+\d+\s+\d+%\s+\S/.test(l.trim()));
  if (!line) return undefined;
  const f = line.trim().split(/\s+/);
  const [device, fsType, size, used, avail, cap] = f;
  return {
    device,
    fsType,
    mount: f.slice(6).join(' '),
    sizeBytes: Number(size),
    usedBytes: Number(used),
    availBytes: Number(avail),
    usePercent: Number(cap.replace('%', '')),
  };
}

/** Output of the command below: `@exists yes|no`, then df's header and data line (or its error). */
export function parseDiskUsage(stdout: string, path: string): DiskUsageFact {
  const exists = /^@exists yes$/m.test(stdout);
  const df = parseDfLine(stdout);
  if (!df)
    return {
      path,
      error:
        stdout
          .replace(/^@exists \w+\n?/m, '')
          .trim()
          .split('\n')
          .pop() || 'df printed nothing',
    };
  return { path, exists, ...df };
}

export const diskUsage = defineFact({
  name: 'disk usage',
  command: (path: string) =>
    sh`d=${path}; if [ -e "$d" ]; then echo '@exists yes'; else echo '@exists no'; fi; while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname -- "$d"); done; df -P -B1 -T -- "$d" 2>&1`,
  parse: ({ stdout }, path) => parseDiskUsage(stdout, path),
  timeoutMs: 20_000,
});
