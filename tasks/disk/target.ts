// Which disk becomes the data volume. Pure choice (chooseTargetDisk, unit-tested on fixtures) and
// the steps that read the facts for it: the fstab check and the target disk.
import type { Step } from '../../src/engine/playbook.js';
import { ChopsError } from '../../src/errors.js';
import { formatBytes } from '../../src/format.js';
import { blkidProbe, describeSignatures, type Signatures } from '../../facts/disk/blkid.js';
import { dirSize } from '../../facts/disk/du.js';
import { fstabVerify } from '../../facts/disk/findmnt.js';
import { blockDevices, flatten, mountedBelow, usage, type Device } from '../../facts/disk/lsblk.js';
import { lvmReport, type LvmReport } from '../../facts/disk/lvm.js';
import { MEM, checkLvmName, type DiskParams } from './params.js';

export interface TargetChoice {
  disk: Device;
  /** The VG already exists on this disk: preparation was done (or begun) by an earlier run. */
  prepared: boolean;
  note: string;
}

export interface ChoiceInput {
  devices: Device[];
  lvm: LvmReport;
  /** blkid -p of every whole disk (path → signatures): what lsblk's udev view may miss. */
  signatures: Record<string, Signatures>;
  /** The requested disk, already resolved to /dev/NAME (symlinks followed). */
  disk?: string;
  force: boolean;
  vg: string;
  dataBytes: number;
  marginPercent: number;
}

/** The disk holding physical volume PV (the PV itself when it is a whole disk). */
function diskOf(devices: Device[], pv: string): Device | undefined {
  return devices.find((d) => d.type === 'disk' && flatten([d]).some((x) => x.path === pv));
}

/** Pure: decide the target disk or refuse with the reason and the fix. */
export function chooseTargetDisk(i: ChoiceInput): TargetChoice {
  const disks = i.devices.filter((d) => d.type === 'disk');
  const needed = Math.ceil(i.dataBytes * (1 + i.marginPercent / 100));
  const bigEnough = (d: Device) => {
    if (d.size < needed) {
      throw new ChopsError(
        `disk ${d.path} (${formatBytes(d.size)}) is too small: the data directory holds ${formatBytes(i.dataBytes)}, with the ${i.marginPercent}% margin ${formatBytes(needed)} are needed`,
        {
          hint: 'attach a bigger disk, or lower --disk-margin if you are sure',
        },
      );
    }
  };

  // An earlier run got as far as the volume group: that disk, and no other.
  const vgPvs = i.lvm.pvs.filter((p) => p.vg === i.vg);
  if (vgPvs.length > 0) {
    const owners = [...new Set(vgPvs.map((p) => diskOf(i.devices, p.name)?.path ?? `? (${p.name})`))];
    if (owners.length !== 1 || owners[0].startsWith('?')) {
      throw new ChopsError(`volume group ${i.vg} already exists on ${vgPvs.map((p) => p.name).join(', ')} (disks: ${owners.join(', ')})`, {
        hint: `choose another --vg, or remove the group if it is not in use (vgremove ${i.vg})`,
      });
    }
    const disk = disks.find((d) => d.path === owners[0])!;
    if (i.disk && i.disk !== disk.path) {
      throw new ChopsError(`volume group ${i.vg} already exists on ${disk.path}, not on --disk ${i.disk}`, {
        hint: `run with --disk ${disk.path}, or choose another --vg`,
      });
    }
    return { disk, prepared: true, note: `${disk.path}: volume group ${i.vg} is already there (${vgPvs.map((p) => p.name).join(', ')})` };
  }

  const contents = (d: Device) => [...usage(d), ...describeSignatures(i.signatures[d.path] ?? {}).map((s) => `${d.path} holds ${s}`)];

  if (i.disk) {
    const disk = flatten(i.devices).find((d) => d.path === i.disk);
    if (!disk) throw new ChopsError(`--disk ${i.disk}: no such block device (lsblk lists ${disks.map((d) => d.path).join(', ') || 'none'})`);
    if (disk.type !== 'disk')
      throw new ChopsError(`--disk ${i.disk} is a ${disk.type}, not a whole disk`, { hint: 'give the disk (e.g. /dev/vdb), chops partitions it' });
    if (disk.readOnly) throw new ChopsError(`--disk ${i.disk} is read-only`);
    const mounted = mountedBelow(disk);
    if (mounted.length)
      throw new ChopsError(`--disk ${i.disk} is in use: mounted ${mounted.join(', ')}`, {
        hint: 'chops never wipes a mounted disk, not even with --force-disk',
      });
    const active = flatten(disk.children).filter((c) => c.type !== 'part');
    if (active.length)
      throw new ChopsError(`--disk ${i.disk} is in use: ${active.map((c) => `${c.type} ${c.path}`).join(', ')}`, {
        hint: 'deactivate and remove those volumes first (vgchange -an, vgremove)',
      });
    const what = contents(disk);
    if (what.length && !i.force) {
      throw new ChopsError(`--disk ${i.disk} is not empty: ${what.join('; ')}`, { hint: 'check it holds nothing you need, then add --force-disk to wipe it' });
    }
    bigEnough(disk);
    return {
      disk,
      prepared: false,
      note: what.length
        ? `${disk.path} (${formatBytes(disk.size)}), will be wiped (--force-disk): ${what.join('; ')}`
        : `${disk.path} (${formatBytes(disk.size)}), empty`,
    };
  }

  const empty = disks.filter((d) => !d.readOnly && contents(d).length === 0);
  if (empty.length === 0) {
    throw new ChopsError(`no empty disk: every disk has partitions, a filesystem, an LVM signature or a mount (${disks.map((d) => d.path).join(', ')})`, {
      hint: 'attach a new disk, or name one with --disk (and --force-disk if it must be wiped)',
    });
  }
  if (empty.length > 1) {
    throw new ChopsError(`several empty disks, which one? ${empty.map((d) => `${d.path} (${formatBytes(d.size)})`).join(', ')}`, {
      hint: `name it: --disk ${empty[0].path}`,
    });
  }
  bigEnough(empty[0]);
  return { disk: empty[0], prepared: false, note: `${empty[0].path} (${formatBytes(empty[0].size)}), the only empty disk` };
}

