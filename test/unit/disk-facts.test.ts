// Disk facts: pure parsers on output captured in a QEMU guest (Debian 12, util-linux 2.38,
// lvm2 2.03; test/unit/facts/disk/README.md says how), and the target-disk choice on them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseBlkid, describeSignatures } from '../../facts/disk/blkid.js';
import { parseDu } from '../../facts/disk/du.js';
import { parseFindmntVerify } from '../../facts/disk/findmnt.js';
import { entriesFor, parseFstab, renderFstab, upsertEntry } from '../../facts/disk/fstab.js';
import { flatten, mountedBelow, parseLsblk, usage } from '../../facts/disk/lsblk.js';
import { parseLvm } from '../../facts/disk/lvm.js';
import { chooseTargetDisk, type ChoiceInput } from '../../tasks/disk/target.js';
import { dataDirLine } from '../../tasks/disk/fstab.js';
import { dropInContent, dropInPath } from '../../tasks/disk/dropin.js';
import { firstPartitionPath, lvmPartition } from '../../tasks/disk/volume.js';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'facts/disk');
const fix = (name: string) => readFileSync(path.join(FIX, name), 'utf8');
/** "...output...\nrc=N\n" fixtures: the command's output and its exit code. */
const withRc = (name: string) => {
  const t = fix(name);
  const m = /\nrc=(\d+)\n?$/.exec(t) ?? /^rc=(\d+)\n?$/.exec(t);
  assert.ok(m, `${name} ends with rc=N`);
  return { out: t.slice(0, m.index), code: Number(m[1]) };
};

describe('lsblk', () => {
  it('parses a fresh guest: root disk with its mount, two empty disks', () => {
    const devs = parseLsblk(fix('lsblk-fresh.json'));
    const byName = Object.fromEntries(flatten(devs).map((d) => [d.name, d]));
    assert.equal(byName.vda.type, 'disk');
    assert.deepEqual(byName.vda.mountpoints, ['/']);
    assert.equal(byName.vdb.size, 4 * 1024 ** 3);
    assert.deepEqual(usage(byName.vdb), []);
    assert.deepEqual(usage(byName.vdc), []);
    assert.equal(byName.vdb.serial, 'chops-data');
    assert.deepEqual(mountedBelow(byName.vda), ['/dev/vda at /']);
  });
  it('parses a prepared disk: 8e partition, LVM member, the LV with ext4 below it', () => {
    const devs = parseLsblk(fix('lsblk-prepared.json'));
    const vdb = devs.find((d) => d.name === 'vdb')!;
    const part = lvmPartition(vdb)!;
    assert.equal(part.path, '/dev/vdb1');
    assert.equal(part.parttype, '0x8e');
    assert.equal(part.fstype, 'LVM2_member');
    assert.equal(part.children[0].type, 'lvm');
    assert.equal(part.children[0].fstype, 'ext4');
    assert.match(usage(vdb).join(';'), /has partition \/dev\/vdb1/);
    assert.equal(devs.find((d) => d.name === 'vdc')!.fstype, 'ext4');
  });
  it('refuses output that is not lsblk JSON (no guessing)', () => {
    assert.throws(() => parseLsblk('lsblk: failed to access sysfs directory: /sys/dev/block: No such file or directory\n'), /lsblk printed no JSON/);
    assert.throws(() => parseLsblk('{"devices": []}'), /no "blockdevices"/);
    assert.throws(() => parseLsblk('{"blockdevices": [{"name": "vdb", "size": "4G"}]}'), /no byte size.*-b/);
  });
  it('names the first partition the way the kernel does', () => {
    assert.equal(firstPartitionPath('/dev/vdb'), '/dev/vdb1');
    assert.equal(firstPartitionPath('/dev/nvme0n1'), '/dev/nvme0n1p1');
  });
});

