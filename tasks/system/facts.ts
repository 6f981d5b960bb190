// Host facts: one read-only probe (a handful of cheap commands in one round trip) and a pure
// parser, pyinfra-style, so the parser is tested on fixtures without a host.
import type { HostHandle } from '../../src/host.js';
import { raw, shq } from '../../src/quote.js';
import { statusCommand, parseServiceState, type ServiceState } from '../clickhouse/service.js';

export interface BlockDevice {
  name: string;
  path?: string;
  size: number;
  type: string;
  fstype?: string | null;
  mountpoint?: string | null;
  parttype?: string | null;
  serial?: string | null;
  children?: BlockDevice[];
}

export interface HostFacts {
  os: string;
  kernel: string;
  bootId: string;
  disks: BlockDevice[];
  /** lsblk's complaint when it could not list devices (e.g. a container without /sys/block). */
  disksError?: string;
  mounts: Array<{ source: string; target: string; fstype: string; options: string }>;
  dataDir: { path: string; filesystem?: string; sizeBytes?: number; usedBytes?: number; availBytes?: number; usePercent?: number; mountpoint?: string; error?: string };
  clickhouseService: ServiceState;
}

export function factsCommand(h: HostHandle): string {
  const dataDir = h.def.clickhouse.dataDir;
  return [
    `echo @@os; (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") || uname -s`,
    `echo @@kernel; uname -r`,
    `echo @@boot; cat /proc/sys/kernel/random/boot_id`,
    `echo @@lsblk; lsblk -J -b -o NAME,PATH,SIZE,TYPE,FSTYPE,MOUNTPOINT,PARTTYPE,SERIAL 2>&1 || true`,
    `echo @@mounts; cat /proc/self/mounts`,
    // df on the data dir, or on its nearest existing parent (the dir may not exist yet)
    `echo @@df; d=${shq(dataDir)}; while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done; df -P -B1 -T "$d" 2>&1 | tail -n 1`,
    `echo @@service; ${statusCommand(h.def)}`,
  ].join('\n');
}

export function parseFacts(out: string, dataDir: string): HostFacts {
  const sec: Record<string, string> = {};
  let cur = '';
  for (const line of out.split('\n')) {
    const m = /^@@(\w+)$/.exec(line);
    if (m) {
      cur = m[1];
      sec[cur] = '';
    } else if (cur) sec[cur] += line + '\n';
  }
  let disks: BlockDevice[] = [];
  let disksError: string | undefined;
  try {
    disks = (JSON.parse(sec.lsblk || '{}').blockdevices ?? []) as BlockDevice[];
  } catch {
    disksError = (sec.lsblk ?? '').trim() || 'lsblk printed nothing';
  }
  const mounts = (sec.mounts ?? '')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [source, target, fstype, options] = l.split(' ');
      return { source, target: unescapeMount(target ?? ''), fstype, options };
    });
  const df = (sec.df ?? '').trim().split(/\s+/);
  const dataDirFacts: HostFacts['dataDir'] =
    df.length >= 7 && /^\d+$/.test(df[2])
      ? { path: dataDir, filesystem: df[1], sizeBytes: Number(df[2]), usedBytes: Number(df[3]), availBytes: Number(df[4]), usePercent: Number(df[5].replace('%', '')), mountpoint: df.slice(6).join(' ') }
      : { path: dataDir, error: (sec.df ?? '').trim() };
  return {
    os: (sec.os ?? '').trim(),
    kernel: (sec.kernel ?? '').trim(),
    bootId: (sec.boot ?? '').trim(),
    disks,
    ...(disksError ? { disksError } : {}),
    mounts,
    dataDir: dataDirFacts,
    clickhouseService: parseServiceState(sec.service ?? ''),
  };
}

/** /proc/mounts escapes spaces and friends as octal (\040). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

export async function gatherFacts(h: HostHandle): Promise<HostFacts> {
  const r = await h.probe`${raw(factsCommand(h))}`;
  return parseFacts(r.stdout, h.def.clickhouse.dataDir);
}
