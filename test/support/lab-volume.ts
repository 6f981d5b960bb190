// The "new volume" of a move in the nspawn ClickHouse lab. Lab containers have no block devices
// (test/lab/lab.sh), so a real partition/LVM/ext4 volume exists only in the QEMU guests
// (test/vm, branch mdisk). Here the volume is a filesystem of its own: a tmpfs mounted by the
// test at /mnt/chops-lab-disk inside the container (never unmounted during the move, so its
// content survives every unmount/remount chops does), and the volume is its directory `vol`,
// named in /etc/fstab as a bind entry for the data directory — what `--volume existing` uses.
// It differs from the old data directory's filesystem (the container's overlayfs) as a new disk
// does: another st_dev, no rename or hard link across, its own free space (the tmpfs size).
// KIND 'disk' backs it with a directory of the container's own filesystem instead (for the
// benchmark: copies at disk speed rather than memory speed; then the bind mount is the only
// boundary, which is still a mount boundary for rename and hard links).
import { type TestLab as ChLab, labSh } from './lab.js';

export const LAB_DISK = '/mnt/chops-lab-disk';

export async function prepareLabVolume(lab: ChLab, host: string, opts: { kind?: 'tmpfs' | 'disk'; size?: string } = {}): Promise<void> {
  const mountIt =
    opts.kind === 'disk'
      ? `mkdir -p ${LAB_DISK}`
      : `mkdir -p ${LAB_DISK} && { mountpoint -q ${LAB_DISK} || mount -t tmpfs -o size=${opts.size ?? '1g'},mode=0755 chops-lab-disk ${LAB_DISK}; }`;
  await labSh(
    lab,
    host,
    `set -e; ${mountIt}; mkdir -p ${LAB_DISK}/vol; mkdir -p ${LAB_DISK}/vol/lost+found
grep -q ' /var/lib/clickhouse ' /etc/fstab || echo '${LAB_DISK}/vol /var/lib/clickhouse none bind 0 0' >> /etc/fstab`,
  );
}
