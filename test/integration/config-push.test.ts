// config-push against the real replicated ClickHouse lab (2 shards × 2 replicas of Debian's
// clickhouse-server 18.16 under systemd, ZooKeeper on this machine). chops runs as a child
// process, as an operator runs it. The four proofs of issue 13 part 1, plus a resume:
//   a reloadable change (no restart; the new values visible after the reload), an invalid XML
//   (refused before any file is replaced, nothing restarted), a restart-requiring change (gated
//   rolling restart while inserts continue, never two replicas of a shard down, no row lost),
//   a rerun (unchanged everywhere), and a run killed mid-restart then resumed (no node twice).
//
//   node --import tsx --test test/integration/config-push.test.ts
//   CHOPS_TEST_REUSE_LAB=1  reuse the test's lab when it is already up (and leave it up)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type LabNode, chQuery, ping, restartedBetween, uptimes, waitClusterIdle } from '../support/clickhouse.js';
import { chops, runIdOf, ensureBuilt } from '../support/cli.js';
import { inventoryVariant, readRunState } from '../support/inventory.js';
import { type TestLab, clickhouseLab, labSh } from '../support/lab.js';
import { sleep } from '../support/process.js';
import { assertNeverTwoDown, lostBatches, shardsOf, startInserter, startSampler } from '../support/workload.js';

let lab: TestLab;
let nodes: LabNode[];
let inv: string;
let work: string;
const APP_PASSWORD = 'app-pw-7c1e9f2b';

/** A directory of operator files: { 'config.d/50-limits.xml': '…' }. */
function operatorDir(name: string, files: Record<string, string>): string {
  const d = path.join(work, name);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(d, rel)), { recursive: true });
    writeFileSync(path.join(d, rel), text);
  }
  return d;
}

const appUser = `<?xml version="1.0"?>
<yandex>
    <users>
        <app>
            <password>${APP_PASSWORD}</password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </app>
    </users>
</yandex>
`;
const limits = (n: number) => `<?xml version="1.0"?>\n<yandex>\n    <max_concurrent_queries>${n}</max_concurrent_queries>\n</yandex>\n`;

/** sha256 and mtime of every file under /etc/clickhouse-server on every node. */
async function configFiles(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of nodes) out[n.name] = await labSh(lab, n.name, "cd /etc/clickhouse-server && find . -type f -printf '%p %T@ ' -exec sha256sum {} \\; | sort");
  return out;
}

/** The data of STEP of phase "apply" on every host of a run. */
function applyData(runId: string, step: string): Record<string, any> {
  const st = readRunState(inv, runId) as any;
  const s = st.steps.find((p: any) => p.phase === 'apply').steps.find((x: any) => x.name === step);
  return Object.fromEntries(Object.entries(s.hosts).map(([h, v]: [string, any]) => [h, v.data]));
}

/** What ClickHouse itself takes for SYSTEM RELOAD CONFIG on NODE: the client's --time, run on the node (median of 3). */
async function serverReloadMs(node: string): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < 3; i++) t.push(Number((await labSh(lab, node, "clickhouse-client --time -q 'SYSTEM RELOAD CONFIG' 2>&1 | tail -n 1")).trim()) * 1000);
  return t.sort((a, b) => a - b)[1];
}

before(async () => {
  await ensureBuilt();
  lab = await clickhouseLab('chops-cfg');
  nodes = lab.nodes;
  work = mkdtempSync(path.join(tmpdir(), 'chops-config-push-'));
  inv = inventoryVariant(lab.inventoryPath, 'config', (doc) => {
    doc.config = { macros: true, remote_servers: true, profiles: { default: { max_threads: 3 } } };
  });
  await waitClusterIdle(nodes);
});

after(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
  await lab?.down();
});

