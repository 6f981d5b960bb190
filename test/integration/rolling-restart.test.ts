// rolling-restart against the real replicated ClickHouse lab (4 nspawn containers running
// clickhouse-server 18.16 under systemd, 2 shards × 2 replicas, ZooKeeper on this machine).
// chops runs as a child process, exactly as an operator runs it.
//
//   node --import tsx --test test/integration/rolling-restart.test.ts
//   CHOPS_TEST_REUSE_LAB=1  reuse the test's lab when it is already up (and leave it up)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type LabNode, chQuery, ping, restartedBetween, uptimes, waitClusterIdle } from '../support/clickhouse.js';
import { chops, runIdOf, ensureBuilt } from '../support/cli.js';
import { inventoryVariant, readRunState } from '../support/inventory.js';
import { type TestLab as ChLab, clickhouseLab, labSh } from '../support/lab.js';
import { sleep } from '../support/process.js';
import { batchIds, startInserter, startSampler } from '../support/workload.js';

let lab: ChLab;
let nodes: LabNode[];
const node = (name: string) => nodes.find((n) => n.name === name)!;

before(async () => {
  await ensureBuilt();
  lab = await clickhouseLab('chops-rr');
  nodes = lab.nodes;
  await waitClusterIdle(nodes);
});

after(async () => {
  await lab?.down();
});

const shards = () => [...new Set(nodes.map((n) => n.shard))].map((s) => nodes.filter((n) => n.shard === s));

