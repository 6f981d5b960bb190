// Block devices as lsblk sees them (JSON, sizes in bytes). A host without /sys/block (a container)
// gets an error string instead of a crash: "no disks" and "cannot list disks" are different facts.
import { defineFact } from '../../src/fact.js';

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

export type BlockDevices = { devices: BlockDevice[] } | { devices: []; error: string };

export function parseBlockDevices(stdout: string): BlockDevices {
  try {
    const devices = (JSON.parse(stdout || '{}').blockdevices ?? []) as BlockDevice[];
    // lsblk -b prints sizes as numbers; some versions print them as strings
    const fix = (d: BlockDevice): BlockDevice => ({ ...d, size: Number(d.size), ...(d.children ? { children: d.children.map(fix) } : {}) });
    return { devices: devices.map(fix) };
  } catch {
    return { devices: [], error: stdout.trim().split('\n')[0] || 'lsblk printed nothing' };
  }
}

export const blockDevices = defineFact({
  name: 'block devices',
  command: () => 'lsblk -J -b -o NAME,PATH,SIZE,TYPE,FSTYPE,MOUNTPOINT,PARTTYPE,SERIAL 2>&1 || true',
  parse: ({ stdout }) => parseBlockDevices(stdout),
});
