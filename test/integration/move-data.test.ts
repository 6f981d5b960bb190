// move-data on the real replicated ClickHouse lab (4 nspawn containers with clickhouse-server
// 18.16 under systemd, 2 shards × 2 replicas, ZooKeeper): the "new volume" of each host is a
// tmpfs of its own named in /etc/fstab as a bind entry for the data directory (lab containers
// have no block devices: test/support/lab-volume.ts says why and how). chops runs as a child
// process, as an operator runs it.
//   1. an injected failure in the final pass → the replica is rolled back onto its old data;
//   2. the rolling two-phase move of all four replicas with inserts through the Distributed
//      table all along and a liveness sampler, the runner SIGKILLed at several kill points (mid
//      live copy, step boundaries inside the downtime, mid final pass, mid swap), each followed
//      by `chops resume`: zero acknowledged rows lost, never two replicas of a shard down at once,
//      every replica on exactly one complete copy;
//   3. move-data-cleanup deletes the old directories (Type YES → --yes) and reports df -h.
//
//   flock /run/chops-heavy.lock node --import tsx --test test/integration/move-data.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type LabNode, chQuery, waitClusterIdle } from '../support/clickhouse.js';
import { chops, events, ensureBuilt } from '../support/cli.js';
import { type TestLab, clickhouseLab, labSh } from '../support/lab.js';
import { prepareLabVolume } from '../support/lab-volume.js';
import { sleep } from '../support/process.js';
import { batchIds, startInserter, startSampler } from '../support/workload.js';

let lab: TestLab;
let nodes: LabNode[];
const node = (n: string) => nodes.find((x) => x.name === n)!;
const COMMON = ['--volume', 'existing', '--no-backup-check', '--yes', '--json'];

before(async () => {
  await ensureBuilt();
  lab = await clickhouseLab('chops-move');
  nodes = lab.nodes;
  await waitClusterIdle(nodes);
  for (const n of nodes) await prepareLabVolume(lab, n.name, { size: '512m' });
  // Replicated data (ids far above the inserter's), a non-replicated table per node, and a FREEZE
  // on ch1 so shadow/ holds hard links to its parts.
  await chQuery(nodes[0], 'INSERT INTO lab.events (ts, id, v) SELECT now(), 1000000000 + number, toString(number) FROM numbers(1000000)', {
    settings: { insert_distributed_sync: 1 },
    timeoutMs: 60_000,
  });
  for (const n of nodes) {
    await chQuery(n, 'CREATE TABLE IF NOT EXISTS lab.local_mt (id UInt64) ENGINE = MergeTree ORDER BY id');
    await chQuery(n, 'INSERT INTO lab.local_mt SELECT number FROM numbers(1000)');
  }
  await chQuery(node('ch1'), 'ALTER TABLE lab.events_local FREEZE');
  await waitClusterIdle(nodes);
});

after(async () => {
  await lab?.down();
});

const sh = (host: string, cmd: string) => labSh(lab, host, cmd);
const isMounted = async (host: string) => (await sh(host, 'mountpoint -q /var/lib/clickhouse && echo yes || echo no')).trim() === 'yes';