describe('blkid -p', () => {
  it('exit 2 on an empty disk = no signature', () => {
    const { out, code } = withRc('blkid-empty.txt');
    assert.equal(code, 2);
    assert.deepEqual(parseBlkid(out, code), {});
  });
  it('reads a partition table, an LVM PV and ext4', () => {
    const pt = withRc('blkid-disk-with-pt.txt');
    assert.equal(parseBlkid(pt.out, pt.code).PTTYPE, 'dos');
    assert.deepEqual(describeSignatures(parseBlkid(pt.out, pt.code)), ['a dos partition table']);
    const pv = withRc('blkid-pv.txt');
    assert.equal(parseBlkid(pv.out, pv.code).TYPE, 'LVM2_member');
    const lv = withRc('blkid-lv.txt');
    const s = parseBlkid(lv.out, lv.code);
    assert.equal(s.TYPE, 'ext4');
    assert.match(s.UUID, /^[0-9a-f-]{36}$/);
  });
  it('any other exit is an error, not "empty"', () => {
    assert.throws(() => parseBlkid('', 4, 'blkid: error: /dev/vdz: No such file or directory'), /exited 4/);
  });
});

describe('LVM reports', () => {
  it('nothing yet on a fresh guest', () => {
    assert.deepEqual(parseLvm(fix('lvm-fresh.txt')), { pvs: [], vgs: [], lvs: [] });
  });
  it('PV, VG and LV after preparation, sizes in bytes', () => {
    const r = parseLvm(fix('lvm-prepared.txt'));
    assert.equal(r.pvs.length, 1);
    assert.equal(r.pvs[0].name, '/dev/vdb1');
    assert.equal(r.pvs[0].vg, 'clickhouse');
    assert.equal(r.vgs[0].name, 'clickhouse');
    assert.equal(r.vgs[0].free, 0);
    assert.equal(r.lvs[0].path, '/dev/clickhouse/data');
    assert.equal(r.lvs[0].dmPath, '/dev/mapper/clickhouse-data');
    assert.equal(r.lvs[0].size, r.vgs[0].size);
  });
  it('a failing report is an error (lvm2 missing), never "no volumes"', () => {
    const out = 'echo @@pvs\nsh: 1: pvs: not found\n@@rc 127\n@@vgs\n@@rc 127\n@@lvs\n@@rc 127\n'.replace(/^echo /, '');
    assert.throws(() => parseLvm(out), /pvs exited 127/);
    assert.throws(() => parseLvm('@@pvs\n{"report":[{"pv":[]}]}\n@@rc 0\n'), /vgs is missing/);
  });
});

