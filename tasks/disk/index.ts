// Disk preparation for moving the ClickHouse data directory onto a new LVM volume — the first
// part of the operator's runbook, as steps a playbook composes (see docs/disk-preparation-api.md):
//   prepareDiskSteps      scope 'each', every selected host in parallel, before any server stops
//   enableDataMountSteps  in the swap, after `mount <dataDir>`: mount at boot + require the mount
export { DISK_PARAMS, MEM, type DiskParams } from './params.js';
export { checkFstabStep, findTargetDiskStep, chooseTargetDisk } from './target.js';
export { partitionDiskStep, createPhysicalVolumeStep, createVolumeGroupStep, createLogicalVolumeStep } from './volume.js';
export { makeFilesystemStep } from './filesystem.js';
export { addFstabEntryStep, enableFstabEntryStep, stageFstabEntry, dataDirLine } from './fstab.js';
export { requireMountStep, removeDropIn, dropInPath } from './dropin.js';
export { mountEmptyDataDirStep } from './mount.js';

import type { HostHandle } from '../../src/host.js';
import type { HostMemory, Step } from '../../src/engine/playbook.js';
import type { DiskParams } from './params.js';
import { checkFstabStep, findTargetDiskStep } from './target.js';
import { partitionDiskStep, createPhysicalVolumeStep, createVolumeGroupStep, createLogicalVolumeStep } from './volume.js';
import { makeFilesystemStep } from './filesystem.js';
import { addFstabEntryStep, enableFstabEntryStep, stageFstabEntry } from './fstab.js';
import { requireMountStep, removeDropIn } from './dropin.js';

export const prepareDiskSteps: Step<DiskParams>[] = [
  checkFstabStep, //            findmnt --verify: the table the host boots from has no error now
  findTargetDiskStep, //        the named disk, or the only empty one; big enough; empty unless --force-disk
  partitionDiskStep, //         sfdisk: one partition, type 8e; udevadm settle        (destructive)
  createPhysicalVolumeStep, //  pvcreate -y                                          (destructive)
  createVolumeGroupStep, //     vgcreate <vg>
  createLogicalVolumeStep, //   lvcreate -y -n <lv> -l 100%FREE
  makeFilesystemStep, //        mkfs.ext4                                            (destructive)
  addFstabEntryStep, //         UUID=... <dataDir> ext4 defaults,noatime,nofail,...,noauto 0 2
];

export const enableDataMountSteps: Step<DiskParams>[] = [
  enableFstabEntryStep, //      drop noauto: the volume is mounted at every boot
  requireMountStep, //          RequiresMountsFor=<dataDir> for clickhouse-server; daemon-reload
];

/** Undo enableDataMountSteps in one go (a swap rollback): drop-in removed, fstab entry staged again. */
export async function disableDataMount(host: HostHandle, params: DiskParams, memory: HostMemory, runId?: string): Promise<void> {
  await removeDropIn(host);
  await stageFstabEntry(host, params, memory, runId);
}
