// rolling-upgrade against the real replicated ClickHouse lab (4 nspawn containers running Debian's
// clickhouse-server 18.16 under systemd, 2 shards × 2 replicas, ZooKeeper on this machine), with a
// local package repository served over HTTP on the lab bridge (test/support/apt-repo.ts: the
// Debian packages, the same packages rebuilt as a higher version, and a version whose server dies
// at start). The lab hosts use only that repository (their Debian sources are set aside).
//
//   flock /run/chops-heavy.lock node --import tsx --test --test-concurrency=1 test/integration/rolling-upgrade.test.ts
//   CHOPS_TEST_REUSE_LAB=1  reuse the test's lab when it is already up (and leave it up; packages are put back to BASE first)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { type LabNode, chQuery, ping, restartedBetween, uptimes, waitClusterIdle } from '../support/clickhouse.js';
import { chops, runIdOf, ensureBuilt } from '../support/cli.js';
import { readRunState } from '../support/inventory.js';
import { type TestLab as ChLab, REUSE, clickhouseLab, labSh } from '../support/lab.js';
import { sleep } from '../support/process.js';
import { BASE, BROKEN, NEXT, PACKAGES, type AptRepoServer, buildAptRepo, serveAptRepo } from '../support/apt-repo.js';
import { assertNeverTwoDown, lostBatches, startInserter, startSampler } from '../support/workload.js';

let lab: ChLab;
let nodes: LabNode[];
let repo: AptRepoServer;
const node = (name: string) => nodes.find((n) => n.name === name)!;
const CONFIG_NAME = 'zz-chops-upgrade.xml';
const CONFIG_DEST = `/etc/clickhouse-server/config.d/${CONFIG_NAME}`;

/** package → installed version on HOST. */
async function installed(host: string): Promise<Record<string, string>> {
  const out = await labSh(lab, host, `dpkg-query -W -f '\${Package} \${Version}\\n' ${PACKAGES.join(' ')}`);
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' ')),
  );
}
const held = async (host: string) => (await labSh(lab, host, 'apt-mark showhold')).trim().split('\n').filter(Boolean).sort();
/** How often dpkg configured clickhouse-server at VERSION on HOST (its log survives across runs). */
async function installsOf(host: string, version: string): Promise<number> {
  const out = await labSh(lab, host, `grep -c ' status installed clickhouse-server:amd64 ${version}$' /var/log/dpkg.log || true`);
  return Number(out.trim());
}
const everyNode = <T>(f: (n: string) => Promise<T>) => Promise.all(nodes.map((n) => f(n.name)));

before(async () => {
  await ensureBuilt();
  const [dir, l] = await Promise.all([buildAptRepo(), clickhouseLab('chops-upg')]);
  lab = l;
  nodes = lab.nodes;
  repo = await serveAptRepo(dir, `${lab.lab.net}.1`);
  // The hosts' apt sees only the lab repository (no route to the Debian archive from the lab).
  await everyNode((h) =>
    labSh(
      lab,
      h,
      `set -e; [ ! -e /etc/apt/sources.list ] || mv /etc/apt/sources.list /etc/apt/sources.list.chops-test-disabled
echo ${JSON.stringify(repo.sourcesLine)} > /etc/apt/sources.list.d/chops-lab.list`,
    ),
  );
  if (REUSE) await backToBase();
  await waitClusterIdle(nodes);
});

after(async () => {
  await repo?.close();
  await lab?.down();
});

/** A reused lab: every host on the BASE packages, unheld, without the pushed config (a fresh lab already is). */
async function backToBase(): Promise<void> {
  await everyNode(async (h) => {
    if (Object.values(await installed(h)).every((v) => v === BASE) && !(await held(h)).length) return;
    await labSh(
      lab,
      h,
      `set -e; rm -f ${CONFIG_DEST} /usr/sbin/policy-rc.d; apt-get -q update >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get -q -y --allow-downgrades --allow-change-held-packages install ${PACKAGES.map((p) => `${p}=${BASE}`).join(' ')} >/dev/null
apt-mark unhold ${PACKAGES.join(' ')} >/dev/null; systemctl reset-failed clickhouse-server || true; systemctl restart clickhouse-server`,
    );
  });
}

