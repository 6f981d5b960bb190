// Self-test of the multi-host lab (test/lab/lab.sh + lab.ts). Needs root.
//   node --import tsx --test test/lab/lab.test.ts
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { chQuery, labExec, labSsh, labUp, type Lab } from './lab.js';

const SSH_LAB = `labtest-ssh-${process.pid % 1000}`;
const CH_LAB = `labtest-ch-${process.pid % 1000}`;
// distinct nets per run so the self-test can run next to other labs
const octet = 100 + (process.pid % 100);

describe('ssh lab (3 hosts)', { timeout: 10 * 60_000 }, () => {
  let lab: Lab | undefined;
  before(async () => {
    lab = await labUp({ name: SSH_LAB, hosts: 3, net: `127.0.${octet}` });
  });
  after(async () => {
    await lab?.down();
  });

  it('renders inventory, known_hosts and hosts.json', () => {
    assert.ok(lab);
    assert.equal(lab.hosts.length, 3);
    assert.deepEqual(
      lab.hosts.map((h) => h.name),
      ['h1', 'h2', 'h3'],
    );
    assert.deepEqual(
      lab.hosts.map((h) => h.address),
      [11, 12, 13].map((n) => `127.0.${octet}.${n}`),
    );
    const kh = readFileSync(lab.knownHosts, 'utf8').trim().split('\n');
    assert.equal(kh.length, 3);
    assert.deepEqual(
      kh,
      lab.hosts.map((h) => h.hostKeyLine),
    );
    assert.equal(new Set(lab.hosts.map((h) => h.hostKey)).size, 3, 'every host has its own host key');
    const inv = readFileSync(lab.inventoryPath, 'utf8');
    assert.match(inv, new RegExp(`identity_file: ${lab.identityFile}`));
    assert.match(inv, new RegExp(`known_hosts: ${lab.knownHosts}`));
    assert.match(inv, /^ {2}lab:$/m);
  });

  it('ssh works with strict known_hosts and the lab key; a wrong host key is refused', async () => {
    assert.ok(lab);
    for (const h of lab.hosts) {
      const r = await labSsh(lab, h.name, 'hostname');
      assert.equal(r.stdout.trim(), h.name);
    }
    // h1's key presented for h2's address: strict checking must refuse
    const { spawnSync } = await import('node:child_process');
    const { writeFileSync } = await import('node:fs');
    const bad = `${lab.dir}/known_hosts.bad`;
    writeFileSync(bad, `${lab.hosts[1].address} ${lab.hosts[0].hostKey}\n`);
    const r = spawnSync('ssh', ['-F', lab.sshConfig, '-o', `UserKnownHostsFile=${bad}`, 'h2', 'true'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /host key|HOST IDENTIFICATION/i);
  });

  it('hosts have separate filesystems', async () => {
    assert.ok(lab);
    await labSsh(lab, 'h1', 'echo only-on-h1 > /root/marker && echo x > /var/tmp/marker2');
    assert.equal((await labSsh(lab, 'h1', 'cat /root/marker')).stdout.trim(), 'only-on-h1');
    const r2 = await labSsh(lab, 'h2', 'test -e /root/marker || test -e /var/tmp/marker2; echo $?', {});
    assert.equal(r2.stdout.trim(), '1');
    const r3 = await labExec(lab, 'h3', 'ls /root/marker', { check: false });
    assert.notEqual(r3.code, 0);
  });

  it('no block devices are visible', async () => {
    assert.ok(lab);
    const r = await labSsh(lab, 'h1', 'lsblk -dn -o NAME; find /dev -type b; cat /proc/partitions; ls -A /sys/block; ls -A /sys/class/block');
    assert.equal(r.stdout.trim(), '');
    const mk = await labSsh(lab, 'h1', 'mknod /tmp/blk b 254 0', { check: false });
    assert.notEqual(mk.code, 0, 'mknod of a block device must fail');
  });

  it('systemd is PID 1 and the system is running', async () => {
    assert.ok(lab);
    for (const h of lab.hosts) {
      const r = await labSsh(lab, h.name, 'cat /proc/1/comm; systemctl is-system-running; systemctl is-active ssh cron', { check: false });
      const [comm, state, ssh, cron] = r.stdout.trim().split('\n');
      assert.equal(comm, 'systemd');
      assert.ok(['running', 'degraded'].includes(state), `${h.name}: ${state}`);
      assert.equal(ssh, 'active');
      assert.equal(cron, 'active');
    }
  });

  it('ops logs in with the key and has sudo NOPASSWD', async () => {
    assert.ok(lab);
    const r = await labSsh(lab, 'h2', 'id -un; sudo -n true && echo sudo-ok; sudo -n id -u', { user: 'ops' });
    assert.deepEqual(r.stdout.trim().split('\n'), ['ops', 'sudo-ok', '0']);
  });

  it('labExec reaches a host even with its sshd stopped', async () => {
    assert.ok(lab);
    await labExec(lab, 'h3', 'systemctl stop ssh.service ssh.socket 2>/dev/null; systemctl stop ssh');
    const r = await labSsh(lab, 'h3', 'true', { check: false, timeoutMs: 20_000 });
    assert.notEqual(r.code, 0);
    await labExec(lab, 'h3', 'systemctl start ssh');
    assert.equal((await labSsh(lab, 'h3', 'hostname')).stdout.trim(), 'h3');
  });
});

describe('ClickHouse lab (2 shards x 2 replicas + ZooKeeper)', { timeout: 10 * 60_000 }, () => {
  let lab: Lab | undefined;
  before(async () => {
    lab = await labUp({ name: CH_LAB, hosts: 4, clickhouse: true, net: `10.231.${octet}` });
  });
  after(async () => {
    await lab?.down();
  });

  it('renders the inventory with shards 01/02 and replica names', () => {
    assert.ok(lab);
    assert.deepEqual(
      lab.hosts.map((h) => [h.name, h.shard]),
      [
        ['ch1', '01'],
        ['ch2', '01'],
        ['ch3', '02'],
        ['ch4', '02'],
      ],
    );
    const inv = readFileSync(lab.inventoryPath, 'utf8');
    assert.match(inv, /http_port: 8123/);
    assert.match(inv, /service: clickhouse-server/);
    assert.match(inv, /- name: "01"[\s\S]*host: ch1[\s\S]*replica_name: ch1[\s\S]*- name: "02"[\s\S]*host: ch4/);
  });

  it('every node runs clickhouse-server under systemd with the right macros', async () => {
    assert.ok(lab);
    for (const h of lab.hosts) {
      const active = await labSsh(lab, h.name, 'systemctl is-active clickhouse-server');
      assert.equal(active.stdout.trim(), 'active');
      const macros = await chQuery(lab, h.name, 'SELECT macro, substitution FROM system.macros ORDER BY macro FORMAT TSV');
      assert.equal(macros, `cluster\tlab\nreplica\t${h.name}\nshard\t${h.shard}\n`);
      assert.equal((await chQuery(lab, h.name, "SELECT count() > 0 FROM system.zookeeper WHERE path = '/'")).trim(), '1');
    }
  });

  it('users: default without password, ops with its password', async () => {
    assert.ok(lab?.clickhouseOps);
    assert.equal((await chQuery(lab, 'ch1', 'SELECT 1', { user: 'ops', password: lab.clickhouseOps.password })).trim(), '1');
    await assert.rejects(chQuery(lab, 'ch1', 'SELECT 1', { user: 'ops', password: 'wrong' }), /Wrong password|HTTP 401|HTTP 500/);
  });

  it('an insert through the Distributed table is replicated within each shard', async () => {
    assert.ok(lab);
    await chQuery(
      lab,
      'ch1',
      "INSERT INTO lab.events (ts, id, v) SELECT toDateTime('2024-01-01 00:00:00') + number, number, toString(number) FROM system.numbers LIMIT 1000",
      { settings: { insert_distributed_sync: 1 } },
    );
    const deadline = Date.now() + 30_000;
    let counts: number[] = [];
    for (;;) {
      counts = await Promise.all(lab.hosts.map(async (h) => Number((await chQuery(lab!, h.name, 'SELECT count() FROM lab.events_local')).trim())));
      if ((counts[0] === counts[1] && counts[2] === counts[3] && counts[0] + counts[2] === 1000) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(counts[0], counts[1], `shard 01 replicas agree: ${counts}`);
    assert.equal(counts[2], counts[3], `shard 02 replicas agree: ${counts}`);
    assert.equal(counts[0] + counts[2], 1000);
    assert.ok(counts[0] > 0 && counts[2] > 0, 'both shards got rows');
    assert.equal((await chQuery(lab, 'ch4', 'SELECT count() FROM lab.events')).trim(), '1000');
  });

  it('stopping the service on one node is visible (fault injection)', async () => {
    assert.ok(lab);
    await labExec(lab, 'ch2', 'systemctl stop clickhouse-server');
    await assert.rejects(chQuery(lab, 'ch2', 'SELECT 1'));
    const st = await labExec(lab, 'ch2', 'systemctl is-active clickhouse-server', { check: false });
    assert.equal(st.stdout.trim(), 'inactive');
    await labExec(lab, 'ch2', 'systemctl start clickhouse-server');
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await chQuery(lab, 'ch2', 'SELECT 1')).trim() === '1') break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
