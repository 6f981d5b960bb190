// Block devices as lsblk sees them (udev's view): disks, their partitions and what sits on them.
import { ChopsError } from '../../src/errors.js';
import { defineFact } from '../../src/fact.js';
import { sh } from '../../src/quote.js';

export interface Device {
  name: string;
  path: string;
  size: number;
  type: string; // disk, part, lvm, loop, rom, crypt, ...
  fstype: string | null; // ext4, LVM2_member, swap, ...
  uuid: string | null;
  mountpoints: string[];
  parttype: string | null; // "0x8e" (dos) or a GPT type GUID
  readOnly: boolean;
  serial: string | null;
  children: Device[];
}

export const LSBLK_COLUMNS = 'NAME,PATH,SIZE,TYPE,FSTYPE,UUID,MOUNTPOINTS,PARTTYPE,RO,SERIAL';

function toDevice(d: any, where: string): Device {
  if (!d || typeof d.name !== 'string') throw new ChopsError(`lsblk: a device without a name in ${where}`);
  const mps: unknown = d.mountpoints ?? (d.mountpoint !== undefined ? [d.mountpoint] : []);
  const size = typeof d.size === 'number' ? d.size : Number(d.size);
  if (!Number.isFinite(size)) throw new ChopsError(`lsblk: device ${d.name} has no byte size (${JSON.stringify(d.size)}): was -b given?`);
  return {
    name: d.name,
    path: typeof d.path === 'string' ? d.path : `/dev/${d.name}`,
    size,
    type: String(d.type ?? ''),
    fstype: d.fstype || null,
    uuid: d.uuid || null,
    mountpoints: (Array.isArray(mps) ? mps : []).filter((m): m is string => typeof m === 'string' && m !== ''),
    parttype: d.parttype || null,
    readOnly: d.ro === true || d.ro === '1' || d.ro === 1,
    serial: d.serial || null,
    children: Array.isArray(d.children) ? d.children.map((c: any) => toDevice(c, `${where} > ${d.name}`)) : [],
  };
}

/** Pure: lsblk -J -b output → the device tree. Refuses anything else (a gate never guesses). */
export function parseLsblk(stdout: string): Device[] {
  let j: any;
  try {
    j = JSON.parse(stdout);
  } catch {
    throw new ChopsError(`lsblk printed no JSON: ${stdout.trim().slice(0, 200) || '(nothing)'}`, {
      hint: 'is this a container without block devices? Disk preparation needs a real or virtual machine',
    });
  }
  if (!j || !Array.isArray(j.blockdevices)) throw new ChopsError('lsblk JSON has no "blockdevices" list');
  return j.blockdevices.map((d: any) => toDevice(d, 'blockdevices'));
}

/** Every device of the tree, depth first (a disk, then its partitions, then their LVs). */
export function flatten(devs: Device[]): Device[] {
  return devs.flatMap((d) => [d, ...flatten(d.children)]);
}

/** Is anything on this device or below it: a partition, a signature, a mount, a holder? */
export function usage(d: Device): string[] {
  const why: string[] = [];
  if (d.fstype) why.push(`${d.path} has a ${d.fstype} signature`);
  if (d.mountpoints.length) why.push(`${d.path} is mounted at ${d.mountpoints.join(', ')}`);
  for (const c of d.children) {
    why.push(`${d.path} has ${c.type === 'part' ? 'partition' : c.type} ${c.path}`);
  }
  return why;
}

/** Mounted anywhere on this device or below it (never wiped, even with --force-disk). */
export function mountedBelow(d: Device): string[] {
  return flatten([d]).flatMap((x) => x.mountpoints.map((m) => `${x.path} at ${m}`));
}

export const blockDevices = defineFact({
  name: 'block devices',
  command: (_: void) => sh`lsblk -J -b -o ${LSBLK_COLUMNS}`,
  parse: ({ stdout, stderr, code }) => {
    if (code !== 0)
      throw new ChopsError(`lsblk exited ${code}: ${stderr.trim().slice(0, 300)}`, { hint: 'disk preparation needs util-linux lsblk and /sys/block' });
    return parseLsblk(stdout);
  },
});
