// The most complete proof of move-data (issue 10): a replica running the real Debian
// clickhouse-server 18.16 under systemd in a QEMU guest, replicating with a peer, moved onto a
// new LVM volume on its empty second disk by `chops run move-data --volume prepare` end to end,
// with inserts before, during and after, and the guest powered off twice in the middle of the
// swap. Not part of `npm test` (TCG emulation makes it slow): `npm run test:vm:full`.
//
//   flock /run/chops-heavy.lock npm run test:vm:full          (root; builds chops first)
//
// Setup, the cheapest faithful one found: the peer and ZooKeeper are an nspawn ClickHouse lab
// of one container (test/lab/lab.sh: ch1 in its own network namespace on the lab's bridge,
// ZooKeeper on the bridge's machine side). The guest gets a second NIC hot-plugged after its
// restore (test/vm/guests.ts attachToBridge): a tap QEMU creates and that vanishes with QEMU,
// attached to that same lab bridge, so the guest's server replicates with ch1 through the lab's
// ZooKeeper and nothing of the lab's traffic leaves the lab's own bridge and namespaces. The
// guest's ssh is reached over that bridge too (chops sees two ordinary hosts of one shard).
//
// The proof, in order:
//   1. the guest replicates: rows inserted on either side appear on the other;
//   2. `chops run move-data` (partition 8e, PV/VG/LV, ext4, fstab by UUID, live copy, stop,
//      final pass, identity proof, set-aside, mount, fstab active, RequiresMountsFor=, start,
//      verify) with inserts into ch1's replicated table every second all along;
//   3. power cut #1 (QMP system_reset, no shutdown) right after "move the old data directory
//      aside": after the cold boot the old copy is intact and aside, the data directory is
//      absent or empty, the server did not start on it; `chops resume`;
//   4. power cut #2 inside the mount step (after the empty mount point is made root-owned and
//      immutable, before the mount lands): after the boot the mount point is empty and
//      immutable, the server (enabled, no drop-in yet) failed instead of writing into it;
//      `chops resume` finishes;
//   5. one complete copy: the data directory is the LV (by UUID in fstab, mounted at boot,
//      required by the server), the old copy aside and intact until cleanup, the server healthy;
//      counts equal on both replicas and equal to every row ever acknowledged; inserts after
//      the move replicate both ways; the run log says the backup check was skipped.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type LabNode, chQuery, ping } from '../../support/clickhouse.js';
import { chops, events } from '../../support/cli.js';
import { type TestLab, labSh, testLab } from '../../support/lab.js';
import { runProcess, sleep } from '../../support/process.js';
import { type Guest, type Lab, startGuests } from '../guests.js';

const LAB = 'chops-vmfull';
const DIR = '/var/lib/clickhouse';
const OLD = '/var/lib/clickhouse-tmp';
const MAC = '52:54:00:c4:0f:01';
const INITIAL_ROWS = 200_000;
const SETUP_TIMEOUT = 30 * 60_000; // may have to build the guest image first

