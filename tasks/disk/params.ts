// Parameters and per-host memory keys of disk preparation (shared by move-data and prepare-disk).
import type { ParamSpec } from '../../src/engine/playbook.js';

export interface DiskParams {
  /** Target disk (/dev/vdb, /dev/disk/by-id/...). Absent: the only empty disk. */
  disk?: string;
  vg: string;
  lv: string;
  'force-disk'?: boolean;
  'fstab-options': string;
  /** Percent by which the disk must exceed the data directory's size. */
  'disk-margin': number;
}

export const DISK_PARAMS: ParamSpec[] = [
  { name: 'disk', type: 'string', description: 'target disk (default: the only disk with no partition, filesystem, LVM signature or mount)' },
  { name: 'vg', type: 'string', default: 'clickhouse', description: 'LVM volume group to create' },
  { name: 'lv', type: 'string', default: 'data', description: 'LVM logical volume to create (100% of the group)' },
  {
    name: 'force-disk',
    type: 'boolean',
    default: false,
    description: 'wipe a target disk that holds partitions or signatures (never a mounted or active one)',
  },
  {
    name: 'fstab-options',
    type: 'string',
    default: 'defaults,noatime',
    description: 'mount options of the fstab entry (nofail and a 30 s device timeout are always added)',
  },
  { name: 'disk-margin', type: 'int', default: 20, description: "percent by which the disk must exceed the data directory's size" },
];

/** Per-host memory (ctx.memory) written by the disk steps, read by later steps, phases and a resumed run. */
export const MEM = {
  disk: 'move-data.disk',
  partition: 'move-data.partition',
  device: 'move-data.device',
  uuid: 'move-data.uuid',
  fstabLine: 'move-data.fstabLine',
} as const;

/** LVM names end up in device paths and dm names: keep them to what lvm(8) accepts, and sane. */
export function checkLvmName(what: string, name: string): string | undefined {
  if (!/^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,63}$/.test(name) || name === '.' || name === '..') {
    return `--${what} ${JSON.stringify(name)}: an LVM name is 1-64 characters of A-Z a-z 0-9 + _ . - (not starting with -)`;
  }
  return undefined;
}
