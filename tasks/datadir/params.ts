// Parameters of move-data / move-data-cleanup and the layout they give each host.
import type { ParamSpec } from '../../src/engine/playbook.js';
import type { Host } from '../../src/inventory/types.js';
import { GATE_PARAMS, type GateParams } from '../clickhouse/gate-params.js';
import { DISK_PARAMS, type DiskParams } from '../disk/index.js';
import type { Layout } from '../../facts/datadir/situation.js';

export interface MoveParams extends GateParams, DiskParams {
  copy: 'online' | 'offline';
  volume: 'prepare' | 'existing';
  'old-dir'?: string;
  staging: string;
  bwlimit?: string;
  'max-passes': number;
  'converged-mb': number;
  'checksum-kb': number;
  'backup-check': boolean;
  'backup-max-age': number;
  /** Tests only: fail the final pass after it ran (proves the rollback). */
  'inject-failure'?: string;
  [k: string]: unknown;
}

export const MOVE_PARAMS: ParamSpec[] = [
  {
    name: 'copy',
    type: 'choice',
    choices: ['online', 'offline'],
    default: 'online',
    description: "online: copy while the server runs, stop only for the final pass; offline: the runbook's stop-then-copy (for comparison)",
  },
  {
    name: 'volume',
    type: 'choice',
    choices: ['prepare', 'existing'],
    default: 'prepare',
    description: 'prepare: partition/LVM/mkfs/fstab first (tasks/disk); existing: use the fstab entry that already names the new volume for the data directory',
  },
  {
    name: 'old-dir',
    type: 'string',
    description: 'where the old data directory is set aside (same filesystem; default DATA_DIR-tmp, e.g. /var/lib/clickhouse-tmp)',
  },
  { name: 'staging', type: 'string', default: '/mnt/chops-move-data', description: 'where the new volume is mounted while it is filled' },
  {
    name: 'bwlimit',
    type: 'string',
    description: 'rsync --bwlimit for the passes while the server runs (e.g. 100m = 100 MB/s); the final pass is never throttled',
  },
  { name: 'max-passes', type: 'int', default: 5, description: 'live passes at most before the stop' },
  { name: 'converged-mb', type: 'int', default: 64, description: 'stop live passes once one copies at most this many MiB' },
  { name: 'checksum-kb', type: 'int', default: 64, description: 'with the server stopped, compare files up to this size by checksum (small mutable files)' },
  {
    name: 'backup-check',
    type: 'boolean',
    default: true,
    description: 'refuse unless every shard has a good backup newer than --backup-max-age (--no-backup-check skips it, said in the run log)',
  },
  { name: 'backup-max-age', type: 'duration', default: 36 * 3600_000, description: 'how old the last good backup of a shard may be' },
  {
    name: 'inject-failure',
    type: 'string',
    description: 'testing only: "final-pass" fails the final pass after it copied (the rollback must put the replica back)',
  },
  ...DISK_PARAMS,
  ...GATE_PARAMS,
];

export function layoutOf(h: Host, p: Pick<MoveParams, 'old-dir' | 'staging'>): Layout {
  const dataDir = h.clickhouse.dataDir.replace(/\/+$/, '') || '/';
  return { dataDir, oldDir: (p['old-dir'] ?? `${dataDir}-tmp`).replace(/\/+$/, ''), staging: p.staging.replace(/\/+$/, '') };
}

/** Where move-data leaves the proof that a replica was verified on its new volume (cleanup needs it). */
export const verifiedMarker = (l: Layout) => `${l.oldDir}.chops-verified.json`;
