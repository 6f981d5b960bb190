// VM tier: real QEMU guests (systemd, sshd, a real empty second disk, real reboots).
//   node --import tsx --test test/vm/vm.test.ts          (root; ~3-4 min on a warm cache)
// A cold cache first builds the rootfs + image + saved state (test/vm/image.sh, ~2.5 min);
// CI can do that as a separate, cached step: `bash test/vm/image.sh`.
// The chops-driven tests run the built CLI (`npm run build`, done by test/run-all.sh).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { type Lab, startGuests } from './guests.js';
import { sshRun } from './machine.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHOPS = process.env.CHOPS_VM_CLI ?? path.join(REPO, 'bin', 'chops.js'); // override: test another build
const BUILD_TIMEOUT = 30 * 60_000; // before(): may have to build the rootfs + image first

interface ChopsRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  events: any[];
  seconds: number;
}

/** Run the chops CLI; every stdout line that parses as JSON is an event. Never hangs past timeoutMs. */
function chops(args: string[], timeoutMs: number): Promise<ChopsRun> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [CHOPS, ...args], {
      cwd: REPO,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '',
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const events: any[] = [];
      for (const line of stdout.split('\n')) {
        const s = line.trim();
        if (!s.startsWith('{')) continue;
        try {
          events.push(JSON.parse(s));
        } catch {
          /* not an event */
        }
      }
      resolve({ code, signal, stdout, stderr, events, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

const show = (r: ChopsRun) =>
  `exit ${r.code}${r.signal ? ` (${r.signal})` : ''} after ${r.seconds}s\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;

/** First object named `name` (or /dev/name) anywhere inside `v` (lsblk JSON, parsed or nested). */
function findDevice(v: unknown, name: string): Record<string, unknown> | undefined {
  if (Array.isArray(v)) {
    for (const x of v) {
      const f = findDevice(x, name);
      if (f) return f;
    }
  } else if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (o.name === name || o.name === `/dev/${name}` || o.path === `/dev/${name}` || o.kname === name) return o;
    for (const x of Object.values(o)) {
      const f = findDevice(x, name);
      if (f) return f;
    }
  } else if (typeof v === 'string' && v.trimStart().startsWith('{') && v.includes(name)) {
    try {
      return findDevice(JSON.parse(v), name);
    } catch {
      /* plain text */
    }
  }
  return undefined;
}

function assertEmptyDisk(dev: Record<string, unknown> | undefined, where: string): void {
  assert.ok(dev, `${where}: no vdb in the disks`);
  const children = dev.children as unknown[] | undefined;
  assert.ok(!children || children.length === 0, `${where}: vdb has partitions: ${JSON.stringify(dev)}`);
  assert.ok(dev.fstype === undefined || dev.fstype === null || dev.fstype === '', `${where}: vdb has a filesystem: ${JSON.stringify(dev)}`);
  if (dev.type !== undefined) assert.equal(dev.type, 'disk', `${where}: vdb is not a disk`);
}

// ---- the infrastructure itself, no chops ---------------------------------------------------------
describe('VM lab infrastructure', () => {
  let lab: Lab;
  before(
    async () => {
      lab = await startGuests({ name: 'infra', count: 2, extraDisks: 1 });
    },
    { timeout: BUILD_TIMEOUT },
  );
  after(async () => {
    await lab?.stop();
  });

  it('starts from the saved state within seconds and answers ssh with strict host key checking', async (t) => {
    t.diagnostic(`2 guests up in ${lab.startSeconds}s (${lab.image.accel}), dir ${lab.dir}`);
    for (const g of lab.guests) {
      const r = await lab.ssh(g, 'hostname; date +%s');
      assert.equal(r.code, 0, r.stderr);
      const [host, secs] = r.stdout.trim().split('\n');
      assert.equal(host, g.name, 'hostname fixed after the restore');
      assert.ok(Math.abs(Number(secs) - Date.now() / 1000) < 10, `guest clock fixed after the restore (guest ${secs})`);
      // the same key against a known_hosts without the guest is refused: checking really is strict
      const empty = path.join(lab.dir, 'empty_known_hosts');
      writeFileSync(empty, '');
      const refused = await sshRun({ port: g.port, identityFile: lab.identityFile, knownHosts: empty }, 'true');
      assert.equal(refused.code, 255);
      assert.match(refused.stderr, /Host key verification failed/);
    }
    const ops = await lab.ssh(lab.guests[0], 'sudo -n id -u', { user: 'ops' });
    assert.equal(ops.stdout.trim(), '0', `ops has passwordless sudo: ${ops.stderr}`);
  });

  it('has an empty 4 GiB /dev/vdb (serial chops-data) and a hot-plugged extra disk /dev/vdc', async () => {
    for (const g of lab.guests) {
      const r = await lab.ssh(g, 'lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,SERIAL,MOUNTPOINT; blkid -p /dev/vdb; echo "blkid=$?"');
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('}') + 1));
      const vdb = findDevice(json, 'vdb');
      assertEmptyDisk(vdb, g.name);
      assert.equal(Number(vdb!.size), 4 * 1024 ** 3);
      assert.equal(vdb!.serial, 'chops-data');
      assert.match(r.stdout, /blkid=2/, 'blkid finds no signature on vdb');
      assert.deepEqual(g.extraDisks, ['/dev/vdc']);
      assert.equal(findDevice(json, 'vdc')?.serial, 'chops-extra1');
    }
  });

  it('reboots: boot_id changes, ssh reconnects, hostname and disk names persist', { timeout: 10 * 60_000 }, async (t) => {
    const [g1, g2] = lab.guests;
    const other = await lab.bootId(g2);
    const r = await lab.reboot(g1);
    t.diagnostic(`reboot -> new boot_id over ssh in ${r.seconds}s`);
    assert.notEqual(r.after, r.before);
    assert.equal(await lab.bootId(g2), other, 'the other guest did not reboot');
    const after1 = await lab.ssh(g1, 'hostname; readlink -f /dev/disk/by-id/virtio-chops-data /dev/disk/by-id/virtio-chops-extra1; date +%s');
    const [host, data, extra, secs] = after1.stdout.trim().split('\n');
    assert.deepEqual([host, data, extra], [g1.name, '/dev/vdb', '/dev/vdc']);
    assert.ok(Math.abs(Number(secs) - Date.now() / 1000) < 10, 'clock right after the reboot');
  });

  it('can run the real clickhouse-server under systemd (systemctl enable --now)', { timeout: 5 * 60_000 }, async (t) => {
    const g = lab.guests[1];
    const t0 = Date.now();
    const r = await lab.ssh(
      g,
      [
        'systemctl enable --now clickhouse-server >/dev/null 2>&1',
        'for i in $(seq 600); do clickhouse-client -q "SELECT version()" 2>/dev/null && break; sleep 0.2; done',
        'systemctl is-active clickhouse-server',
      ].join('; '),
    );
    t.diagnostic(`clickhouse-server enabled and answering in ${(Date.now() - t0) / 1000}s`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^18\.16/m);
    assert.match(r.stdout, /^active$/m);
  });

  it('renders an inventory in chops format', () => {
    const inv = YAML.parse(readFileSync(lab.inventoryPath, 'utf8'));
    assert.equal(inv.version, 1);
    assert.equal(inv.defaults.ssh.user, 'root');
    assert.equal(inv.defaults.ssh.identity_file, lab.identityFile);
    assert.equal(inv.defaults.ssh.known_hosts, lab.knownHosts);
    assert.equal(inv.defaults.vars.data_disk, '/dev/vdb');
    assert.equal(inv.state.dir, path.join(lab.dir, 'state'));
    const shards = inv.clusters.vm.shards;
    assert.equal(shards.length, 2);
    assert.deepEqual(
      shards.map((s: any) => s.replicas[0]),
      lab.guests.map((g) => ({ host: g.name, address: '127.0.0.1', ssh: { port: g.port } })),
    );
  });
});

// ---- chops itself against the guests --------------------------------------------------------------
describe('chops against QEMU guests', () => {
  describe('facts on 2 guests', () => {
    let lab: Lab;
    before(
      async () => {
        lab = await startGuests({ name: 'facts', count: 2 });
      },
      { timeout: BUILD_TIMEOUT },
    );
    after(async () => {
      await lab?.stop();
    });

    it("run facts --json shows every guest's empty second disk vdb", { timeout: 5 * 60_000 }, async (t) => {
      const r = await chops(['run', 'facts', '-i', lab.inventoryPath, '--yes', '--json'], 4 * 60_000);
      t.diagnostic(`chops run facts: ${r.seconds}s`);
      assert.equal(r.code, 0, show(r));
      for (const g of lab.guests) {
        const ev = r.events.filter((e) => e?.host === g.name && (e?.data?.disks !== undefined || e?.data?.lsblk !== undefined));
        assert.ok(ev.length > 0, `no facts event with data.disks for ${g.name}\n${show(r)}`);
        assertEmptyDisk(
          findDevice(
            ev.map((e) => e.data.disks ?? e.data.lsblk),
            'vdb',
          ),
          `${g.name} facts`,
        );
      }
    });
  });

  describe('reboot through chops', () => {
    let lab: Lab;
    before(
      async () => {
        lab = await startGuests({ name: 'reboot', count: 1 });
      },
      { timeout: BUILD_TIMEOUT },
    );
    after(async () => {
      await lab?.stop();
    });

    it('run exec --reboot: new boot_id, chops reconnects and the run goes on', { timeout: 10 * 60_000 }, async (t) => {
      const g = lab.guests[0];
      const before = await lab.bootId(g);
      const r = await chops(
        [
          'run',
          'exec',
          '-i',
          lab.inventoryPath,
          '--yes',
          '--json',
          '--cmd',
          'touch /root/before-reboot',
          '--reboot',
          '--after',
          'test -f /root/before-reboot && cat /proc/sys/kernel/random/boot_id',
        ],
        8 * 60_000,
      );
      t.diagnostic(`chops run exec --reboot: ${r.seconds}s`);
      assert.equal(r.code, 0, show(r));
      const now = await lab.bootId(g);
      assert.notEqual(now, before, 'the guest really rebooted');
      assert.equal((await lab.ssh(g, 'test -f /root/before-reboot')).code, 0, 'marker written before the reboot survives it');
      // the step after the reboot ran on the new boot (over a new connection) and succeeded
      const i = r.events.findIndex((e) => /reboot/i.test(JSON.stringify(e)));
      assert.ok(i >= 0, `no event mentions the reboot\n${show(r)}`);
      const later = r.events.slice(i + 1).filter((e) => e?.host === g.name && e?.data?.command !== undefined);
      assert.ok(later.length > 0, `no step ran after the reboot\n${show(r)}`);
      const last = later[later.length - 1];
      assert.equal(last.data.code, 0, `the step after the reboot failed\n${show(r)}`);
      assert.equal(String(last.data.stdout).trim(), now, `the step after the reboot ran on the new boot\n${show(r)}`);
    });

    it('a guest that never comes back fails the run in bounded time, naming the host and the wait', { timeout: 6 * 60_000 }, async (t) => {
      const g = lab.guests[0];
      await lab.failNextReboot(g, 'hang'); // the reboot freezes the machine: TCP connects, no ssh banner
      const r = await chops(
        ['run', 'exec', '-i', lab.inventoryPath, '--yes', '--json', '--cmd', 'touch /root/never-back', '--reboot', '--reboot-timeout', '60s'],
        200_000,
      );
      t.diagnostic(
        `chops gave up after ${r.seconds}s: ${(r.stderr + r.stdout)
          .split('\n')
          .filter((l) => l.includes(g.name) && !l.startsWith('{'))
          .slice(0, 2)
          .join(' | ')
          .slice(0, 400)}`,
      );
      assert.equal(r.signal, null, `chops hung and was killed by the test\n${show(r)}`);
      assert.notEqual(r.code, 0, show(r));
      assert.ok(r.seconds < 60 + 120, `took ${r.seconds}s for a 60s reboot timeout`);
      // the failure report (stderr) names the host, the step and the wait that ran out
      assert.match(r.stderr, new RegExp(`host:\\s+${g.name}`), show(r));
      assert.match(r.stderr, /step:\s+.*reboot and wait/, show(r));
      assert.match(r.stderr, new RegExp(`${g.name}: did not come back within 60s`), show(r));
      assert.ok(r.seconds >= 55, `waited for the 60 s deadline (took ${r.seconds}s)`);
    });
  });
});
