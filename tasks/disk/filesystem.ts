// mkfs.ext4 on the new logical volume, unless it already carries our filesystem.
import type { Step } from '../../src/engine/playbook.js';
import { ChopsError } from '../../src/errors.js';
import { blkidProbe } from '../../facts/disk/blkid.js';
import { lvmReport } from '../../facts/disk/lvm.js';
import { MEM, type DiskParams } from './params.js';
import { volumeDevice } from './volume.js';

export const UUID_PLACEHOLDER = '<new-filesystem-uuid>'; // no blanks: it appears in an fstab line

export const makeFilesystemStep: Step<DiskParams> = {
  name: 'make filesystem',
  destructive: true,
  async run({ host, params, memory }) {
    const device = volumeDevice(memory);
    // The LV may not exist yet (the plan of a fresh disk): then there is no filesystem either.
    const exists = (await host.fact(lvmReport)).lvs.some((l) => l.vg === params.vg && l.name === params.lv);
    const sig = exists ? await host.fact(blkidProbe, device) : {};
    if (sig.TYPE === 'ext4' && sig.UUID) {
      memory.set(MEM.uuid, sig.UUID);
      return { changed: false, skipped: `${device} already holds ext4 UUID=${sig.UUID}` };
    }
    if (sig.TYPE && !params['force-disk']) {
      throw new ChopsError(`${host.name}: ${device} already holds ${sig.TYPE}`, { hint: 'add --force-disk to replace it with ext4' });
    }
    await host.$`mkfs.ext4 -q -F -- ${device}`;
    await host.$`udevadm settle`;
    const uuid = await host.whenApplied(UUID_PLACEHOLDER, async () => {
      const s = await host.fact(blkidProbe, device);
      if (s.TYPE !== 'ext4' || !s.UUID) throw new ChopsError(`${host.name}: mkfs.ext4 ran but blkid sees no ext4 UUID on ${device} (${JSON.stringify(s)})`);
      return s.UUID;
    });
    memory.set(MEM.uuid, uuid);
    return { changed: true, note: `${device}: ext4 UUID=${uuid}` };
  },
};
