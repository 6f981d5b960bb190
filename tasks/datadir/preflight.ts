// Preflight of a move on one host, on real facts: what the tree holds, which configured paths
// point into it, what else is mounted inside it, and whether the volume has room. The judgement
// is pure (judgePreflight) so every refusal has a fixture test.
import type { ConfigPaths } from '../../facts/datadir/config-paths.js';
import { type Mount, mountsInside, norm } from '../../facts/datadir/mounts.js';
import type { TreeStats } from '../../facts/datadir/tree.js';
import type { Layout } from '../../facts/datadir/situation.js';

export interface PreflightInput {
  layout: Layout;
  config: ConfigPaths;
  mounts: Mount[];
  tree: TreeStats;
}

export interface PreflightVerdict {
  refusals: string[];
  /** Configured paths and where they end up (for the plan and the run log). */
  notes: string[];
}

const inside = (p: string, dir: string) => norm(p) === norm(dir) || norm(p).startsWith(`${norm(dir)}/`);

export function judgePreflight(i: PreflightInput): PreflightVerdict {
  const { layout: l, config: c } = i;
  const refusals: string[] = [];
  const notes: string[] = [];
  if (!c.path)
    refusals.push(`the server's <path> is not in its configuration (${c.sources.join(', ') || 'no file read'}): cannot tell which directory it uses`);
  else if (norm(c.path) !== norm(l.dataDir))
    refusals.push(
      `the server's <path> is ${c.path}, the inventory's data_dir is ${l.dataDir}: moving the wrong directory would change nothing (fix clickhouse.data_dir)`,
    );
  const named: Array<[string, string | undefined]> = [
    ['tmp_path', c.tmpPath],
    ['user_files_path', c.userFilesPath],
    ['access_control_path', c.accessControlPath],
    ['format_schema_path', c.formatSchemaPath],
    ['keeper log_storage_path', c.keeperLogPath],
    ['keeper snapshot_storage_path', c.keeperSnapshotPath],
    ...c.disks.map((d) => [`disk "${d.name}" path`, d.path] as [string, string]),
  ];
  for (const [what, p] of named) {
    if (!p) continue;
    if (inside(p, l.oldDir) || inside(p, l.staging))
      refusals.push(`${what} ${p} points into ${inside(p, l.oldDir) ? l.oldDir : l.staging}, which the move uses`);
    else if (inside(p, l.dataDir)) notes.push(`${what} ${p}: inside the data directory, moves with it`);
    else notes.push(`${what} ${p}: outside the data directory, stays where it is`);
  }
  for (const m of mountsInside(i.mounts, l.dataDir)) {
    const disk = c.disks.find((d) => inside(d.path, m.target) || inside(m.target, d.path));
    refusals.push(
      `${m.target} (${m.source}, ${m.fstype}) is mounted inside the data directory${disk ? ` (disk "${disk.name}")` : ''}: the copy would take another disk's data onto the new volume and the swap would hide it; move that mount out of ${l.dataDir} first`,
    );
  }
  if (inside(l.oldDir, l.dataDir) || inside(l.staging, l.dataDir)) refusals.push(`--old-dir and --staging must be outside ${l.dataDir}`);
  if (norm(l.oldDir) === norm(l.staging)) refusals.push('--old-dir and --staging must differ');
  notes.push(
    `tree: ${i.tree.files} file paths, ${i.tree.inodes} distinct files, ${i.tree.extraLinks} extra hard links, ${i.tree.symlinks} symlinks, ${i.tree.dirs} directories`,
  );
  return { refusals, notes };
}

/** Room on the volume: what the tree uses (plus MARGIN), minus what a previous pass already put there. */
export function judgeSpace(treeUsed: number, volume: { avail: number; used: number }, margin = 0.05): string | undefined {
  const need = Math.ceil(treeUsed * (1 + margin));
  const room = volume.avail + volume.used;
  if (room < need) return `the new volume has ${room} bytes for ${treeUsed} bytes of data (+${Math.round(margin * 100)}% margin)`;
  return undefined;
}