describe('fstab', () => {
  it('keeps comments, blank and unknown lines byte for byte', () => {
    const text = fix('fstab-image.txt') + '\n# a comment  with   spaces\n\tnot-an-entry\n/dev/vdz9\t/srv/x  xfs defaults,nofail 0 2   \n';
    const f = parseFstab(text);
    assert.equal(renderFstab(f), text);
    assert.equal(f.lines.filter((l) => l.entry).length, 2);
    const x = entriesFor(f, '/srv/x/')[0].entry!;
    assert.deepEqual([x.spec, x.vfstype, x.mntops], ['/dev/vdz9', 'xfs', 'defaults,nofail']);
  });
  it('a file without a final newline stays so; an appended line gets one', () => {
    const f = parseFstab('/dev/vda / ext4 defaults 0 1');
    assert.equal(renderFstab(f), '/dev/vda / ext4 defaults 0 1');
    const up = upsertEntry(f, 'UUID=u /data ext4 defaults 0 2');
    assert.equal(renderFstab(up.fstab), '/dev/vda / ext4 defaults 0 1\nUUID=u /data ext4 defaults 0 2\n');
  });
  it('upsert: identical = unchanged, same mount point = replaced in place, several = refused', () => {
    const base = parseFstab('# head\nUUID=u /data ext4 defaults,noauto 0 2\n# tail\n');
    assert.equal(upsertEntry(base, 'UUID=u /data ext4 defaults,noauto 0 2').changed, false);
    const r = upsertEntry(base, 'UUID=u /data ext4 defaults 0 2');
    assert.equal(renderFstab(r.fstab), '# head\nUUID=u /data ext4 defaults 0 2\n# tail\n');
    assert.throws(() => upsertEntry(parseFstab('a /data ext4 d 0 2\nb /data ext4 d 0 2\n'), 'c /data ext4 d 0 2'), /2 entries for \/data/);
  });
  it('octal escapes in paths round-trip', () => {
    const f = parseFstab('UUID=u /srv/my\\040data ext4 defaults 0 2\n');
    assert.equal(f.lines[0].entry!.file, '/srv/my data');
    assert.match(dataDirLine('u', '/srv/my data', 'defaults,noatime', false), /^UUID=u \/srv\/my\\040data ext4 /);
  });
  it("the data directory line: by UUID, the operator's options, nofail + device timeout, noauto while staged", () => {
    assert.equal(
      dataDirLine('abc', '/var/lib/clickhouse', 'defaults,noatime', true),
      'UUID=abc /var/lib/clickhouse ext4 defaults,noatime,nofail,x-systemd.device-timeout=30s,noauto 0 2',
    );
    assert.equal(
      dataDirLine('abc', '/var/lib/clickhouse', 'defaults,noatime', false),
      'UUID=abc /var/lib/clickhouse ext4 defaults,noatime,nofail,x-systemd.device-timeout=30s 0 2',
    );
    // an operator's own device timeout wins over ours
    assert.equal(dataDirLine('abc', '/d', 'noatime,x-systemd.device-timeout=2min', false), 'UUID=abc /d ext4 noatime,x-systemd.device-timeout=2min,nofail 0 2');
  });
});

describe('findmnt --verify', () => {
  it("a sound table passes (verbose output of the guest's fstab)", () => {
    const { out, code } = withRc('findmnt-verify-ok.txt');
    const v = parseFindmntVerify(out, code);
    assert.equal(v.ok, true, JSON.stringify(v));
    assert.deepEqual(v.errors, []);
  });
  it('our staged line (UUID, noauto, nofail, x-systemd options) passes', () => {
    const { out, code } = withRc('findmnt-noauto.txt');
    assert.equal(parseFindmntVerify(out, code).ok, true, out);
  });
  it('the trap: a line whose device is missing is an error, named', () => {
    const { out, code } = withRc('findmnt-trap.txt');
    const v = parseFindmntVerify(out, code);
    assert.equal(v.ok, false);
    assert.ok(v.errors.some((e) => /0b6e7f37-4b1c-4c8e-9d55-3f0c2a1b9e01/.test(e)) || /0b6e7f37/.test(out), out);
    assert.ok(v.errors.length >= 1, out);
  });
  it('a garbage line is a parse error', () => {
    const { out, code } = withRc('findmnt-badline.txt');
    assert.equal(parseFindmntVerify(out, code).ok, false, out);
  });
  it('no summary = refused, not "fine"', () => {
    assert.throws(() => parseFindmntVerify("findmnt: unrecognized option '--verify'\n", 1), /printed no summary/);
  });
});

describe('du -sxb', () => {
  it('reads bytes, an absent directory is 0, an error is an error', () => {
    assert.deepEqual(parseDu('123456\t/var/lib/clickhouse\n', 0, '', '/x'), { exists: true, bytes: 123456 });
    assert.deepEqual(parseDu('@@absent\n', 0, '', '/x'), { exists: false, bytes: 0 });
    assert.throws(() => parseDu('', 1, 'du: cannot read directory', '/x'), /du -sxb \/x exited 1/);
  });
});

