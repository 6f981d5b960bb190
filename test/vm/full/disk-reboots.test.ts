// The reboots after a disk preparation, in a QEMU guest (part of `npm run test:vm:full`: two
// reboots under TCG take ~3 minutes): the volume prepared by `chops run prepare-disk` is mounted
// again after a reboot with clickhouse-server running on it; with the volume removed, the guest
// still boots (nofail) and clickhouse-server does not start on the empty directory
// (RequiresMountsFor=). The refusals, plan, preparation and rerun are in test/vm/disk.test.ts.
//   flock /run/chops-heavy.lock node --import tsx --test test/vm/full/disk-reboots.test.ts
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIR, diskHarness } from '../disk-harness.js';
import { type Guest, type Lab, startGuests } from '../guests.js';

describe('prepare-disk in a QEMU guest, then reboots', () => {
  let lab: Lab;
  let g: Guest;
  const { sh, run, show } = diskHarness(() => ({ lab, g }));

  before(
    async () => {
      lab = await startGuests({ name: 'disk-reboots', count: 1 });
      g = lab.guests[0];
      const r = await run(['run', 'prepare-disk', '--yes']);
      assert.equal(r.code, 0, show(r));
    },
    { timeout: 30 * 60_000 },
  );
  after(async () => {
    await lab?.stop();
  });

  it('after a reboot the volume is mounted again and clickhouse-server runs on it', { timeout: 8 * 60_000 }, async (t) => {
    await sh(`systemctl enable --now clickhouse-server >/dev/null 2>&1; for i in $(seq 600); do clickhouse-client -q 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
              clickhouse-client -q 'CREATE TABLE default.t (x UInt32) ENGINE = MergeTree ORDER BY x' && clickhouse-client -q 'INSERT INTO default.t SELECT number FROM numbers(1000)'`);
    const r = await lab.reboot(g);
    t.diagnostic(`reboot: ${r.seconds}s`);
    assert.match(await sh(`findmnt -n -o SOURCE,OPTIONS --mountpoint ${DIR}`), /clickhouse-data\s+rw,noatime/);
    const rows = await sh(`for i in $(seq 600); do clickhouse-client -q 'SELECT count() FROM default.t' 2>/dev/null && exit 0; sleep 0.2; done; exit 1`);
    assert.equal(rows.trim(), '1000');
  });

  it('volume removed, guest rebooted: the host boots, clickhouse-server does not start on the empty directory', { timeout: 8 * 60_000 }, async (t) => {
    await sh(
      `systemctl stop clickhouse-server && umount ${DIR} && lvremove -y clickhouse/data >/dev/null && vgremove -y clickhouse >/dev/null && udevadm settle`,
    );
    const r = await lab.reboot(g); // nofail: boot goes on, sshd comes up
    t.diagnostic(`reboot without the volume: ${r.seconds}s to ssh`);
    // The mount waits for the device up to x-systemd.device-timeout=30s, then fails, and the
    // server's start job with it. Wait until systemd has no job left for either, then look.
    const state =
      await sh(`for i in $(seq 180); do systemctl list-jobs --no-legend 2>/dev/null | grep -qE 'clickhouse-server|var-lib-clickhouse' || break; sleep 1; done
                            systemctl is-active clickhouse-server; mountpoint -q ${DIR} && echo mounted || echo not-mounted; ls -A ${DIR} | wc -l
                            journalctl -b --no-pager -u clickhouse-server -u var-lib-clickhouse.mount | tail -n 5`);
    t.diagnostic(state.replace(/\n/g, ' | ').slice(0, 600));
    const [active, mounted, entries] = state.trim().split('\n');
    assert.notEqual(active, 'active', state);
    assert.notEqual(active, 'activating', state);
    assert.equal(mounted, 'not-mounted', state);
    assert.equal(entries, '0', `the empty directory stayed empty: ${state}`);
    assert.match(state, /Dependency failed|dependency/i, `systemd names the missing mount as the reason: ${state}`);
  });
});
