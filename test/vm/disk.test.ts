// Disk preparation on a real (virtual) machine: `chops run prepare-disk` against a QEMU guest with
// two empty disks — real sfdisk, LVM, mkfs.ext4, fstab, mount and systemd.
//   flock /run/chops-heavy.lock node --import tsx --test test/vm/disk.test.ts   (root; needs `npm run build`)
// One guest, the tests in order (each builds on the state the previous one left): refusals first
// (nothing may change), then the plan, the preparation and the rerun. The reboots that follow a
// preparation (the mount persists; a removed volume keeps the server down) are in
// test/vm/full/disk-reboots.test.ts (`npm run test:vm:full`): two TCG reboots cost ~3 minutes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIR, diskHarness } from './disk-harness.js';
import { type Guest, type Lab, startGuests } from './guests.js';

const BUILD_TIMEOUT = 30 * 60_000; // before(): may have to build the image first

describe('prepare-disk in a QEMU guest (real partitioning, LVM, ext4, fstab)', () => {
  let lab: Lab;
  let g: Guest;
  const { sh, run, show, snapshot } = diskHarness(() => ({ lab, g }));

  before(
    async () => {
      lab = await startGuests({ name: 'disk', count: 1, extraDisks: 1 });
      g = lab.guests[0];
    },
    { timeout: BUILD_TIMEOUT },
  );
  after(async () => {
    await lab?.stop();
  });

  it('refuses when two disks are empty (ambiguous), changing nothing', { timeout: 5 * 60_000 }, async (t) => {
    const before = await snapshot();
    const r = await run(['run', 'prepare-disk', '--yes']);
    t.diagnostic(`refused in ${r.seconds}s`);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr + r.stdout, /several empty disks, which one\? \/dev\/vdb \(4.0 GiB\), \/dev\/vdc \(4.0 GiB\)/, show(r));
    assert.match(r.stderr + r.stdout, /--disk \/dev\/vdb/, 'the fix is named');
    assert.equal(await snapshot(), before);
  });

  it('refuses a disk that is not empty (ext4 on /dev/vdc) unless --force-disk', { timeout: 5 * 60_000 }, async (t) => {
    await sh('mkfs.ext4 -q -L precious /dev/vdc && udevadm settle');
    const uuid = (await sh('blkid -s UUID -o value /dev/vdc')).trim();
    const before = await snapshot();
    const r = await run(['run', 'prepare-disk', '--yes', '--disk', '/dev/disk/by-id/virtio-chops-extra1']);
    t.diagnostic(`refused in ${r.seconds}s`);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr + r.stdout, /--disk \/dev\/vdc is not empty: \/dev\/vdc has a ext4 signature/, show(r));
    assert.match(r.stderr + r.stdout, /--force-disk/, 'the way out is named');
    assert.equal(await snapshot(), before);
    assert.equal((await sh('blkid -s UUID -o value /dev/vdc')).trim(), uuid, 'the filesystem on vdc is intact');
  });

  it('finds an fstab trap (a line whose device is missing) before changing anything', { timeout: 5 * 60_000 }, async (t) => {
    const trap = 'UUID=0b6e7f37-4b1c-4c8e-9d55-3f0c2a1b9e01 /srv/gone ext4 defaults 0 2';
    await sh(`mkdir -p /srv/gone && cp -p /etc/fstab /root/fstab.orig && echo '${trap}' >> /etc/fstab`);
    const before = await snapshot();
    const r = await run(['run', 'prepare-disk', '--yes']);
    t.diagnostic(`refused in ${r.seconds}s: ${(r.stderr.split('\n').find((l) => l.includes('findmnt')) ?? '').trim().slice(0, 200)}`);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr + r.stdout, /\/etc\/fstab has errors; the host may not boot/, show(r));
    assert.match(r.stderr + r.stdout, /0b6e7f37-4b1c-4c8e-9d55-3f0c2a1b9e01/, 'the bad line is named');
    assert.equal(await snapshot(), before, 'no disk touched, fstab as it was');
    await sh('cp -p /root/fstab.orig /etc/fstab');
  });

  it('plan shows the disk, the partition and the fstab line, and changes nothing', { timeout: 5 * 60_000 }, async () => {
    const before = await snapshot();
    const r = await run(['plan', 'prepare-disk']);
    assert.equal(r.code, 0, show(r));
    const planned = r.events.filter((e) => e.type === 'planned').map((e) => e.command as string);
    const all = planned.join('\n');
    assert.match(all, /sfdisk --wipe always --wipe-partitions always -- \/dev\/vdb/, all);
    assert.match(all, /pvcreate -y -- \/dev\/vdb1/);
    assert.match(all, /vgcreate -- clickhouse \/dev\/vdb1/);
    assert.match(all, /lvcreate -y -n data -l 100%FREE -- clickhouse/);
    assert.match(all, /mkfs\.ext4 -q -F -- \/dev\/clickhouse\/data/);
    const put = r.events.find((e) => e.type === 'planned' && e.kind === 'put' && /fstab/.test(e.command));
    assert.ok(put, `no fstab write in the plan\n${all}`);
    assert.match(put.content, /UUID=<new-filesystem-uuid> \/var\/lib\/clickhouse ext4 defaults,noatime,nofail,x-systemd\.device-timeout=30s,noauto 0 2/);
    assert.equal(await snapshot(), before);
  });

  let fstabBefore = '';
  it('prepares /dev/vdb: 8e partition, PV, VG, LV, ext4, fstab by UUID, mounted, drop-in', { timeout: 8 * 60_000 }, async (t) => {
    fstabBefore = await sh('cat /etc/fstab');
    const r = await run(['run', 'prepare-disk', '--yes']);
    t.diagnostic(`chops run prepare-disk: ${r.seconds}s`);
    assert.equal(r.code, 0, show(r));
    assert.match(await sh('sfdisk --dump /dev/vdb'), /\/dev\/vdb1 : start=\s*2048, size=\s*\d+, type=8e/);
    assert.match(await sh('lvs --noheadings -o vg_name,lv_name,lv_size --units g'), /clickhouse\s+data\s+4\.00g/);
    const uuid = (await sh('blkid -s UUID -o value /dev/clickhouse/data')).trim();
    assert.match(uuid, /^[0-9a-f-]{36}$/);
    const fstab = await sh('cat /etc/fstab');
    const line = `UUID=${uuid} ${DIR} ext4 defaults,noatime,nofail,x-systemd.device-timeout=30s 0 2`;
    assert.equal(fstab, `${fstabBefore}${line}\n`, 'old lines byte for byte, one new line');
    assert.match(await sh('ls /etc/fstab.chops-*'), /fstab\.chops-/, 'a backup of the old table');
    assert.match(await sh(`findmnt -n -o SOURCE,FSTYPE,OPTIONS --mountpoint ${DIR}`), /clickhouse-data\s+ext4\s+rw,noatime/);
    assert.equal((await sh(`stat -c %U:%G ${DIR} ${DIR}/lost+found`)).trim(), 'clickhouse:clickhouse\nclickhouse:clickhouse');
    assert.match(await sh('systemctl show -p RequiresMountsFor clickhouse-server'), new RegExp(`RequiresMountsFor=.*${DIR}`));
    assert.match(await sh('findmnt --verify 2>&1'), /Success, no errors or warnings detected/);
  });

  it('a rerun changes nothing', { timeout: 5 * 60_000 }, async (t) => {
    const before = await snapshot();
    const r = await run(['run', 'prepare-disk', '--yes']);
    t.diagnostic(`rerun: ${r.seconds}s`);
    assert.equal(r.code, 0, show(r));
    const done = r.events.filter((e) => e.type === 'step-done');
    assert.ok(done.length >= 10, show(r));
    assert.deepEqual(
      done.filter((e) => e.changed).map((e) => e.step),
      [],
      show(r),
    );
    assert.equal(await snapshot(), before);
  });
});
