// What the facts playbook reports about a host, read through the shared facts (facts/system/):
// the same readings `chops status` and the gates use.
import type { HostHandle } from '../../src/host.js';
import { osInfo } from '../../facts/system/os.js';
import { bootId } from '../../facts/system/boot-id.js';
import { blockDevices, type BlockDevice } from '../../facts/system/block-devices.js';
import { mounts, type Mount } from '../../facts/system/mounts.js';
import { diskUsage, type DiskUsageFact } from '../../facts/system/df.js';
import { clickhouseService, type ServiceState } from '../../facts/system/service.js';

export type { BlockDevice } from '../../facts/system/block-devices.js';

export interface HostFacts {
  os: string;
  kernel: string;
  bootId: string;
  disks: BlockDevice[];
  /** lsblk's complaint when it could not list devices (e.g. a container without /sys/block). */
  disksError?: string;
  mounts: Mount[];
  /** df of the data dir (of its nearest existing parent when it does not exist yet). */
  dataDir: DiskUsageFact;
  clickhouseService: ServiceState;
}

export async function gatherFacts(h: HostHandle): Promise<HostFacts> {
  const [os, boot, disks, mnt, dataDir, service] = await Promise.all([
    h.fact(osInfo),
    h.fact(bootId),
    h.fact(blockDevices),
    h.fact(mounts),
    h.fact(diskUsage, h.def.clickhouse.dataDir),
    h.fact(clickhouseService),
  ]);
  return {
    os: os.os,
    kernel: os.kernel,
    bootId: boot,
    disks: disks.devices,
    ...('error' in disks ? { disksError: disks.error } : {}),
    mounts: mnt,
    dataDir,
    clickhouseService: service,
  };
}
