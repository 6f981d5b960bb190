// What a directory tree holds, summarised so two trees can be compared without listing them:
// counts by type, distinct inodes and their bytes and blocks (hard links counted once), and three
// digests: metadata (type, size, mode, owner, path), symlink targets, and the hard-link structure
// (each path mapped to the first path of its inode group, so inode numbers do not matter).
// Used before a move (size, free space needed) and as the identity proof after the final pass.
import { raw, sh } from '../../src/quote.js';
import { defineDatadirFact } from './define.js';

export interface TreeStats {
  dirs: number;
  /** Paths of regular files (a hard-linked file counts once per path). */
  files: number;
  symlinks: number;
  /** Sockets, fifos, devices. */
  other: number;
  /** Distinct regular-file inodes. */
  inodes: number;
  /** Paths beyond the first of their inode (files - inodes): what `rsync` without -H would duplicate. */
  extraLinks: number;
  /** Apparent bytes of the distinct inodes. */
  bytes: number;
  /** Allocated bytes (st_blocks × 512) of the distinct inodes: the space the data uses. */
  usedBytes: number;
  metaDigest: string;
  linkDigest: string;
  hardlinkDigest: string;
}

/** lost+found belongs to the filesystem, not to ClickHouse: left out on both sides. */
const PRUNE = `\\( -path ./lost+found -o -path ./.chops-new-volume \\) -prune -o`;

export const treeStats = defineDatadirFact<TreeStats, string>({
  name: 'tree stats',
  command: (dir) =>
    sh`cd -- ${dir} || exit 3
F() { find . -mindepth 1 ${raw(PRUNE)} "$@"; }
F -printf '%y %i %s %b\\n' | awk '
  { t[$1]++ }
  $1 == "f" && !($2 in seen) { seen[$2] = 1; n++; b += $3; u += $4 * 512 }
  END { printf "dirs=%d\\nfiles=%d\\nsymlinks=%d\\nother=%d\\ninodes=%d\\nbytes=%.0f\\nused=%.0f\\n", t["d"], t["f"], t["l"], NR - t["d"] - t["f"] - t["l"], n, b, u }'
printf 'meta=%s\\n' "$(F \\( -type d -printf 'd - %m %U %G %p\\n' \\) -o -printf '%y %s %m %U %G %p\\n' | LC_ALL=C sort | sha256sum | cut -c1-16)"
printf 'links=%s\\n' "$(F -type l -printf '%p\\t%l\\n' | LC_ALL=C sort | sha256sum | cut -c1-16)"
printf 'hardlinks=%s\\n' "$(F -type f -links +1 -printf '%i\\t%p\\n' | LC_ALL=C sort -t "$(printf '\\t')" -k2,2 | awk -F '\\t' '!($1 in g) { g[$1] = $2 } { print g[$1] "\\t" $2 }' | LC_ALL=C sort | sha256sum | cut -c1-16)"`,
  parse: ({ stdout, code, stderr }, dir) => parseTreeStats(stdout, code, stderr, dir),
  // A walk of a whole data directory: hours on a large one.
  timeoutMs: 3600_000,
});

export function parseTreeStats(stdout: string, code: number, stderr: string, dir: string): TreeStats {
  if (code !== 0) throw new Error(`cannot read the tree ${dir} (exit ${code}): ${stderr.trim().split('\n').pop() ?? ''}`);
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^([a-z]+)=(.*)$/.exec(line.trim());
    if (m) kv.set(m[1], m[2]);
  }
  const int = (k: string) => {
    const v = kv.get(k);
    if (v === undefined || !/^\d+$/.test(v))
      throw new Error(`tree stats of ${dir}: "${k}" missing or not a number in the output (${JSON.stringify(stdout.slice(0, 200))})`);
    return Number(v);
  };
  const digest = (k: string) => {
    const v = kv.get(k);
    if (!v || !/^[0-9a-f]{16}$/.test(v)) throw new Error(`tree stats of ${dir}: digest "${k}" missing`);
    return v;
  };
  const files = int('files');
  const inodes = int('inodes');
  return {
    dirs: int('dirs'),
    files,
    symlinks: int('symlinks'),
    other: int('other'),
    inodes,
    extraLinks: files - inodes,
    bytes: int('bytes'),
    usedBytes: int('used'),
    metaDigest: digest('meta'),
    linkDigest: digest('links'),
    hardlinkDigest: digest('hardlinks'),
  };
}

/** Differences between two trees that make them not the same data ([] = identical). */
export function compareTrees(a: TreeStats, b: TreeStats): string[] {
  const out: string[] = [];
  const keys: Array<[keyof TreeStats, string]> = [
    ['dirs', 'directories'],
    ['files', 'file paths'],
    ['symlinks', 'symlinks'],
    ['other', 'special files'],
    ['inodes', 'distinct files (inodes)'],
    ['extraLinks', 'hard links'],
    ['bytes', 'bytes'],
    ['metaDigest', 'names/sizes/modes/owners'],
    ['linkDigest', 'symlink targets'],
    ['hardlinkDigest', 'hard-link structure'],
  ];
  for (const [k, label] of keys) if (a[k] !== b[k]) out.push(`${label}: ${a[k]} ≠ ${b[k]}`);
  return out;
}