describe('rolling-upgrade on the ClickHouse lab', { timeout: 480_000 }, () => {
  test('a version no repository offers is refused on every host before any change', async () => {
    const before = await uptimes(nodes);
    const run = await chops(['run', 'rolling-upgrade', '-i', lab.inventoryPath, '--version', '18.16.9', '--yes', '--output', 'plain']).done;
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /cannot upgrade to 18\.16\.9: clickhouse-common 18\.16\.9: not offered by the repositories \(they offer /, run.stderr);
    assert.doesNotMatch(run.stdout, /> (install packages|stop clickhouse-server)/, 'no replica was touched');
    assert.deepEqual(restartedBetween(before, await uptimes(nodes)), []);
    for (const v of await everyNode(installed)) assert.deepEqual(Object.values(v), [BASE, BASE, BASE]);
  });

  test('--canary 1 --soak 5s with inserts running, SIGKILL mid-run, resume: every replica on NEXT, held, verified, nothing lost', async () => {
    const config = path.join(lab.dir, CONFIG_NAME);
    // a setting the old binary has never seen: it must reach a host only with the new binary
    writeFileSync(config, '<?xml version="1.0"?>\n<yandex>\n    <chops_upgrade_marker>next</chops_upgrade_marker>\n</yandex>\n');
    const before = await uptimes(nodes);
    const installsBefore = Object.fromEntries(await everyNode(async (h) => [h, await installsOf(h, NEXT)] as const));
    const sampler = startSampler(nodes);
    const inserter = startInserter(nodes);
    await sleep(300);
    const lines: string[] = [];
    let status: Promise<{ code: number | null; stdout: string }> | undefined;
    let killedAt = '';
    const first = chops(
      ['run', 'rolling-upgrade', '-i', lab.inventoryPath, '--version', NEXT, '--canary', '1', '--soak', '5s', '--config', config, '--yes', '--output', 'plain'],
      {
        onLine: (line) => {
          lines.push(line);
          // while the canary soaks, the operator looks: its shard mixes versions
          if (!status && / > soak the canaries/.test(line)) status = chops(['status', '-i', lab.inventoryPath]).done;
          // the second replica of shard 02 begins its stop: ch3 (and the canary) are done
          if (!killedAt && /^\S+ ch4 > stop clickhouse-server/.test(line)) {
            killedAt = line;
            first.kill('SIGKILL');
          }
        },
      },
    );
    const r1 = await first.done;
    assert.equal(r1.signal, 'SIGKILL', `killed in the rest phase:\n${r1.stdout}${r1.stderr}`);
    const runId = runIdOf(r1.stdout)!;
    // the canary first, alone; the soak; only then the others
    const firstOther = lines.findIndex((l) => /^\S+ ch[234] > install packages/.test(l));
    const canaryVerified = lines.findIndex((l) => /^\S+ ch1 ok verify version/.test(l));
    const soaked = lines.findIndex((l) => /ok soak the canaries .*ch1 stayed healthy for 5\.0 s/.test(l));
    assert.ok(canaryVerified >= 0 && soaked > canaryVerified && firstOther > soaked, `canary ch1, soak, then the rest:\n${lines.join('\n')}`);
    const st = await status!;
    assert.match(
      st.stdout,
      new RegExp(
        `mixed versions in shard lab/01: ch1 18\\.16\\.1 \\(package ${NEXT.replace(/[.+~]/g, '\\$&')}\\), ch2 18\\.16\\.1 \\(package ${BASE.replace(/[.+]/g, '\\$&')}\\)`,
      ),
      st.stdout,
    );
    const doneBeforeKill = [...new Set(lines.flatMap((l) => /^\S+ (ch\d) ok verify version/.exec(l)?.[1] ?? []))];
    assert.ok(doneBeforeKill.includes('ch1') && doneBeforeKill.includes('ch3'), `ch1 and ch3 were done at the kill: ${doneBeforeKill}`);

    const resumed = await chops(['resume', runId, '-i', lab.inventoryPath, '--yes', '--output', 'plain']).done;
    await sleep(300);
    await inserter.stop();
    await sampler.stop();
    assert.equal(resumed.code, 0, `resume failed:\n${resumed.stdout}\n${resumed.stderr}`);
    for (const done of doneBeforeKill) {
      assert.doesNotMatch(resumed.stdout, new RegExp(`${done} > (install packages|stop clickhouse-server)`), `resume did not touch ${done}`);
      assert.equal(await installsOf(done, NEXT), installsBefore[done] + 1, `${done} was installed once`);
    }
    assert.match(resumed.stdout, /ch4 > (check peers|start clickhouse-server)/, 'the replica in progress was finished');
    assert.doesNotMatch(resumed.stdout, /> soak the canaries/, 'the soak is not repeated');

    // every replica: NEXT installed and held, restarted onto it, verified; the config came with the new binary
    const afterUp = await uptimes(nodes);
    assert.deepEqual(restartedBetween(before, afterUp).sort(), ['ch1', 'ch2', 'ch3', 'ch4']);
    const state = readRunState(lab.inventoryPath, runId);
    assert.equal(state.outcome, 'succeeded');
    for (const n of nodes) {
      assert.deepEqual(await installed(n.name), Object.fromEntries(PACKAGES.map((p) => [p, NEXT])), `${n.name} packages`);
      assert.deepEqual(await held(n.name), [...PACKAGES].sort(), `${n.name} held`);
      assert.equal((await chQuery(n, 'SELECT version()')).trim(), '18.16.1');
      const deleted = await labSh(lab, n.name, `grep -c '(deleted)' /proc/$(systemctl show -p MainPID --value clickhouse-server)/maps || true`);
      assert.equal(deleted.trim(), '0', `${n.name} runs the installed files`);
      const phase = state.steps.find((p: any) => p.phase.startsWith('upgrade replicas') && p.steps[0].hosts[n.name]);
      const step = (name: string) => phase.steps.find((s: any) => s.name === name).hosts[n.name];
      assert.equal(step('verify version').status, 'done', `${n.name} verified`);
      // config.d got the file after the old server stopped, before the new one started
      const mtime = Number(await labSh(lab, n.name, `stat -c %Y ${CONFIG_DEST}`)) * 1000;
      assert.ok(mtime >= Date.parse(step('stop clickhouse-server').finishedAt) - 1000, `${n.name}: config written after the stop`);
      assert.ok(mtime <= Date.parse(step('start clickhouse-server').startedAt) + 1000, `${n.name}: config written before the start`);
    }
    assert.ok(
      repo.requests.some((r) => r === `clickhouse-common_${NEXT}_amd64.deb`),
      'apt fetched the packages from the lab repository',
    );

    // never two replicas of a shard down; inserts kept going; nothing acknowledged was lost
    assertNeverTwoDown(nodes, sampler.samples);
    assert.ok(inserter.acked.length > 20, `inserts acknowledged during the upgrade (${inserter.acked.length} ok, ${inserter.failed} refused)`);
    await waitClusterIdle(nodes);
    // (lostBatches asserts that the replicas of each shard hold the same rows)
    assert.deepEqual(await lostBatches(nodes, inserter.acked), [], 'no acknowledged insert is missing');
    console.log(
      `# ${inserter.acked.length} batches acknowledged, ${inserter.failed} refused; killed at: ${killedAt}; run ${(r1.ms / 1000).toFixed(1)} s + resume ${(resumed.ms / 1000).toFixed(1)} s`,
    );
    printOverhead(state);
  });

  test('a version whose server does not start is rolled back on that replica; the run stops; its peer was never down', async () => {
    const config = path.join(lab.dir, 'zz-chops-upgrade-broken.xml');
    writeFileSync(config, '<?xml version="1.0"?>\n<yandex>\n    <chops_upgrade_marker>broken</chops_upgrade_marker>\n</yandex>\n');
    const before = await uptimes(nodes);
    const brokenBefore = await installsOf('ch3', BROKEN);
    const sampler = startSampler(nodes);
    const run = await chops([
      'run',
      'rolling-upgrade',
      '-i',
      lab.inventoryPath,
      '--version',
      BROKEN,
      '--limit',
      'ch3,ch4',
      '--config',
      config,
      '--yes',
      '--output',
      'plain',
      '--wait-timeout',
      '60s',
    ]).done;
    await sampler.stop();
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    const out = run.stdout + run.stderr;
    assert.match(out, /ch3 [^\n]*FAILED wait until healthy/, out);
    assert.match(out, /clickhouse-server failed to start/, out);
    assert.match(
      out,
      new RegExp(`ch3 rolled back to clickhouse-common, clickhouse-server, clickhouse-client ${NEXT.replace(/[.+~]/g, '\\$&')} and healthy`),
      out,
    );
    assert.doesNotMatch(run.stdout, /ch4 > (install packages|stop clickhouse-server)/, 'ch4 was not touched');
    // ch3 is back on NEXT, held, serving; its broken-version config is gone
    assert.deepEqual(await installed('ch3'), Object.fromEntries(PACKAGES.map((p) => [p, NEXT])));
    assert.deepEqual(await held('ch3'), [...PACKAGES].sort());
    assert.equal(await ping(node('ch3')), 'up');
    assert.equal(
      (await labSh(lab, 'ch3', `test -e /etc/clickhouse-server/config.d/zz-chops-upgrade-broken.xml && echo present || echo absent`)).trim(),
      'absent',
    );
    assert.equal(await installsOf('ch3', BROKEN), brokenBefore + 1, 'the broken version was really installed');
    // the shard never lost its peer: ch4 served throughout, was not restarted, kept its packages
    assert.ok(sampler.samples.length > 20 && sampler.samples.every((s) => s.state.ch4 === 'up'), 'ch4 answered at every sample');
    assert.ok(
      sampler.samples.some((s) => s.state.ch3 !== 'up'),
      'the sampler saw ch3 down',
    );
    assert.deepEqual(restartedBetween(before, await uptimes(nodes)), ['ch3']);
    assert.deepEqual(await installed('ch4'), Object.fromEntries(PACKAGES.map((p) => [p, NEXT])));
    assert.equal(readRunState(lab.inventoryPath, runIdOf(run.stdout)!).outcome, 'failed');
    await waitClusterIdle(nodes);
  });

  test('a cluster already on the version: nothing is installed, nothing restarts', async () => {
    const before = await uptimes(nodes);
    const run = await chops(['run', 'rolling-upgrade', '-i', lab.inventoryPath, '--version', NEXT, '--yes', '--output', 'plain']).done;
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.equal((run.stdout.match(/ok install packages \([^)]*unchanged: already 18\.16\.1\+ds-7\.4~chops1, held/g) ?? []).length, 4, run.stdout);
    assert.equal((run.stdout.match(/ok stop clickhouse-server \([^)]*unchanged: already runs/g) ?? []).length, 4, run.stdout);
    assert.deepEqual(restartedBetween(before, await uptimes(nodes)), []);
  });

  test('a canary that degrades during the soak stops the run before any other replica', async () => {
    // the cluster is on NEXT already: the canary's steps skip, the soak watches it; an error appears in its log
    let injected: Promise<string> | undefined;
    const run = await chops(
      ['run', 'rolling-upgrade', '-i', lab.inventoryPath, '--version', NEXT, '--canary', '1', '--soak', '30s', '--yes', '--output', 'plain'],
      {
        onLine: (line) => {
          if (!injected && / > soak the canaries/.test(line))
            injected = labSh(
              lab,
              'ch1',
              `sleep 1; echo "$(date '+%Y.%m.%d %H:%M:%S').000000 [ 1 ] {} <Error> chops-test: injected error" >> /var/log/clickhouse-server/clickhouse-server.err.log`,
            );
        },
      },
    ).done;
    await injected;
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.match(
      run.stderr,
      /canary ch1 degraded [\d.]+ s into the 30 s soak: \d+ new error\(s\) in \/var\/log\/clickhouse-server\/clickhouse-server\.err\.log, last: .*chops-test: injected error/,
      run.stderr,
    );
    assert.match(run.stderr, /no other replica was touched/);
    assert.doesNotMatch(run.stdout, /ch[234] > (install packages|check peers)/, 'the rest never began');
  });
});