describe('move-data on the ClickHouse lab', () => {
  test('plan: the copy passes and the set-aside are decided on real facts, and nothing on the host changes', async () => {
    const before = await sh('ch1', 'cat /etc/fstab; findmnt -rn -o TARGET,SOURCE; ls -d /var/lib/clickhouse-tmp 2>&1; systemctl is-active clickhouse-server');
    const r = await chops(['plan', 'move-data', '-i', lab.inventoryPath, '--volume', 'existing', '--no-backup-check', '--limit', 'ch1']);
    const out = r.stdout + r.stderr;
    const shown = `\n--- the plan:\n${out.slice(-6000)}`;
    assert.match(out, /check the data directory, its config paths and the volume/, shown);
    assert.ok((out.match(/setsid rsync .* \/var\/lib\/clickhouse\/ \S/g) ?? []).length >= 2, `the live and the final pass are in the plan${shown}`);
    assert.match(out, /prove the copy is identical: would compare: rsync dry run, counts, sizes, links, small-file checksums/, shown);
    assert.match(out, /\$ mv -T -- \/var\/lib\/clickhouse \/var\/lib\/clickhouse-tmp/, `the set-aside is planned${shown}`);
    // The steps after the set-aside see what it would leave (the plan made none of it): the plan
    // of an unmoved replica goes through to the end.
    assert.match(out, /mount the new volume at the data directory \(fstab\): would make \d+ change/, `the mount is planned, not refused${shown}`);
    assert.match(out, /\$ mount -- \/var\/lib\/clickhouse\n/, shown);
    assert.match(out, /fix ownership \(and lost\+found\)/, shown);
    assert.doesNotMatch(out, /WOULD FAIL/, shown);
    assert.equal(r.code, 0, `the plan of an unmoved replica succeeds${shown}`);
    const after = await sh('ch1', 'cat /etc/fstab; findmnt -rn -o TARGET,SOURCE; ls -d /var/lib/clickhouse-tmp 2>&1; systemctl is-active clickhouse-server');
    assert.equal(after, before, 'fstab, mounts, the old directory and the service are as they were');
  });

  test('a failure in the final pass puts the replica back on its original directory', async () => {
    const r = await chops(['run', 'move-data', '-i', lab.inventoryPath, ...COMMON, '--limit', 'ch1', '--inject-failure', 'final-pass']);
    assert.equal(r.code, 1, r.stdout.slice(-2000) + r.stderr);
    const ev = events(r.stdout);
    assert.ok(
      ev.some((e) => e.type === 'step-failed' && /final pass/.test(e.step)),
      'the final pass failed',
    );
    assert.ok(
      ev.some((e) => e.type === 'rollback' && e.ok === true && /stop clickhouse-server/.test(e.step)),
      'the rollback ran and succeeded',
    );
    assert.equal(await isMounted('ch1'), false, 'the new volume is not mounted at the data directory');
    assert.equal((await sh('ch1', '[ -e /var/lib/clickhouse-tmp ] && echo yes || echo no')).trim(), 'no', 'the old directory is back in place');
    assert.equal((await sh('ch1', 'systemctl is-active clickhouse-server')).trim(), 'active');
    assert.match(
      await sh('ch1', 'cat /etc/fstab'),
      /^#chops-move-data-pending# \/mnt\/chops-lab-disk\/vol \/var\/lib\/clickhouse/m,
      'fstab line stays inactive: a reboot cannot mount the partial copy',
    );
    assert.equal((await chQuery(node('ch1'), 'SELECT count() FROM lab.local_mt')).trim(), '1000', 'the replica serves its old data');
    await waitClusterIdle(nodes);
  });

  test('rolling two-phase move with inserts, SIGKILLs of the runner and resumes: no row lost, never a shard down', async () => {
    // Kill points, in the order they can occur; each kills the runner once, then `chops resume`.
    const killPoints: Array<{ what: string; match: (e: any) => boolean; delayMs?: number }> = [
      { what: 'ch1 in the middle of the live copy', match: (e) => e.type === 'progress' && e.host === 'ch1' },
      {
        what: 'ch1 right after the old directory was set aside (mid swap)',
        match: (e) => e.type === 'step-done' && e.host === 'ch1' && /move the old data directory aside/.test(e.step),
      },
      { what: 'ch2 right after the stop (downtime begun)', match: (e) => e.type === 'step-done' && e.host === 'ch2' && /^stop clickhouse-server/.test(e.step) },
      { what: 'ch2 in the middle of the final pass', match: (e) => e.type === 'step-start' && e.host === 'ch2' && /final pass/.test(e.step) },
      {
        what: 'ch4 right after the volume was mounted at the data directory',
        match: (e) => e.type === 'step-done' && e.host === 'ch4' && /mount the new volume at the data directory/.test(e.step),
      },
    ];
    const hit: string[] = [];
    const inserter = startInserter(nodes, 40);
    const sampler = startSampler(nodes);
    let runId: string | undefined;
    let last: Awaited<ReturnType<typeof chops>> | undefined;
    try {
      for (let attempt = 0; attempt <= killPoints.length + 1; attempt++) {
        // Shards move in parallel, so kill points come in no fixed order: the first one not yet
        // hit that this run reaches kills it (one that can no longer happen simply never fires).
        let kp: (typeof killPoints)[number] | undefined;
        const args = runId
          ? ['resume', runId, '-i', lab.inventoryPath, '--yes', '--json']
          : ['run', 'move-data', '-i', lab.inventoryPath, ...COMMON, '--bwlimit', '2000', '--parallel-shards', '2'];
        let killed = false;
        last = await chops(args, {
          timeoutMs: 240_000,
          onLine: (line, child) => {
            if (!line.startsWith('{')) return;
            const e = JSON.parse(line);
            if (!runId && e.type === 'run-start' && e.runId) runId = e.runId;
            if (!runId && typeof e.run === 'string') runId = e.run;
            if (killed) return;
            kp = killPoints.find((k) => !hit.includes(k.what) && k.match(e));
            if (kp) {
              killed = true;
              setTimeout(() => child.kill('SIGKILL'), kp.delayMs ?? 0);
            }
          },
        });
        runId ??= /"runId":"([^"]+)"/.exec(last.stdout)?.[1] ?? /run (\S+):/.exec(last.stdout + last.stderr)?.[1];
        if (killed) {
          assert.equal(last.signal, 'SIGKILL', `killed at: ${kp!.what}`);
          hit.push(kp!.what);
          continue;
        }
        break;
      }
    } finally {
      await sleep(500);
      await inserter.stop();
      await sampler.stop();
    }
    assert.equal(last?.code, 0, `the last resume finishes: ${last?.stdout.slice(-3000)}${last?.stderr}`);
    console.log(`kill points hit (${hit.length}): ${hit.join('; ')}`);
    assert.ok(hit.length >= 4, `at least 4 kill points hit: ${hit.join('; ')}`);

    // Every replica on exactly one complete copy: the new volume at the data dir, the old one aside.
    for (const n of nodes) {
      assert.equal(await isMounted(n.name), true, `${n.name}: the new volume is mounted at the data directory`);
      assert.equal((await sh(n.name, 'findmnt -n -o SOURCE /var/lib/clickhouse')).trim(), 'chops-lab-disk[/vol]');
      assert.equal(
        (await sh(n.name, '[ -e /var/lib/clickhouse-tmp.chops-verified.json ] && [ -d /var/lib/clickhouse-tmp ] && echo yes')).trim(),
        'yes',
        `${n.name}: verified, old copy kept`,
      );
      assert.equal((await sh(n.name, 'systemctl is-active clickhouse-server')).trim(), 'active');
      assert.match(await sh(n.name, 'grep " /var/lib/clickhouse " /etc/fstab'), /^\/mnt\/chops-lab-disk\/vol /, `${n.name}: fstab line active`);
      assert.equal((await chQuery(n, 'SELECT count() FROM lab.local_mt')).trim(), '1000', `${n.name}: non-replicated table intact`);
      assert.equal((await sh(n.name, 'find /var/lib/clickhouse ! -user clickhouse | wc -l')).trim(), '0', `${n.name}: everything owned by clickhouse`);
    }
    assert.ok(Number((await sh('ch1', 'find /var/lib/clickhouse/shadow -type f -links +1 | wc -l')).trim()) > 0, 'shadow/ hard links survived the move');

    // Zero acknowledged rows lost.
    await waitClusterIdle(nodes);
    const ids = inserter.acked.flatMap(batchIds);
    const present = Number(
      (await chQuery(nodes[0], `SELECT count() FROM (SELECT DISTINCT id FROM lab.events WHERE id IN (${ids.join(',')}))`, { timeoutMs: 60_000 })).trim(),
    );
    assert.ok(inserter.acked.length > 50, `inserts went on during the move (${inserter.acked.length} batches)`);
    assert.equal(present, ids.length, `${ids.length - present} acknowledged rows lost`);
    assert.equal((await chQuery(nodes[0], 'SELECT count() FROM lab.events WHERE id >= 1000000000')).trim(), '1000000');

    // Never two replicas of one shard down at the same moment.
    const shards = [
      ['ch1', 'ch2'],
      ['ch3', 'ch4'],
    ];
    // 'down' = connection refused or an error status; a slow answer ('timeout', 2 loaded cores) is not counted as down.
    const bothDown = sampler.samples.filter((s) => shards.some(([a, b]) => s.state[a] === 'down' && s.state[b] === 'down'));
    assert.ok(sampler.samples.length > 100);
    assert.equal(bothDown.length, 0, `samples with a whole shard down: ${JSON.stringify(bothDown.slice(0, 3))}`);
    const downSamples = sampler.samples.filter((s) => Object.values(s.state).some((v) => v !== 'up')).length;
    assert.ok(downSamples > 0, 'the sampler saw the replicas go down (it measures something)');
  });

  test('move-data-cleanup deletes the old directories and reports df -h', async () => {
    const r = await chops(['run', 'move-data-cleanup', '-i', lab.inventoryPath, '--yes', '--json']);
    assert.equal(r.code, 0, r.stdout.slice(-2000) + r.stderr);
    for (const n of nodes)
      assert.equal((await sh(n.name, '[ -e /var/lib/clickhouse-tmp ] && echo yes || echo no')).trim(), 'no', `${n.name}: old directory deleted`);
    const df = events(r.stdout).filter((e) => e.type === 'result' && e.step === 'df -h');
    assert.equal(df.length, 4);
    assert.ok(
      df.every((e) => /chops-lab-disk/.test(e.data.df)),
      'df shows the new volume under the data directory',
    );
    assert.equal((await chQuery(node('ch3'), 'SELECT count() FROM lab.local_mt')).trim(), '1000');
  });
});
