// The runbook's middle: one partition of type 8e, a physical volume, a volume group, a logical
// volume over all of it. Each step reads LVM's and udev's view first and skips what is done.
import type { Step } from '../../src/engine/playbook.js';
import { ChopsError } from '../../src/errors.js';
import { blockDevices, type Device } from '../../facts/disk/lsblk.js';
import { lvmReport } from '../../facts/disk/lvm.js';
import { MEM, type DiskParams } from './params.js';
import { targetDisk } from './target.js';

/** The kernel's name for partition 1: vdb → vdb1, nvme0n1 → nvme0n1p1 (a name ending in a digit). */
export function firstPartitionPath(disk: string): string {
  return /\d$/.test(disk) ? `${disk}p1` : `${disk}1`;
}

const LVM_PARTTYPES = new Set(['0x8e', 'e6d6d379-f507-44c2-a23c-238f2a3df928']); // dos 8e, GPT "Linux LVM"

/** Pure: is DISK already carrying our single LVM partition? */
export function lvmPartition(disk: Device): Device | undefined {
  const parts = disk.children.filter((c) => c.type === 'part');
  return parts.length === 1 && LVM_PARTTYPES.has((parts[0].parttype ?? '').toLowerCase()) ? parts[0] : undefined;
}

export const partitionDiskStep: Step<DiskParams> = {
  name: 'partition disk',
  destructive: true,
  async run({ host, params, memory }) {
    const path = targetDisk(memory);
    const disk = (await host.fact(blockDevices)).find((d) => d.path === path);
    if (!disk) throw new ChopsError(`${host.name}: disk ${path} is gone (lsblk no longer lists it)`);
    const have = lvmPartition(disk);
    if (have) {
      memory.set(MEM.partition, have.path);
      return { changed: false, skipped: `${have.path} is already a Linux LVM (8e) partition` };
    }
    if (disk.children.length && !params['force-disk']) {
      throw new ChopsError(`${host.name}: ${path} has partitions (${disk.children.map((c) => c.path).join(', ')}) that are not ours`, {
        hint: 'add --force-disk to wipe them',
      });
    }
    // One primary partition over the whole disk (sfdisk aligns it at 1 MiB), type 8e = Linux LVM.
    // --wipe / --wipe-partitions: old signatures on the disk or where the new partition starts
    // would otherwise make pvcreate, udev or blkid see a ghost filesystem.
    if (params['force-disk']) await host.$`wipefs -a -- ${path}`;
    await host.$`printf 'label: dos\\ntype=8e\\n' | sfdisk --wipe always --wipe-partitions always -- ${path}`;
    await host.$`udevadm settle`;
    const predicted = firstPartitionPath(path);
    const part = await host.whenApplied(predicted, async () => {
      const again = (await host.fact(blockDevices)).find((d) => d.path === path);
      const p = again && lvmPartition(again);
      if (!p)
        throw new ChopsError(`${host.name}: sfdisk ran but lsblk shows no 8e partition on ${path} yet`, {
          hint: `check \`lsblk ${path}\`; run again when udev has caught up`,
        });
      return p.path;
    });
    memory.set(MEM.partition, part);
    return { changed: true, note: `${part}: type 8e (Linux LVM), whole disk` };
  },
};

function partitionOf(memory: { get<T>(k: string): T | undefined }): string {
  const p = memory.get<string>(MEM.partition);
  if (!p) throw new ChopsError('no partition in this run\'s memory: the step "partition disk" must run first');
  return p;
}

export const createPhysicalVolumeStep: Step<DiskParams> = {
  name: 'create physical volume',
  destructive: true,
  async run({ host, params, memory }) {
    const part = partitionOf(memory);
    const pv = (await host.fact(lvmReport)).pvs.find((p) => p.name === part);
    if (pv) {
      if (pv.vg && pv.vg !== params.vg)
        throw new ChopsError(`${host.name}: ${part} is already a physical volume of volume group ${pv.vg}`, { hint: `use --vg ${pv.vg} or another disk` });
      return { changed: false, skipped: `${part} is already a physical volume` };
    }
    await host.$`pvcreate -y -- ${part}`;
    return { changed: true, note: `pvcreate ${part}` };
  },
};

export const createVolumeGroupStep: Step<DiskParams> = {
  name: 'create volume group',
  async run({ host, params, memory }) {
    const part = partitionOf(memory);
    const lvm = await host.fact(lvmReport);
    if (lvm.vgs.some((v) => v.name === params.vg)) {
      const pvs = lvm.pvs.filter((p) => p.vg === params.vg).map((p) => p.name);
      if (!pvs.includes(part))
        throw new ChopsError(`${host.name}: volume group ${params.vg} exists on ${pvs.join(', ') || 'other devices'}, not on ${part}`, {
          hint: 'choose another --vg',
        });
      return { changed: false, skipped: `volume group ${params.vg} is already on ${part}` };
    }
    await host.$`vgcreate -- ${params.vg} ${part}`;
    return { changed: true, note: `vgcreate ${params.vg} ${part}` };
  },
};

export const createLogicalVolumeStep: Step<DiskParams> = {
  name: 'create logical volume',
  async run({ host, params, memory }) {
    const find = async () => (await host.fact(lvmReport)).lvs.find((l) => l.vg === params.vg && l.name === params.lv);
    const lv = await find();
    const fallback = `/dev/${params.vg}/${params.lv}`;
    if (lv) {
      memory.set(MEM.device, lv.path || fallback);
      return { changed: false, skipped: `logical volume ${params.vg}/${params.lv} exists (${lv.path})` };
    }
    await host.$`lvcreate -y -n ${params.lv} -l 100%FREE -- ${params.vg}`;
    await host.$`udevadm settle`;
    const device = await host.whenApplied(fallback, async () => (await find())?.path || fallback);
    memory.set(MEM.device, device);
    return { changed: true, note: `${device}: 100% of ${params.vg}` };
  },
};

/** The logical volume's device path remembered by createLogicalVolumeStep. */
export function volumeDevice(memory: { get<T>(k: string): T | undefined }): string {
  const d = memory.get<string>(MEM.device);
  if (!d) throw new ChopsError('no logical volume in this run\'s memory: the step "create logical volume" must run first');
  return d;
}