describe('config-push on the ClickHouse lab', { timeout: 300_000 }, () => {
  test('a reloadable change: the plan shows diffs and RELOAD per node; the run reloads, nothing restarts, the new values are visible', async () => {
    const users = operatorDir('users', { 'users.d/50-app.xml': appUser });
    const plan = await chops(['plan', 'config-push', '-i', inv, '--files', users, '--output', 'plain']).done;
    assert.equal(plan.code, 0, `${plan.stdout}\n${plan.stderr}`);
    for (const n of nodes) {
      const mine = plan.stdout.slice(
        plan.stdout.indexOf(`${n.name} (lab shard`),
        plan.stdout.indexOf('validate on node', plan.stdout.indexOf(`${n.name} (lab shard`)),
      );
      assert.match(mine, /compare files: RELOAD: /, `${n.name}: the decision is shown`);
      assert.match(mine, /^\+\+\+ b\/etc\/clickhouse-server\/users\.d\/chops-profiles\.xml$/m, `${n.name}: the diff is shown`);
      assert.match(mine, new RegExp(`^\\+        <replica>${n.name}</replica>$`, 'm'), `${n.name}: its own macros`);
    }
    assert.match(plan.stdout, /^\+ {12}<password>\*\*\*<\/password>$/m, 'the password line is in the diff, masked');
    assert.doesNotMatch(plan.stdout + plan.stderr, new RegExp(APP_PASSWORD), 'the password is never shown');
    assert.doesNotMatch(plan.stdout, /RESTART/);

    const before = await uptimes(nodes);
    const filesBefore = await configFiles();
    const run = await chops(['run', 'config-push', '-i', inv, '--files', users, '--yes', '--output', 'plain']).done;
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.deepEqual(restartedBetween(before, await uptimes(nodes)), [], 'no server restarted');
    for (const n of nodes) {
      assert.equal((await chQuery(n, "SELECT value FROM system.settings WHERE name = 'max_threads'")).trim(), '3', `${n.name}: the profile's new value`);
      assert.equal((await chQuery(n, "SELECT count() FROM system.clusters WHERE cluster = 'lab'")).trim(), '4');
      // the new user (users.d, reloaded): it logs in on the node with its password
      assert.equal(
        (await labSh(lab, n.name, `clickhouse-client --user app --password ${APP_PASSWORD} -q 'SELECT 42'`)).trim(),
        '42',
        `${n.name}: user app logs in`,
      );
    }
    assert.notDeepEqual(await configFiles(), filesBefore);
    const runId = runIdOf(run.stdout)!;
    const stateDir = path.join(path.dirname(inv), 'state', 'runs', runId);
    for (const f of readdirSync(stateDir))
      assert.doesNotMatch(readFileSync(path.join(stateDir, f), 'utf8'), new RegExp(APP_PASSWORD), `${f} holds no password`);

    // per replica: what chops adds to a config reload beyond the server's own SYSTEM RELOAD CONFIG
    const write = applyData(runId, 'write files');
    const reload = applyData(runId, 'reload and verify');
    const rows: string[] = [];
    for (const n of nodes) {
      const server = await serverReloadMs(n.name);
      const chopsMs = write[n.name].writeMs + reload[n.name].stepMs;
      rows.push(
        `${n.name}: chops ${chopsMs} ms (write ${write[n.name].writeMs}, SYSTEM RELOAD CONFIG ${reload[n.name].reloadMs}, until visible ${reload[n.name].verifyMs}); server's own reload ${server.toFixed(0)} ms; chops adds ${(chopsMs - server).toFixed(0)} ms (${(reload[n.name].reloadMs - server).toFixed(0)} ms around the reload call)`,
      );
    }
    console.log(`# reload: ${rows.join('\n# reload: ')}`);
  });

  test('an invalid XML is refused on the node before any file is replaced; nothing restarts', async () => {
    const bad = operatorDir('bad', { 'config.d/50-limits.xml': '<yandex>\n    <max_concurrent_queries>7</max_concurrent_queries>\n<broken\n</yandex>\n' });
    const before = await uptimes(nodes);
    const filesBefore = await configFiles();
    const run = await chops(['run', 'config-push', '-i', inv, '--files', bad, '--yes', '--output', 'plain']).done;
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /ch\d: the server's own config preprocessing \(clickhouse-client\) refuses the new configuration — nothing was replaced/);
    assert.match(
      run.stderr,
      /Failed to merge config with '\/etc\/clickhouse-server\/config\.d\/50-limits\.xml': SAXParseException/,
      'the file and the parser message',
    );
    assert.doesNotMatch(run.stdout, /> (write files|stop clickhouse-server)/, 'the apply phase never began');
    assert.deepEqual(await configFiles(), filesBefore, 'no file changed on any node');
    const after = await uptimes(nodes);
    assert.deepEqual(restartedBetween(before, after), [], `nothing restarted (uptimes before ${JSON.stringify(before)}, after ${JSON.stringify(after)})`);
  });

  test('a restart-requiring change: gated rolling restart while inserts continue, never two replicas of a shard down, no row lost', async () => {
    const dir = operatorDir('limits', { 'users.d/50-app.xml': appUser, 'config.d/50-limits.xml': limits(123) });
    const plan = await chops(['plan', 'config-push', '-i', inv, '--files', dir, '--output', 'plain']).done;
    assert.equal(
      (plan.stdout.match(/compare files: RESTART: config\.d\/50-limits\.xml new \[max_concurrent_queries\] → restart/g) ?? []).length,
      4,
      plan.stdout,
    );
    const before = await uptimes(nodes);
    const sampler = startSampler(nodes);
    const inserter = startInserter(nodes, 50, 1);
    await sleep(300);
    const run = await chops(['run', 'config-push', '-i', inv, '--files', dir, '--yes', '--output', 'plain']).done;
    await sleep(300);
    await inserter.stop();
    await sampler.stop();
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.deepEqual(restartedBetween(before, await uptimes(nodes)).sort(), nodes.map((n) => n.name).sort(), 'every replica restarted');
    for (const n of nodes) {
      assert.equal((run.stdout.match(new RegExp(`${n.name} ok stop clickhouse-server \\([^)]*\\bok; stopped`, 'g')) ?? []).length, 1, `${n.name} stopped once`);
      // written while stopped: after its stop, before its start
      const lines = run.stdout.split('\n');
      const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
      assert.ok(at(new RegExp(`${n.name} ok stop clickhouse-server`)) < at(new RegExp(`${n.name} ok write files`)), `${n.name}: files written after the stop`);
      assert.ok(at(new RegExp(`${n.name} ok write files`)) < at(new RegExp(`${n.name} > start clickhouse-server`)), `${n.name}: ... and before the start`);
      assert.match(
        await labSh(lab, n.name, 'cat /var/lib/clickhouse/preprocessed_configs/config.xml'),
        /<max_concurrent_queries>123<\/max_concurrent_queries>/,
      );
    }
    const { seenDown, maxGap } = assertNeverTwoDown(nodes, sampler.samples);
    for (const shard of shardsOf(nodes))
      assert.ok(
        shard.some((n) => seenDown.has(n.name)),
        `the sampler (max gap ${maxGap} ms) saw a replica of shard ${shard[0].shard} down`,
      );
    assert.ok(inserter.acked.length > 20, `inserts kept being acknowledged (${inserter.acked.length} ok, ${inserter.failed} failed)`);
    assert.deepEqual(await lostBatches(nodes, inserter.acked), [], 'no acknowledged insert is missing');
    // users.d/50-app.xml was read back from every node (the current-files fact): masked in the log
    const log = readFileSync(path.join(path.dirname(inv), 'state', 'runs', runIdOf(run.stdout)!, 'run.log'), 'utf8');
    assert.doesNotMatch(log, new RegExp(APP_PASSWORD));
    assert.match(log, /<password>\*\*\*<\/password>/, 'the log shows the file chops read, its password masked');
    console.log(
      `# restart: ${inserter.acked.length} batches acknowledged, ${inserter.failed} refused; ${sampler.samples.length} samples (max gap ${maxGap} ms); run ${(run.ms / 1000).toFixed(1)} s`,
    );
  });

  test('a restart-requiring change whose server does not start is rolled back on that replica: old files back, healthy, its peer never stopped', async () => {
    // valid, and accepted by the config preprocessing; only the server, when it starts, finds it
    // cannot create its data path there
    const dir = operatorDir('badpath', {
      'config.d/60-path.xml': '<?xml version="1.0"?>\n<yandex>\n    <path>/proc/chops-no-such-dir/</path>\n</yandex>\n',
    });
    const filesBefore = await configFiles();
    const before = await uptimes(nodes);
    const run = await chops(['run', 'config-push', '-i', inv, '--files', dir, '--limit', 'ch1', '--wait-timeout', '20s', '--yes', '--output', 'plain']).done;
    const out = `${run.stdout}\n${run.stderr}`;
    assert.equal(run.code, 1, out);
    assert.match(out, /ch1 ok write files/, out);
    assert.match(out, /ch1 .*wait until healthy/, out);
    assert.match(out, /rolling back "write files"/, out);
    assert.match(out, /rolling back "stop clickhouse-server"/, out);
    let answered = false;
    for (let i = 0; i < 120 && !answered; i++) {
      answered = (await ping(nodes[0], 1000)) === 'up';
      if (!answered) await sleep(500);
    }
    assert.ok(answered, 'ch1 answers again after the rollback');
    assert.deepEqual(
      await configFiles().then((f) => f.ch1.split(' ').filter((w) => w.startsWith('./'))),
      filesBefore.ch1.split(' ').filter((w) => w.startsWith('./')),
      'ch1 has the files it had: the new one removed',
    );
    assert.doesNotMatch(await labSh(lab, 'ch1', 'cat /var/lib/clickhouse/preprocessed_configs/config.xml'), /chops-no-such-dir/, 'and runs on them');
    const restarted = restartedBetween(before, await uptimes(nodes));
    assert.deepEqual(restarted, ['ch1'], `only ch1 restarted (${restarted.join(', ')})`);
    console.log(`# rolled back after: ${/^\s*error:\s+(.*)$/m.exec(run.stderr)?.[1] ?? '(no error line)'}`);
    await waitClusterIdle(nodes);
  });

  test('a rerun of the same push is unchanged everywhere: no write, no reload, no restart', async () => {
    const dir = path.join(work, 'limits');
    const before = await uptimes(nodes);
    const filesBefore = await configFiles();
    const run = await chops(['run', 'config-push', '-i', inv, '--files', dir, '--yes', '--output', 'plain']).done;
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.equal((run.stdout.match(/ok compare files \([^)]*unchanged: 5 files already right\)/g) ?? []).length, 4, run.stdout);
    assert.doesNotMatch(run.stdout, /ok (stop|start) clickhouse-server \([^)]*\bok;/, 'no server stopped or started');
    assert.equal((run.stdout.match(/ok write files \([^)]*unchanged: files already right\)/g) ?? []).length, 4, 'no file written');
    assert.doesNotMatch(run.stdout, /clickhouse-sql> SYSTEM RELOAD CONFIG/);
    assert.match(run.stdout, /config-push: every node unchanged/);
    assert.deepEqual(await configFiles(), filesBefore, 'no file rewritten');
    const after = await uptimes(nodes);
    assert.deepEqual(restartedBetween(before, after), [], `nothing restarted (uptimes before ${JSON.stringify(before)}, after ${JSON.stringify(after)})`);
  });

  test('killed during the rolling restart, resumed: the rest is done, no node restarted twice, no file rewritten', async () => {
    const dir = operatorDir('limits2', { 'users.d/50-app.xml': appUser, 'config.d/50-limits.xml': limits(124) });
    const before = await uptimes(nodes);
    let killedAfter = '';
    const first = chops(['run', 'config-push', '-i', inv, '--files', dir, '--yes', '--output', 'plain'], {
      onLine: (line) => {
        if (!killedAfter && /^\S+ ch1 ok wait until healthy/.test(line)) {
          killedAfter = line;
          first.kill('SIGKILL');
        }
      },
    });
    const r1 = await first.done;
    assert.equal(r1.signal, 'SIGKILL', `killed once ch1 was healthy again:\n${r1.stdout}${r1.stderr}`);
    const runId = runIdOf(r1.stdout)!;
    await sleep(1500); // a stop already sent to systemd finishes
    const atKill = await uptimes(nodes);
    const resumed = await chops(['resume', runId, '-i', inv, '--yes', '--output', 'plain']).done;
    assert.equal(resumed.code, 0, `resume failed:\n${resumed.stdout}\n${resumed.stderr}`);
    const afterResume = await uptimes(nodes);
    assert.ok(!restartedBetween(atKill, afterResume).includes('ch1'), 'ch1 (done before the kill) is not restarted again');
    assert.doesNotMatch(resumed.stdout, /ch1 > (write files|stop clickhouse-server)/, 'nor are its files written again');
    assert.deepEqual(restartedBetween(before, afterResume).sort(), nodes.map((n) => n.name).sort(), 'across both processes every replica restarted');
    // The kill lands on ch1's line while the other shard is anywhere in its own replicas: a stop
    // there may be done and printed, done in the journal with its line lost to the kill, or sent
    // to systemd and left unfinished (the resume then finds it stopped and says the interrupted
    // run had begun it). Each node is stopped by exactly one of these.
    const stopNote = (h: string) =>
      readRunState(inv, runId)
        .steps.find((p: any) => p.phase === 'apply')
        .steps.find((x: any) => x.name === 'stop clickhouse-server').hosts[h]?.note ?? '';
    for (const n of nodes) {
      const printed = (out: string) => (out.match(new RegExp(`${n.name} ok stop clickhouse-server \\([^)]*\\bok; stopped`, 'g')) ?? []).length;
      const note = stopNote(n.name);
      const shown = printed(r1.stdout) + printed(resumed.stdout);
      const unshown = /^stopped in /.test(note) || /^already stopped \(\w+\); the interrupted run had begun this step$/.test(note);
      assert.equal(
        shown || (unshown ? 1 : 0),
        1,
        `${n.name} stopped exactly once across the run and its resume (state: "${note}")\n${r1.stdout}\n--- resumed\n${resumed.stdout}`,
      );
      assert.match(
        await labSh(lab, n.name, 'cat /var/lib/clickhouse/preprocessed_configs/config.xml'),
        /<max_concurrent_queries>124<\/max_concurrent_queries>/,
      );
    }
    assert.equal((readRunState(inv, runId) as any).outcome, 'succeeded');
    await waitClusterIdle(nodes);
  });
});
