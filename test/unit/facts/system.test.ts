// The system facts' parsers on captured output (Debian 12, the nspawn lab and a QEMU guest).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDfLine, parseDiskUsage } from '../../../facts/system/df.js';
import { parseBootId } from '../../../facts/system/boot-id.js';
import { parseBlockDevices } from '../../../facts/system/block-devices.js';
import { parseMounts } from '../../../facts/system/mounts.js';
import { parseOs } from '../../../facts/system/os.js';
import { parseServiceState } from '../../../facts/system/service.js';

const DF = `@exists yes
Filesystem     Type     1-blocks        Used   Available Capacity Mounted on
/dev/mapper/vg-ch ext4 1073741824000 536870912000 536870912000      50% /var/lib/clickhouse
`;

test('df: the data line of df -P -B1 -T, and whether the directory exists', () => {
  assert.deepEqual(parseDiskUsage(DF, '/var/lib/clickhouse'), {
    path: '/var/lib/clickhouse',
    exists: true,
    device: '/dev/mapper/vg-ch',
    fsType: 'ext4',
    mount: '/var/lib/clickhouse',
    sizeBytes: 1073741824000,
    usedBytes: 536870912000,
    availBytes: 536870912000,
    usePercent: 50,
  });
  // the directory does not exist yet: its nearest parent's figures, flagged
  const parent = parseDiskUsage(
    `@exists no\nFilesystem Type 1-blocks Used Available Capacity Mounted on\noverlay overlay 52521566208 21474836480 28345298944 44% /\n`,
    '/srv/ch/new',
  );
  assert.equal('error' in parent, false);
  assert.equal((parent as any).exists, false);
  assert.equal((parent as any).mount, '/');
  // a mount point with a space (df prints it as is, last column)
  assert.equal(parseDfLine('/dev/vdb1 ext4 100 50 50 50% /mnt/my disk\n')?.mount, '/mnt/my disk');
  // df failed: the error, not a crash and not zeros
  assert.deepEqual(parseDiskUsage('@exists yes\ndf: /x: Permission denied\n', '/x'), { path: '/x', error: 'df: /x: Permission denied' });
  assert.deepEqual(parseDiskUsage('', '/x'), { path: '/x', error: 'df printed nothing' });
  assert.equal(parseDfLine('df: /nope: No such file or directory\n'), undefined);
});

test('boot id: a UUID, anything else refused', () => {
  assert.equal(parseBootId('3f9c2d64-1c5e-4b8e-9a57-0a6a9f1b2c3d\n'), '3f9c2d64-1c5e-4b8e-9a57-0a6a9f1b2c3d');
  assert.throws(() => parseBootId(''), /cannot read the boot id/);
  assert.throws(() => parseBootId('cat: /proc/sys/kernel/random/boot_id: No such file or directory'), /cannot read the boot id/);
});

test('block devices: lsblk -J -b, and a container without /sys/block', () => {
  const json = JSON.stringify({
    blockdevices: [
      {
        name: 'vda',
        path: '/dev/vda',
        size: 4294967296,
        type: 'disk',
        fstype: null,
        mountpoint: null,
        parttype: null,
        serial: null,
        children: [{ name: 'vda1', path: '/dev/vda1', size: '4293918720', type: 'part', fstype: 'ext4', mountpoint: '/', parttype: '0x83', serial: null }],
      },
      { name: 'vdb', path: '/dev/vdb', size: 4294967296, type: 'disk', fstype: null, mountpoint: null, parttype: null, serial: null },
    ],
  });
  const r = parseBlockDevices(json);
  assert.equal('error' in r, false);
  assert.deepEqual(
    r.devices.map((d) => [d.name, d.size, d.children?.map((c) => [c.name, c.size])]),
    [
      ['vda', 4294967296, [['vda1', 4293918720]]],
      ['vdb', 4294967296, undefined],
    ],
  );
  assert.deepEqual(parseBlockDevices('lsblk: failed to access sysfs directory: /sys/dev/block: No such file or directory\n'), {
    devices: [],
    error: 'lsblk: failed to access sysfs directory: /sys/dev/block: No such file or directory',
  });
  assert.deepEqual(parseBlockDevices('{"blockdevices": []}'), { devices: [] });
});

test('mounts: /proc/self/mounts with octal escapes', () => {
  const m = parseMounts('overlay / overlay rw,relatime,lowerdir=/a 0 0\n/dev/vdb1 /mnt/my\\040disk ext4 rw,noatime 0 0\n');
  assert.deepEqual(m, [
    { source: 'overlay', target: '/', fstype: 'overlay', options: 'rw,relatime,lowerdir=/a' },
    { source: '/dev/vdb1', target: '/mnt/my disk', fstype: 'ext4', options: 'rw,noatime' },
  ]);
});

test('os: PRETTY_NAME and uname -r', () => {
  assert.deepEqual(parseOs('Debian GNU/Linux 12 (bookworm)\n6.1.0-18-amd64\n'), { os: 'Debian GNU/Linux 12 (bookworm)', kernel: '6.1.0-18-amd64' });
});

test('service state: systemctl is-active words', () => {
  assert.equal(parseServiceState('active\n'), 'active');
  assert.equal(parseServiceState('activating\n'), 'active');
  assert.equal(parseServiceState('inactive\n'), 'inactive');
  assert.equal(parseServiceState('failed\n'), 'failed');
  assert.equal(parseServiceState(''), 'unknown');
});