/** The fstab the host boots from must already be sound: a bad line is found before we add one. */
export const checkFstabStep: Step<DiskParams> = {
  name: 'check fstab',
  async run({ host }) {
    const v = await host.fact(fstabVerify, '/etc/fstab');
    if (!v.ok) {
      throw new ChopsError(`${host.name}: /etc/fstab has errors; the host may not boot (findmnt --verify: ${v.summary}):\n  ${v.errors.join('\n  ')}`, {
        hint: 'fix or remove those lines (or add nofail to a line whose device is gone), check with `findmnt --verify`, then run again',
      });
    }
    return { changed: false, note: v.warnings.length ? `fine, ${v.warnings.length} warning(s): ${v.warnings.join('; ')}` : 'findmnt --verify: no errors' };
  },
};

export const findTargetDiskStep: Step<DiskParams> = {
  name: 'find target disk',
  async run({ host, params, memory }) {
    for (const [what, name] of [
      ['vg', params.vg],
      ['lv', params.lv],
    ] as const) {
      const bad = checkLvmName(what, name);
      if (bad) throw new ChopsError(bad);
    }
    const devices = await host.fact(blockDevices);
    const lvm = await host.fact(lvmReport);
    let disk: string | undefined;
    if (params.disk) {
      const r = await host.probe({ nothrow: true })`readlink -e -- ${params.disk}`;
      if (r.code !== 0)
        throw new ChopsError(`${host.name}: --disk ${params.disk} does not exist`, {
          hint: `lsblk lists: ${devices
            .filter((d) => d.type === 'disk')
            .map((d) => d.path)
            .join(', ')}`,
        });
      disk = r.stdout.trim();
    }
    const signatures: Record<string, Signatures> = {};
    for (const d of devices) if (d.type === 'disk' && (!disk || d.path === disk)) signatures[d.path] = await host.fact(blkidProbe, d.path);
    const size = await host.fact(dirSize, host.def.clickhouse.dataDir);
    const choice = chooseTargetDisk({
      devices,
      lvm,
      signatures,
      disk,
      force: !!params['force-disk'],
      vg: params.vg,
      dataBytes: size.bytes,
      marginPercent: params['disk-margin'],
    });
    memory.set(MEM.disk, choice.disk.path);
    return { changed: false, note: choice.note, data: { disk: choice.disk.path, size: choice.disk.size, prepared: choice.prepared, dataDirBytes: size.bytes } };
  },
};

/** The disk chosen by findTargetDiskStep (a later step of the same host). */
export function targetDisk(memory: { get<T>(k: string): T | undefined }): string {
  const d = memory.get<string>(MEM.disk);
  if (!d) throw new ChopsError('no target disk in this run\'s memory: the step "find target disk" must run first');
  return d;
}