describe('rolling-restart on the ClickHouse lab', { timeout: 480_000 }, () => {
  test('restarts every replica while inserts continue: no lost insert, never two replicas of a shard down', async () => {
    const before = await uptimes(nodes);
    const sampler = startSampler(nodes);
    const inserter = startInserter(nodes);
    await sleep(500);
    const run = await chops(['run', 'rolling-restart', '-i', lab.inventoryPath, '--yes', '--output', 'plain']).done;
    await sleep(500);
    await inserter.stop();
    await sampler.stop();
    assert.equal(run.code, 0, `chops failed:\n${run.stdout}\n${run.stderr}`);

    // every server restarted exactly by this run
    const afterUp = await uptimes(nodes);
    assert.deepEqual(restartedBetween(before, afterUp).sort(), nodes.map((n) => n.name).sort(), 'every replica restarted');

    // at no sampled moment were two replicas of one shard unreachable, and every replica was seen down
    const seenDown = new Set<string>();
    for (const s of sampler.samples) {
      for (const shard of shards()) {
        const down = shard.filter((n) => s.state[n.name] !== 'up').map((n) => n.name);
        for (const n of down) seenDown.add(n);
        assert.ok(down.length < 2, `at ${new Date(s.t).toISOString()} shard ${shard[0].shard} had ${down.join(' and ')} down at once`);
      }
    }
    // the sampler really watched the restarts: it caught a down replica in every shard (a short
    // stop can fall between two samples on a loaded machine, so not necessarily every replica)
    const gaps = sampler.samples.slice(1).map((s, i) => s.t - sampler.samples[i].t);
    const maxGap = Math.max(...gaps);
    for (const shard of shards()) {
      assert.ok(
        shard.some((n) => seenDown.has(n.name)),
        `the sampler (${sampler.samples.length} samples, max gap ${maxGap} ms) saw a replica of shard ${shard[0].shard} down`,
      );
    }

    // replicas converge to the same rows, and every acknowledged batch is there
    assert.ok(inserter.acked.length > 20, `inserts kept being acknowledged during the restart (${inserter.acked.length} ok, ${inserter.failed} failed)`);
    await waitClusterIdle(nodes);
    const present = new Set<number>();
    for (const shard of shards()) {
      const perReplica = await Promise.all(shard.map((n) => chQuery(n, 'SELECT id FROM lab.events_local ORDER BY id')));
      assert.equal(perReplica[0], perReplica[1], `replicas ${shard.map((n) => n.name).join('/')} of shard ${shard[0].shard} hold the same rows`);
      for (const id of perReplica[0].split('\n').filter(Boolean)) present.add(Number(id));
    }
    const lost = inserter.acked.filter((b) => !batchIds(b).every((id) => present.has(id)));
    assert.deepEqual(lost, [], 'no acknowledged insert is missing');
    console.log(
      `# ${inserter.acked.length} batches acknowledged, ${inserter.failed} refused (next batch sent elsewhere); ${sampler.samples.length} ping samples (max gap ${maxGap} ms), seen down: ${[...seenDown].sort().join(' ')}; run took ${(run.ms / 1000).toFixed(1)} s`,
    );
  });

  test('refuses to stop a replica whose peer is already down, naming the peer', async () => {
    await labSh(lab, 'ch2', 'systemctl stop clickhouse-server');
    try {
      const before = await uptimes([node('ch1')]);
      const run = await chops(['run', 'rolling-restart', '-i', lab.inventoryPath, '--limit', 'ch1,ch2', '--yes', '--output', 'plain']).done;
      assert.notEqual(run.code, 0, 'the run fails');
      const out = run.stdout + run.stderr;
      // the topology check lists ch2 as not checked; the peers gate refuses at once
      assert.match(run.stderr, /refusing to stop ch1: its peer ch2 [^\n]*(down|inactive)/, out);
      assert.doesNotMatch(run.stdout, /> stop clickhouse-server/, 'nothing was stopped');
      assert.deepEqual(restartedBetween(before, await uptimes([node('ch1')])), [], 'ch1 kept running');
    } finally {
      await labSh(lab, 'ch2', 'systemctl start clickhouse-server');
      await waitClusterIdle(nodes);
    }
  });

  test('a topology mismatch stops the run before any change', async () => {
    // ch2 and ch3 trade places: the inventory now disagrees with the servers' macros
    const swapped = inventoryVariant(lab.inventoryPath, 'swapped', (doc) => {
      const [s1, s2] = doc.clusters.lab.shards;
      [s1.replicas[1], s2.replicas[0]] = [s2.replicas[0], s1.replicas[1]];
    });
    const before = await uptimes(nodes);
    const run = await chops(['run', 'rolling-restart', '-i', swapped, '--yes', '--output', 'plain']).done;
    assert.notEqual(run.code, 0, 'the run fails');
    const out = run.stdout + run.stderr;
    assert.match(out, /check topology/, out);
    assert.match(out, /ch2/, out);
    assert.match(out, /ch3/, out);
    assert.doesNotMatch(run.stdout, /> (check peers|stop clickhouse-server)/, 'the rolling phase never began');
    assert.deepEqual(restartedBetween(before, await uptimes(nodes)), [], 'no server restarted');
  });

  test('a replica whose queue cannot drain stops the run at the gate deadline, naming it', async () => {
    // the deadline comes from a flag, which overrides the inventory's gates.wait_timeout (2m)
    await chQuery(node('ch2'), 'SYSTEM STOP FETCHES lab.events_local');
    try {
      for (let i = 0; i < 3; i++) await chQuery(node('ch1'), `INSERT INTO lab.events_local (ts, id, v) VALUES (now(), ${900_000 + i}, 'stuck')`);
      const before = await uptimes(nodes);
      const run = await chops(['run', 'rolling-restart', '-i', lab.inventoryPath, '--limit', 'ch2', '--wait-timeout', '5s', '--yes', '--output', 'plain']).done;
      assert.notEqual(run.code, 0, 'the run fails');
      const out = run.stdout + run.stderr;
      assert.match(out, /FAILED check replica is idle/, out);
      assert.match(run.stderr, /host:\s+ch2/, out);
      assert.match(run.stderr, /ch2: gate "[^"]+"/, out);
      assert.ok(run.ms >= 4500, `waited for the 5 s deadline (took ${run.ms} ms)`);
      assert.ok(run.ms < 30_000, `stopped soon after the deadline (took ${run.ms} ms)`);
      assert.deepEqual(restartedBetween(before, await uptimes(nodes)), [], 'no server restarted');
    } finally {
      await chQuery(node('ch2'), 'SYSTEM START FETCHES lab.events_local');
    }
    await waitClusterIdle(nodes); // the queue may idle ~10 s (retry back-off) before draining
  });

  test('resume never stops a replica on gates that passed before a crash: the peer failed meanwhile', async () => {
    // chops is killed after ch1's gates passed and its stop was recorded as started, before the
    // stop took effect (the window between "start on disk" and the command); while chops is dead
    // the peer ch2 fails. The resume must read the real state: ch1 still serves → gates again →
    // the peers gate refuses, and ch1 is never stopped.
    const first = chops(['run', 'rolling-restart', '-i', lab.inventoryPath, '--limit', 'ch1', '--yes', '--output', 'plain'], {
      onLine: (line) => {
        if (/^\S+ ch1 ok check replica is idle/.test(line)) first.kill('SIGKILL');
      },
    });
    const r1 = await first.done;
    assert.equal(r1.signal, 'SIGKILL', `killed after the gates:\n${r1.stdout}${r1.stderr}`);
    const runId = runIdOf(r1.stdout)!;
    const { RunStore } = await import('../../src/run/state/store.js');
    const { markStep } = await import('../../src/run/state/steps.js');
    const inv = (await import('yaml')).parse((await import('node:fs')).readFileSync(lab.inventoryPath, 'utf8'));
    const store = new RunStore(inv.state.dir);
    const st = await store.load(runId);
    const pi = st.steps.findIndex((p: any) => p.phase === 'restart replicas');
    markStep(st, pi, 'stop clickhouse-server', 'ch1', { status: 'started' });
    await store.save(st);
    await store.flush();
    await labSh(lab, 'ch2', 'systemctl stop clickhouse-server');
    try {
      const before = await uptimes([node('ch1')]);
      const sampler = startSampler(nodes);
      const resumed = await chops(['resume', runId, '-i', lab.inventoryPath, '--yes', '--output', 'plain']).done;
      await sampler.stop();
      assert.equal(resumed.code, 1, `the resume refuses:\n${resumed.stdout}\n${resumed.stderr}`);
      assert.match(resumed.stdout, /ch1 > check peers/, 'the gates were checked again');
      assert.match(resumed.stderr, /ch2/, 'the refusal names the peer that is down');
      assert.doesNotMatch(resumed.stdout, /ch1 > stop clickhouse-server/, 'ch1 was not stopped');
      assert.ok(
        sampler.samples.every((x) => x.state.ch1 === 'up'),
        'ch1 served throughout the resume',
      );
      assert.deepEqual(restartedBetween(before, await uptimes([node('ch1')])), [], 'ch1 kept running');
    } finally {
      await labSh(lab, 'ch2', 'systemctl start clickhouse-server');
      await chops(['unlock', 'lab', '-i', lab.inventoryPath]).done; // whatever happened, leave no stale lock behind
      await waitClusterIdle(nodes);
    }
  });

  test('a rolled-back replica is resumed from its first gate: fixed → restarted once, healthy, run succeeded', async () => {
    // ch3's next start fails (a malformed config.d file): "wait until healthy" fails and the
    // rollback starts it again (it fails again: the file is still there)
    await labSh(lab, 'ch3', "printf '<yandex><broken' > /etc/clickhouse-server/config.d/zz-broken.xml");
    let runId = '';
    try {
      const r1 = await chops(['run', 'rolling-restart', '-i', lab.inventoryPath, '--limit', 'ch3', '--yes', '--output', 'plain', '--wait-timeout', '20s']).done;
      assert.equal(r1.code, 1, `the run fails:\n${r1.stdout}\n${r1.stderr}`);
      assert.match(r1.stdout + r1.stderr, /rolling back/);
      runId = runIdOf(r1.stdout)!;
      const st = readRunState(lab.inventoryPath, runId);
      const hosts = st.steps.find((p: any) => p.phase === 'restart replicas').steps.map((x: any) => [x.name, x.hosts.ch3.status]);
      for (const [name, status] of hosts) assert.ok(status === 'pending' || status === 'failed', `after the rollback ${name} is ${status}, not done`);
    } finally {
      // the operator's fix: remove the file, start the server by hand
      await labSh(
        lab,
        'ch3',
        'rm -f /etc/clickhouse-server/config.d/zz-broken.xml; systemctl reset-failed clickhouse-server; systemctl start clickhouse-server',
      );
    }
    await waitClusterIdle(nodes);
    const before = await uptimes([node('ch3')]);
    const resumed = await chops(['resume', runId, '-i', lab.inventoryPath, '--yes', '--output', 'plain']).done;
    assert.equal(resumed.code, 0, `resume failed:\n${resumed.stdout}\n${resumed.stderr}`);
    assert.equal((resumed.stdout.match(/ch3 > stop clickhouse-server/g) ?? []).length, 1, 'stopped once');
    assert.equal((resumed.stdout.match(/ch3 > start clickhouse-server/g) ?? []).length, 1, 'started once');
    assert.match(resumed.stdout, /ch3 > check peers/, 'from its first gate');
    assert.deepEqual(restartedBetween(before, await uptimes([node('ch3')])), ['ch3'], 'restarted by the resume');
    assert.equal(readRunState(lab.inventoryPath, runId).outcome, 'succeeded');
    await waitClusterIdle(nodes);
  });

  test('resume after SIGKILL finishes the replica in progress and does not restart done replicas', async () => {
    let killedOn = '';
    const doneBeforeKill = new Set<string>();
    const before = await uptimes(nodes);
    const first = chops(['run', 'rolling-restart', '-i', lab.inventoryPath, '--yes', '--output', 'plain'], {
      onLine: (line) => {
        const done = /^\S+ (ch\d) ok wait until healthy/.exec(line);
        if (done) doneBeforeKill.add(done[1]);
        // the second replica of a shard begins its stop: its first replica is done
        if (!killedOn && /^\S+ (ch2|ch4) > stop clickhouse-server/.test(line)) {
          killedOn = line;
          first.kill('SIGKILL');
        }
      },
    });
    const r1 = await first.done;
    assert.equal(r1.signal, 'SIGKILL', `killed during the rolling phase:\n${r1.stdout}${r1.stderr}`);
    const runId = runIdOf(r1.stdout);
    assert.ok(runId, r1.stdout);
    const inProgress = /(ch\d) > stop/.exec(killedOn)![1];
    assert.ok(doneBeforeKill.size >= 1, `a replica was done before the kill:\n${r1.stdout}`);
    // what the resume will find: the replica still serving (killed before its stop took effect)
    // or down; give a stop already sent to systemd time to finish first
    await sleep(2000);
    const servingAtResume = (await ping(node(inProgress), 1000)) === 'up';
    const atKill = await uptimes(nodes);

    const resumed = await chops(['resume', runId!, '-i', lab.inventoryPath, '--yes', '--output', 'plain']).done;
    assert.equal(resumed.code, 0, `resume failed:\n${resumed.stdout}\n${resumed.stderr}`);
    const afterResume = await uptimes(nodes);

    const restartedByResume = restartedBetween(atKill, afterResume);
    for (const done of doneBeforeKill) {
      assert.ok(!restartedByResume.includes(done), `${done} was done before the kill and was not restarted again`);
      // (the topology preflight runs again on resume — on the first host — and changes nothing)
      assert.doesNotMatch(resumed.stdout, new RegExp(`${done} > (?!check topology)`), `resume ran nothing on ${done}`);
    }
    assert.ok(restartedByResume.includes(inProgress), `${inProgress} (in progress at the kill) was restarted by the resume`);
    if (servingAtResume) {
      // still serving: nothing is stopped on the strength of gates that passed before the crash
      assert.match(resumed.stdout, new RegExp(`${inProgress} > check peers`), `${inProgress} was serving: its gates were checked again`);
    } else {
      assert.doesNotMatch(resumed.stdout, new RegExp(`${inProgress} > check peers`), `${inProgress} was down: it continued where it was`);
    }
    // and across the two processes every replica was restarted
    assert.deepEqual(restartedBetween(before, afterResume).sort(), nodes.map((n) => n.name).sort());
    assert.match(resumed.stdout, /> check topology/, 'the topology is checked again before resuming');
    assert.equal(readRunState(lab.inventoryPath, runId!).outcome, 'succeeded');
    await waitClusterIdle(nodes);
  });
});