describe('target disk choice', () => {
  const fresh = () => parseLsblk(fix('lsblk-fresh.json'));
  const noLvm = { pvs: [], vgs: [], lvs: [] };
  const base = (over: Partial<ChoiceInput> = {}): ChoiceInput => ({
    devices: fresh(),
    lvm: noLvm,
    signatures: { '/dev/vda': { TYPE: 'ext4' }, '/dev/vdb': {}, '/dev/vdc': {} },
    force: false,
    vg: 'clickhouse',
    dataBytes: 10 * 1024 ** 2,
    marginPercent: 20,
    ...over,
  });
  it('two empty disks: refused as ambiguous, the fix named', () => {
    assert.throws(() => chooseTargetDisk(base()), /several empty disks, which one\? \/dev\/vdb \(4.0 GiB\), \/dev\/vdc \(4.0 GiB\)/);
  });
  it('the only empty disk is chosen', () => {
    const devs = parseLsblk(fix('lsblk-prepared.json')).filter((d) => d.name !== 'vdb');
    const withVdbEmpty = [...devs, { ...fresh().find((d) => d.name === 'vdb')! }];
    const c = chooseTargetDisk(base({ devices: withVdbEmpty, signatures: { '/dev/vda': {}, '/dev/vdb': {}, '/dev/vdc': { TYPE: 'ext4' } } }));
    assert.equal(c.disk.path, '/dev/vdb');
    assert.equal(c.prepared, false);
  });
  it('a signature only blkid sees (udev not caught up) makes a disk non-empty', () => {
    assert.equal(chooseTargetDisk(base({ signatures: { '/dev/vdb': {}, '/dev/vdc': { PTTYPE: 'gpt' } } })).disk.path, '/dev/vdb');
  });
  it('--disk: not empty is refused unless --force-disk; mounted never', () => {
    const devs = parseLsblk(fix('lsblk-prepared.json'));
    assert.throws(
      () => chooseTargetDisk(base({ devices: devs, disk: '/dev/vdc', signatures: { '/dev/vdc': { TYPE: 'ext4' } } })),
      /--disk \/dev\/vdc is not empty: \/dev\/vdc has a ext4 signature/,
    );
    assert.equal(chooseTargetDisk(base({ devices: devs, disk: '/dev/vdc', force: true, signatures: { '/dev/vdc': { TYPE: 'ext4' } } })).disk.path, '/dev/vdc');
    assert.throws(() => chooseTargetDisk(base({ disk: '/dev/vda', force: true })), /is in use: mounted \/dev\/vda at \//);
    assert.throws(() => chooseTargetDisk(base({ disk: '/dev/vdq' })), /no such block device/);
  });
  it('too small for the data plus the margin: refused with the figures', () => {
    assert.throws(
      () => chooseTargetDisk(base({ disk: '/dev/vdb', dataBytes: 3.5 * 1024 ** 3 })),
      /too small: the data directory holds 3\.5 GiB, with the 20% margin 4\.2 GiB are needed/,
    );
  });
  it('a rerun finds the disk that already carries the volume group', () => {
    const devs = parseLsblk(fix('lsblk-prepared.json'));
    const lvm = parseLvm(fix('lvm-prepared.txt'));
    const c = chooseTargetDisk(base({ devices: devs, lvm }));
    assert.equal(c.disk.path, '/dev/vdb');
    assert.equal(c.prepared, true);
    assert.throws(() => chooseTargetDisk(base({ devices: devs, lvm, disk: '/dev/vdc' })), /already exists on \/dev\/vdb, not on --disk \/dev\/vdc/);
  });
});

describe('drop-in', () => {
  it("requires the data directory's mount", () => {
    assert.equal(dropInPath('clickhouse-server'), '/etc/systemd/system/clickhouse-server.service.d/chops-data-mount.conf');
    assert.match(dropInContent('/var/lib/clickhouse'), /^\[Unit\]\nRequiresMountsFor=\/var\/lib\/clickhouse\n/m);
    assert.match(dropInContent('/srv/my data'), /RequiresMountsFor=\/srv\/my\\x20data/);
  });
});