/**
 * Per replica, what chops adds beyond the server's own restart: the replica's steps from the
 * first to the last, minus apt's install, the stop (systemctl stop: the server's shutdown) and the
 * server's start until it answers; the rest is the gates, the verification and chops' own work
 * (including the gates' caught_up_for hold, shown apart).
 */
function printOverhead(state: any): void {
  for (const phase of state.steps.filter((p: any) => p.phase.startsWith('upgrade replicas'))) {
    for (const host of Object.keys(phase.steps[0].hosts)) {
      const s = (name: string) => phase.steps.find((x: any) => x.name === name).hosts[host];
      const steps = phase.steps.map((x: any) => x.hosts[host]).filter((x: any) => x.startedAt && x.finishedAt);
      const total = Math.max(...steps.map((x: any) => Date.parse(x.finishedAt))) - Math.min(...steps.map((x: any) => Date.parse(x.startedAt)));
      const install = s('install packages').data?.installMs ?? 0;
      const stop = s('stop clickhouse-server').data?.stopMs ?? 0;
      const healthy = s('wait until healthy').data ?? {};
      const answered = healthy.answeredAfterMs ?? 0;
      const hold = (healthy.caughtUpAfterMs ?? 0) - answered;
      const chops = total - install - stop - answered;
      console.log(
        `# ${host}: replica ${total} ms = apt install ${install} + server stop ${stop} + server start→answers ${answered} + chops ${chops} (of which catch-up/hold ${hold}); gates ${s('check peers').durationMs}+${s('check replica is idle').durationMs} ms, verify ${s('verify version').durationMs} ms`,
      );
    }
  }
}