describe('move-data end to end in a QEMU guest replica (real clickhouse-server, systemd, LVM, power cuts)', () => {
  let lab: TestLab;
  let vm: Lab;
  let g: Guest;
  let ch1: LabNode;
  let guest: LabNode;
  let inventory: string;
  let stateDir: string;
  const t0 = Date.now();
  const figures: Record<string, unknown> = {};

  const gsh = async (cmd: string, timeoutMs = 120_000) => {
    const r = await vm.ssh(g, cmd, { timeoutMs });
    assert.equal(r.code, 0, `guest: ${cmd}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const count = async (n: LabNode, table = 'lab.events_local') => Number((await chQuery(n, `SELECT count() FROM ${table}`, { timeoutMs: 60_000 })).trim());
  /** Both replicas report the same count (inserts continue: poll until one reading agrees). */
  const converge = async (what: string, timeoutMs = 300_000) => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const [a, b] = await Promise.all([count(ch1).catch(() => -1), count(guest).catch(() => -2)]);
      if (a === b) return a;
      last = `ch1=${a} guest=${b}`;
      if (Date.now() > deadline) assert.fail(`${what}: counts never agreed (${last})`);
      await sleep(500);
    }
  };

  before(
    async () => {
      const build = await runProcess('npm', ['run', '--silent', 'build']);
      assert.equal(build.code, 0, `npm run build failed:\n${build.stdout}${build.stderr}`);
      // one ClickHouse container is enough for a peer (lab.sh insists on 4 unless told)
      process.env.CHOPS_LAB_ANY_CH_HOSTS = '1';
      const [l, v] = await Promise.all([testLab({ name: LAB, hosts: 1, clickhouse: true }), startGuests({ name: 'vmfull', count: 1 })]);
      lab = l;
      vm = v;
      g = vm.guests[0];
      const net = lab.lab.net;
      const id = createHash('sha256').update(LAB).digest('hex').slice(0, 5); // lab.sh's LABID: its bridge is cl<id>br
      ch1 = lab.nodes[0];
      guest = { name: g.name, address: `${net}.50`, shard: '01', replica: g.name };
      await vm.attachToBridge(g, { bridge: `cl${id}br`, ifname: `cl${id}v1`, mac: MAC });
      figures.setupLabAndGuestSeconds = (Date.now() - t0) / 1000;

      // the guest on the lab network (persistent: the power cuts reboot it)
      await gsh(`cat > /etc/systemd/network/20-lab.network <<'EOF'
[Match]
MACAddress=${MAC}
[Network]
Address=${guest.address}/24
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
networkctl reload && networkctl reconfigure eth1
for i in $(seq 100); do ip -4 -o addr show eth1 | grep -q ${guest.address}/ && timeout 2 bash -c "</dev/tcp/${ch1.address}/9000" 2>/dev/null && exit 0; sleep 0.3; done
ip addr >&2; exit 1`);
      // the shard: ch1 (lab container) + the guest, ZooKeeper on the lab bridge
      const cluster = `<remote_servers replace="replace"><lab><shard><internal_replication>true</internal_replication>
            <replica><host>${ch1.address}</host><port>9000</port></replica>
            <replica><host>${guest.address}</host><port>9000</port></replica>
        </shard></lab></remote_servers>`;
      await gsh(
        `mkdir -p /etc/clickhouse-server/config.d && cat > /etc/clickhouse-server/config.d/chops-vmfull.xml <<'EOF'
<?xml version="1.0"?>
<!-- the guest as the second replica of shard 01 of the lab ${LAB} (test/vm/full/move-data.test.ts) -->
<yandex>
    <listen_host>${guest.address}</listen_host>
    <listen_host>127.0.0.1</listen_host>
    <interserver_http_host>${guest.address}</interserver_http_host>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <macros replace="replace"><cluster>lab</cluster><shard>01</shard><replica>${g.name}</replica></macros>
    ${cluster}
    <zookeeper replace="replace">
        <node index="1"><host>${net}.1</host><port>2181</port></node>
        <session_timeout_ms>30000</session_timeout_ms>
        <operation_timeout_ms>10000</operation_timeout_ms>
    </zookeeper>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
</yandex>
EOF
systemctl enable --now clickhouse-server >/dev/null 2>&1
for i in $(seq 900); do [ "$(clickhouse-client -q "SELECT count() > 0 FROM system.zookeeper WHERE path = '/'" 2>/dev/null)" = 1 ] && exit 0; sleep 0.2; done
journalctl -u clickhouse-server --no-pager | tail -20 >&2; tail -20 /var/log/clickhouse-server/clickhouse-server.err.log >&2; exit 1`,
        400_000,
      );
      await labSh(
        lab,
        'ch1',
        `cat > /etc/clickhouse-server/config.d/zz-vmfull-peer.xml <<'EOF'
<?xml version="1.0"?>
<yandex>${cluster}</yandex>
EOF
systemctl restart clickhouse-server`,
      );
      for (let i = 0; ; i++) {
        const ok = await chQuery(ch1, "SELECT count() FROM system.clusters WHERE cluster = 'lab'").catch(() => '');
        if (ok.trim() === '2') break;
        assert.ok(i < 300, 'ch1 came back with the guest in its cluster');
        await sleep(200);
      }
      // the replicated table on the guest (ch1 has it from lab.sh), a Distributed one, a local one
      for (const q of [
        'CREATE DATABASE IF NOT EXISTS lab',
        "CREATE TABLE lab.events_local (d Date DEFAULT toDate(ts), ts DateTime, id UInt64, v String) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/lab/events_local', '{replica}') PARTITION BY toYYYYMM(d) ORDER BY id",
        'CREATE TABLE lab.events AS lab.events_local ENGINE = Distributed(lab, lab, events_local, cityHash64(id))',
        'CREATE TABLE lab.local_mt (id UInt64) ENGINE = MergeTree ORDER BY id',
        'INSERT INTO lab.local_mt SELECT number FROM numbers(1000)',
      ])
        await chQuery(guest, q, { timeoutMs: 120_000 });
      // rows from both sides: the peer's, then the guest's own
      await chQuery(ch1, `INSERT INTO lab.events_local (ts, id, v) SELECT now(), 1000000000 + number, toString(number) FROM numbers(${INITIAL_ROWS})`, {
        timeoutMs: 120_000,
      });
      await chQuery(guest, 'INSERT INTO lab.events_local (ts, id, v) SELECT now(), 2000000000 + number, toString(number) FROM numbers(1000)', {
        timeoutMs: 120_000,
      });
      assert.equal(await converge('initial replication'), INITIAL_ROWS + 1000);

      // the inventory: one shard, two replicas; the guest's ssh over the lab bridge too
      const hostKey = readFileSync(vm.image.hostKeyFile, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
      const known = path.join(vm.dir, 'known_hosts.lab');
      writeFileSync(known, `${lab.lab.hosts[0].hostKeyLine}\n${guest.address} ${hostKey}\n`);
      stateDir = path.join(vm.dir, 'state');
      inventory = path.join(vm.dir, 'inventory.move.yml');
      writeFileSync(
        inventory,
        `# test/vm/full/move-data.test.ts: ch1 (nspawn lab ${LAB}) + the QEMU guest ${g.name}, one shard
version: 1
defaults:
  ssh: {user: root, port: 22, identity_file: ${JSON.stringify(lab.lab.identityFile)}, known_hosts: ${JSON.stringify(known)}, connect_timeout: 15s}
  clickhouse: {http_port: 8123, tcp_port: 9000, user: default, service: clickhouse-server, data_dir: ${DIR}}
  gates: {max_delay: 30s, max_queue_size: 50, max_inserts_in_queue: 50, max_log_lag: 50, allow_mutations: false, max_active_queries: 2, wait_timeout: 5m, poll_interval: 500ms}
state: {dir: ${JSON.stringify(stateDir)}}
clusters:
  lab:
    shards:
      - name: "01"
        replicas:
          - {host: ch1, address: ${ch1.address}, replica_name: ch1}
          - host: ${g.name}
            address: ${guest.address}
            replica_name: ${g.name}
            ssh: {identity_file: ${JSON.stringify(vm.identityFile)}}
`,
      );
      figures.setupSeconds = (Date.now() - t0) / 1000;
    },
    { timeout: SETUP_TIMEOUT },
  );

  after(async () => {
    await vm?.stop();
    await lab?.down();
    console.log(`test/vm/full/move-data.test.ts figures: ${JSON.stringify({ ...figures, totalSeconds: (Date.now() - t0) / 1000 })}`);
  });

  /** Inserts into the peer's replicated table, one batch of 10 rows a second; every acknowledged id is kept. */
  function startInserter() {
    const acked: number[] = [];
    let stop = false;
    let failed = 0;
    const loop = (async () => {
      for (let batch = 1; !stop; batch++) {
        const rows = Array.from({ length: 10 }, (_, k) => `(now(), ${batch * 100 + k}, 'b${batch}')`).join(',');
        try {
          await chQuery(ch1, `INSERT INTO lab.events_local (ts, id, v) VALUES ${rows}`, { timeoutMs: 20_000 });
          acked.push(batch);
        } catch {
          failed++;
        }
        await sleep(1000);
      }
    })();
    return { acked, failed: () => failed, stop: async () => ((stop = true), await loop) };
  }

  /** /ping the guest replica every second: when it served and when it did not. */
  function startSampler() {
    const samples: Array<{ at: number; st: string }> = [];
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        samples.push({ at: Date.now(), st: await ping(guest, 2000) });
        await sleep(1000);
      }
    })();
    return { samples, stop: async () => ((stop = true), await loop) };
  }

  /** After a power cut: wait for the new boot, then for systemd to have settled what it starts at boot. */
  async function afterPowerCut(previousBootId: string, what: string) {
    const t = Date.now();
    await vm.waitSsh(g, { previousBootId, timeoutMs: 600_000 });
    const settle = await gsh(
      'st=$(timeout 300 systemctl is-system-running --wait 2>/dev/null || true); echo "$st"; for i in $(seq 120); do systemctl list-jobs --no-legend | grep -q . || break; sleep 1; done',
      400_000,
    );
    const seconds = (Date.now() - t) / 1000;
    (figures.bootSeconds as number[] | undefined) ?? (figures.bootSeconds = []);
    (figures.bootSeconds as number[]).push(seconds);
    console.log(`${what}: guest back after ${seconds}s (system ${settle.trim().split('\n')[0]})`);
  }

  it('moves the guest replica onto its new LVM volume with inserts all along, through two power cuts mid-swap', { timeout: 60 * 60_000 }, async () => {
    const oldFiles = Number((await gsh(`find ${DIR} -type f | wc -l`)).trim());
    const oldBytes = (await gsh(`du -sb ${DIR} | cut -f1`)).trim();
    assert.equal((await gsh(`findmnt -n -o SOURCE --target ${DIR}`)).trim(), '/dev/vda', 'the data starts on the root filesystem');
    const inserter = startInserter();
    const sampler = startSampler();
    await sleep(3000); // inserts before the move
    const cuts = [
      {
        what: 'power cut #1: right after the old data directory was set aside',
        match: (e: any) => e.type === 'step-done' && e.host === g.name && /move the old data directory aside/.test(e.step),
      },
      {
        what: 'power cut #2: inside the mount step (empty immutable mount point, not mounted yet)',
        match: (e: any) => e.type === 'note' && e.host === g.name && /mount point root-owned/.test(e.text),
      },
    ];
    const afterBoot: string[] = [];
    let runId: string | undefined;
    let last: Awaited<ReturnType<typeof chops>> | undefined;
    const tMove = Date.now();
    try {
      for (let attempt = 0; attempt <= cuts.length; attempt++) {
        const cut = cuts[attempt];
        const args = runId
          ? ['resume', runId, '-i', inventory, '--yes', '--json']
          : ['run', 'move-data', '-i', inventory, '--limit', g.name, '--volume', 'prepare', '--disk', '/dev/vdb', '--no-backup-check', '--yes', '--json'];
        const bootBefore = await vm.bootId(g);
        let fired = false;
        last = await chops(args, {
          timeoutMs: 30 * 60_000,
          onLine: (line, child) => {
            if (!line.startsWith('{')) return;
            const e = JSON.parse(line);
            if (!runId && e.type === 'run-start' && e.runId) runId = e.runId;
            if (fired || !cut || !cut.match(e)) return;
            fired = true;
            // the machine loses power; the operator's run dies with its connection
            vm.powerCycle(g).then(
              () => child.kill('SIGKILL'),
              () => child.kill('SIGKILL'),
            );
          },
        });
        if (!cut) break;
        assert.ok(fired, `${cut.what}: the run reached it (exit ${last.code}): ${last.stdout.slice(-3000)}${last.stderr}`);
        await afterPowerCut(bootBefore, cut.what);
        // Right after the boot, before anything resumes: exactly one complete copy, nothing written.
        const st = (
          await gsh(`echo "data=$( [ -e ${DIR} ] && echo present || echo absent ) mounted=$(mountpoint -q ${DIR} && echo yes || echo no) entries=$(ls -A ${DIR} 2>/dev/null | wc -l) attr=$(lsattr -d ${DIR} 2>/dev/null | cut -c5) owner=$(stat -c %U ${DIR} 2>/dev/null)"
                      echo "old-files=$(find ${OLD} -type f | wc -l) server=$(systemctl is-active clickhouse-server)"`)
        ).trim();
        afterBoot.push(`${cut.what}: ${st.replace(/\n/g, ' ')}`);
        console.log(afterBoot.at(-1));
        assert.match(st, /mounted=no entries=0 /, `${cut.what}: nothing mounted at and nothing written into the data directory: ${st}`);
        assert.match(st, new RegExp(`old-files=${oldFiles}\\b|old-files=\\d+`), st);
        assert.ok(Number(/old-files=(\d+)/.exec(st)![1]) >= oldFiles, `${cut.what}: the old copy is aside and whole: ${st} (had ${oldFiles} files)`);
        assert.doesNotMatch(st, /server=active/, `${cut.what}: the server did not start on an empty directory: ${st}`);
        if (attempt === 1)
          assert.match(st, /data=present mounted=no entries=0 attr=i owner=root/, `${cut.what}: the mount point is root-owned and immutable: ${st}`);
      }
    } finally {
      await sleep(5000); // inserts after the move
      await inserter.stop();
      await sampler.stop();
    }
    figures.moveSeconds = (Date.now() - tMove) / 1000;
    assert.equal(last?.code, 0, `the last resume finishes: ${last?.stdout.slice(-4000)}${last?.stderr}`);
    const ev = events(last!.stdout);
    const healthy = ev.find((e) => e.type === 'step-done' && e.host === g.name && /wait until healthy/.test(e.step));
    figures.downtime = healthy?.note?.match(/downtime ([^;]+)/)?.[1];
    const down = sampler.samples.filter((s) => s.st !== 'up');
    figures.guestNotServingSamples = down.length;
    figures.guestNotServingSeconds = down.length ? (down.at(-1)!.at - down[0].at) / 1000 : 0;
    figures.powerCuts = afterBoot.length;
    figures.insertBatches = inserter.acked.length;
    figures.insertFailures = inserter.failed();

    // One complete copy: the data directory is the new LV, mounted by UUID, required by the server.
    const uuid = (await gsh('blkid -s UUID -o value /dev/clickhouse/data')).trim();
    assert.match(uuid, /^[0-9a-f-]{36}$/);
    assert.match(await gsh(`findmnt -n -o SOURCE,FSTYPE --mountpoint ${DIR}`), /\/dev\/mapper\/clickhouse-data\s+ext4/);
    assert.match(
      await gsh(`grep " ${DIR} " /etc/fstab`),
      new RegExp(`^UUID=${uuid} ${DIR} ext4 defaults,noatime,nofail,x-systemd\\.device-timeout=30s 0 2$`, 'm'),
    );
    assert.match(await gsh('systemctl show -p RequiresMountsFor clickhouse-server'), new RegExp(`RequiresMountsFor=.*${DIR}`));
    assert.equal((await gsh('systemctl is-active clickhouse-server')).trim(), 'active');
    assert.equal((await gsh(`find ${DIR} ! -user clickhouse | wc -l`)).trim(), '0', 'everything on the volume owned by clickhouse');
    assert.equal((await gsh(`[ -d ${OLD} ] && [ -e ${OLD}.chops-verified.json ] && echo yes`)).trim(), 'yes', 'verified; the old copy kept until cleanup');
    assert.ok(Number((await gsh(`find ${OLD} -type f | wc -l`)).trim()) >= oldFiles, 'the old copy is intact');
    figures.oldCopy = { files: oldFiles, bytes: Number(oldBytes) };

    // No data lost: both replicas equal, every acknowledged row there, and both ways still work.
    await chQuery(guest, 'INSERT INTO lab.events_local (ts, id, v) SELECT now(), 3000000000 + number, toString(number) FROM numbers(1000)', {
      timeoutMs: 120_000,
    });
    const n = await converge('after the move');
    const ids = inserter.acked.flatMap((b) => Array.from({ length: 10 }, (_, k) => b * 100 + k));
    assert.ok(inserter.acked.length > 30, `inserts went on during the move (${inserter.acked.length} batches)`);
    for (const node of [ch1, guest]) {
      const present = Number((await chQuery(node, `SELECT count() FROM lab.events_local WHERE id < 1000000000`, { timeoutMs: 60_000 })).trim());
      assert.equal(present, ids.length, `${node.name}: ${ids.length - present} acknowledged rows missing`);
    }
    assert.equal(n, INITIAL_ROWS + 1000 + 1000 + ids.length, 'initial + guest rows + inserted during + after');
    assert.equal(await count(guest, 'lab.local_mt'), 1000, 'the non-replicated table moved intact');
    assert.equal((await chQuery(guest, 'SELECT count() FROM lab.events')).trim(), String(n), 'the Distributed table reads the shard');
    figures.rowsChecked = n;

    // The backup check was skipped on purpose, and the run log says so.
    const logs = readdirSync(path.join(stateDir, 'runs', runId!)).filter((f) => f.endsWith('.log'));
    const text = logs.map((f) => readFileSync(path.join(stateDir, 'runs', runId!, f), 'utf8')).join('\n');
    assert.match(text, /backup precondition NOT checked \(--no-backup-check\)/, `run log ${logs.join(', ')}`);
    console.log(`after the boots: ${afterBoot.join(' | ')}`);
  });
});
