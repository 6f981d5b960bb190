// chops backup on the real replicated ClickHouse lab (4 nspawn containers, clickhouse-server
// 18.16, real cron/logrotate/sshd), with the clickhouse-backup test double on every node and a
// real sftp remote on ch4. The agent is always started with exactly cron's command line and
// environment (`chops backup run`, or `env -i … /bin/sh -c CMD` inside the node).
//
//   flock /run/chops-heavy.lock node --import tsx --test test/integration/backup.test.ts
//   CHOPS_TEST_REUSE_LAB=1  reuse the running lab chops-bk (left up) instead of bringing one up
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { prepareBackupLab, remoteNames } from '../support/backup-lab.js';
import { chQuery, waitClusterIdle } from '../support/clickhouse.js';
import { chops, ensureBuilt } from '../support/cli.js';
import { inventoryVariant } from '../support/inventory.js';
import { type TestLab, clickhouseLab, labSh } from '../support/lab.js';
import { sleep } from '../support/process.js';
import { labExec } from '../lab/lab.js';

let lab: TestLab;
let inv: string;
let password: string;
const node = (name: string) => lab.nodes.find((n) => n.name === name)!;
const AGENT = '/usr/local/sbin/chops-backup-agent';
const CRON_ENV = 'env -i SHELL=/bin/sh PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LOGNAME=root USER=root /bin/sh -c';

const sh = (host: string, cmd: string, input?: string) => labExec(lab.lab, host, cmd, { check: false, input, timeoutMs: 180_000 });
const status = async (host: string) => JSON.parse(await labSh(lab, host, 'cat /var/lib/chops-backup/status.json'));
const insert = (host: string, n: number) =>
  chQuery(node(host), `INSERT INTO lab.events_local (ts, id, v) SELECT now(), number, toString(number) FROM system.numbers LIMIT ${n}`);
const faults = (host: string, text: string) => sh(host, 'cat > /etc/clickhouse-backup/double-faults', text);
const cli = async (args: string[]) => chops([...args, '-i', inv]).done;

before(async () => {
  await ensureBuilt();
  lab = await clickhouseLab('chops-bk');
  await waitClusterIdle(lab.nodes);
  inv = await prepareBackupLab(lab);
  password = lab.lab.clickhouseOps!.password;
  await Promise.all([insert('ch1', 50_000), insert('ch3', 20_000)]);
});

after(async () => {
  await lab?.down();
});

test('an invalid schedule is refused before anything is written (exit 2, names the expression and where)', async () => {
  const bad = inventoryVariant(inv, 'badcron', (d) => (d.backup.schedule.full = '61 20 * * 6'));
  const r = await chops(['backup', 'install', '-i', bad]).done;
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /inventory-backup-badcron\.yml:\d+:\d+ \(backup\.schedule\.full\): invalid cron expression "61 20 \* \* 6"/);
  assert.equal((await sh('ch1', 'test -e /etc/cron.d/chops-backup || test -e /usr/local/sbin/chops-backup-agent; echo $?')).stdout.trim(), '1');
});

test('install: plan masks secrets; files, modes, disabled replicas, next runs; logrotate -d on the node; rerun unchanged', async () => {
  const plan = await cli(['plan', 'backup-install']);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /password: "\*\*\*"/);
  assert.ok(!plan.stdout.includes(password) && !plan.stderr.includes(password), 'secret in plan output');
  assert.match(plan.stdout, /30 20 \* \* 6 root \/usr\/local\/sbin\/chops-backup-agent full/);

  const r = await cli(['backup', 'install', '--output', 'plain']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /01 +ch1 +30 20 \* \* 6 +→ +Sat \d{4}-\d\d-\d\d 20:30 \S+, Sat .*, Sat /);
  assert.match(r.stdout, /02 +ch3 +40 20 \* \* 6 +→ .*10 \* \* \* \* +→ /); // staggered by 10 min
  assert.equal(
    (
      await labSh(
        lab,
        'ch1',
        'stat -c "%a %U" /etc/clickhouse-backup/config.yml /etc/cron.d/chops-backup /etc/logrotate.d/chops-backup /usr/local/sbin/chops-backup-agent',
      )
    ).trim(),
    '600 root\n644 root\n644 root\n755 root',
  );
  assert.match(
    await labSh(lab, 'ch2', 'cat /etc/cron.d/chops-backup'),
    /DISABLED on this node: ch1 is the active replica of shard 01\n(.*\n)*# 30 20 \* \* 6 root/,
  );
  const disabled = await sh('ch2', `${CRON_ENV} '${AGENT} diff'`);
  assert.equal(disabled.code, 3, disabled.stderr);
  // the node's own logrotate reads the installed file without complaint
  const lr = await sh('ch1', 'logrotate -d /etc/logrotate.d/chops-backup 2>&1');
  assert.equal(lr.code, 0, lr.stdout);
  assert.doesNotMatch(lr.stdout, /^error/m);

  const again = await cli(['backup', 'install', '--output', 'json']);
  assert.equal(again.code, 0, again.stderr);
  const steps = again.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'step-done');
  assert.equal(steps.length, 4 * 6);
  assert.deepEqual(
    steps.filter((e) => e.changed).map((e) => `${e.host} ${e.step}`),
    [],
    'a rerun changed something',
  );
  assert.ok(
    steps.filter((e) => e.step !== 'check tools').every((e) => /^unchanged/.test(e.skipped)),
    JSON.stringify(steps),
  );
});

test('DIFF with no FULL becomes a FULL with a warning; the next DIFF is based on it; status and list', async () => {
  const first = await cli(['backup', 'run', '--type', 'diff', '--shard', '01']);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  assert.match(first.stdout, /warn DIFF requested but the remote list has no good backup to base it on: taking a FULL/);
  const full = (await status('ch1')).last_full;
  assert.match(full.name, /^full-/);
  // a real hard-link snapshot: the backup's part files share inodes with nothing copied
  assert.match(await labSh(lab, 'ch1', `find /var/lib/clickhouse/backup/${full.name}/shadow -type f -name '*.bin' -links +1 | head -1`), /\.bin/);
  await insert('ch1', 5000);
  const second = await cli(['backup', 'run', '--type', 'diff']); // both shards: 02 has no FULL yet either
  assert.equal(second.code, 0, second.stdout + second.stderr);
  const s = await status('ch1');
  assert.equal(s.last_diff.base, full.name);
  assert.equal(s.last_diff.chain, 1);
  assert.match(await labSh(lab, 'ch1', 'cat /var/log/clickhouse-backup/agent.log'), new RegExp(`upload --diff-from-remote ${full.name} ${s.last_diff.name}`));
  const st = await cli(['backup', 'status']);
  assert.equal(st.code, 0, st.stdout + st.stderr);
  process.stdout.write(`\n# chops backup status (lab):\n${st.stdout}\n`);
  assert.match(st.stdout, new RegExp(`01 +ch1 +${full.name} .* ${s.last_diff.name} .* ${full.name} / 1 +ok diff +free +ok`));
  const list = await cli(['backup', 'list', '--json']);
  assert.equal(list.code, 0, list.stderr);
  const backups = JSON.parse(list.stdout).backups;
  assert.deepEqual(
    backups.filter((b: any) => b.shard === '01').map((b: any) => [b.name, b.base, b.good]),
    [
      [full.name, null, true],
      [s.last_diff.name, full.name, true],
    ],
  );
});

test('upload fails → exit 6, a broken remote folder, never a base; disk full during create → exit 5, leftovers removed', async () => {
  const before1 = await status('ch1');
  let failedName = '';
  await faults('ch1', 'upload_fail=1\n');
  // shard 02: its backup dir on a tiny full tmpfs (same mount point the tool writes under)
  await sh(
    'ch3',
    'mkdir -p /var/lib/clickhouse/backup && mount -t tmpfs -o size=64k tmpfs /var/lib/clickhouse/backup && chown clickhouse: /var/lib/clickhouse/backup && dd if=/dev/zero of=/var/lib/clickhouse/backup/.fill bs=4k 2>/dev/null; true',
  );
  try {
    await insert('ch1', 3000);
    const r = await cli(['backup', 'run', '--type', 'diff']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ch1: backup agent exited 6 \(upload failed\)/);
    assert.match(r.stderr, /ch3: backup agent exited 5 \(create failed\)/);
    const s1 = await status('ch1');
    assert.equal(s1.last_attempt.result, 'failed');
    assert.match(s1.last_attempt.error, /connection lost/);
    assert.deepEqual(s1.last_diff, before1.last_diff, 'a failed upload was recorded as a good backup');
    failedName = s1.last_attempt.name;
    assert.ok((await remoteNames(lab, '01')).includes(failedName));
    assert.equal((await sh(SFTP, `test -e /srv/backups/lab/01/${failedName}/metadata.json; echo $?`)).stdout.trim(), '1');
    const s3 = await status('ch3');
    assert.equal(s3.last_attempt.exit_code, 5);
    assert.match(s3.last_attempt.error, /no space left on device/i);
    assert.equal((await labSh(lab, 'ch3', 'ls -A /var/lib/clickhouse/backup; ls -A /var/lib/clickhouse/shadow | grep -v increment.txt; true')).trim(), '.fill');
    const st = await cli(['backup', 'status']);
    assert.equal(st.code, 1);
    assert.match(st.stdout, /last run failed: upload diff-\S+ exited 1/);
    assert.match(st.stdout, /last run failed: create (full|diff)-\S+ exited 1: .*no space left on device/i);
  } finally {
    await faults('ch1', '');
    await sh('ch3', 'umount /var/lib/clickhouse/backup');
  }
  // the next DIFF is based on the last good backup, never on the broken one, which retention removes
  const ok = await cli(['backup', 'run', '--type', 'diff', '--shard', '01']);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const s = await status('ch1');
  assert.equal(s.last_diff.base, before1.last_diff.name);
  assert.equal(s.last_diff.chain, 2);
  assert.ok(!(await remoteNames(lab, '01')).includes(failedName), 'the broken remote folder is still there');
});

const SFTP = 'ch4';

test('overlapping run waits then exits 4; a killed run leaves a broken folder and a stale status, cleaned by the next run; no secret anywhere but config.yml', async () => {
  await faults('ch1', 'upload_delay=6\n');
  await insert('ch1', 2000);
  const a = sh('ch1', `${CRON_ENV} '${AGENT} diff'`);
  // wait until it uploads
  for (let i = 0; i < 150 && !/phase upload/.test(await labSh(lab, 'ch1', 'tail -n 3 /var/log/clickhouse-backup/agent.log')); i++) await sleep(200);
  const ps = await labSh(lab, 'ch1', 'ps -eo args');
  assert.ok(!ps.includes(password), 'secret on a command line');
  const b = await sh('ch1', `${CRON_ENV} '${AGENT} full'`);
  assert.equal(b.code, 4, b.stderr);
  assert.match(b.stderr, /node lock still busy after 3 s \(backup diff pid \d+ since/);
  // kill the running agent and its clickhouse-backup, by pid, with SIGKILL (no trap runs)
  const owner = await labSh(lab, 'ch1', 'cat /run/lock/chops-node.lock.owner');
  const pid = /pid (\d+)/.exec(owner)![1];
  await sh('ch1', `kids=$(ps -o pid= --ppid ${pid}); grand=$(for k in $kids; do ps -o pid= --ppid $k; done); kill -9 ${pid} $kids $grand`);
  await a;
  await faults('ch1', '');
  const killed = await status('ch1');
  assert.equal(killed.last_attempt.result, 'running');
  const killedName = killed.last_attempt.name;
  assert.equal(
    (await sh(SFTP, `test -d /srv/backups/lab/01/${killedName} && test ! -e /srv/backups/lab/01/${killedName}/metadata.json; echo $?`)).stdout.trim(),
    '0',
  );
  const st = await cli(['backup', 'status', '--shard', '01']);
  assert.equal(st.code, 1);
  assert.match(st.stdout, /interrupted \(upload\)/);
  assert.match(st.stdout, / free /); // the kernel dropped the dead run's flock
  const list = JSON.parse((await cli(['backup', 'list', '--json', '--shard', '01'])).stdout).backups;
  assert.equal(list.find((x: any) => x.name === killedName)?.state, 'broken');
  const next = await cli(['backup', 'run', '--type', 'diff', '--shard', '01']);
  assert.equal(next.code, 0, next.stdout + next.stderr);
  assert.match(
    await labSh(lab, 'ch1', 'cat /var/log/clickhouse-backup/agent.log'),
    new RegExp(`previous run did not finish \\(killed\\?\\): cleaning its leftovers ${killedName}`),
  );
  assert.ok(!(await remoteNames(lab, '01')).includes(killedName));
  assert.ok(!(await labSh(lab, 'ch1', 'ls /var/lib/clickhouse/backup')).includes(killedName));

  // the secret: only in config.yml (0600) on the nodes; nowhere in chops's state, logs and plans
  for (const h of ['ch1', 'ch2', 'ch3']) {
    const hits = await labSh(
      lab,
      h,
      `grep -rlF -- '${password}' /etc/cron.d /etc/logrotate.d /etc/clickhouse-backup /usr/local/sbin /var/log/clickhouse-backup /var/lib/chops-backup /run/lock /tmp /var/lib/clickhouse/backup 2>/dev/null; true`,
    );
    assert.deepEqual(hits.split('\n').filter(Boolean), ['/etc/clickhouse-backup/config.yml'], `${h}: ${hits}`);
  }
  const stateDir = path.join(path.dirname(inv), 'state');
  const walk = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(path.join(d, f)).isDirectory() ? walk(path.join(d, f)) : [path.join(d, f)]));
  for (const f of walk(stateDir)) assert.ok(!readFileSync(f, 'utf8').includes(password), `secret in ${f}`);
});

test('old clickhouse-backup (2.4.31, text list only): the agent parses its layout and chains DIFFs', async () => {
  await sh('ch3', 'echo 2.4.31 > /etc/clickhouse-backup/double-version');
  try {
    const bad = await sh('ch3', 'clickhouse-backup list remote -f json');
    assert.equal(bad.code, 1); // -f does not exist before 2.6.32
    const r = await cli(['backup', 'run', '--type', 'diff', '--shard', '02']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(await labSh(lab, 'ch3', 'cat /var/log/clickhouse-backup/agent.log'), /clickhouse-backup 2\.4\.31 \(list layout text-v1\)/);
    const s = await status('ch3');
    assert.match(s.last_diff?.base ?? '', /^full-/);
  } finally {
    await sh('ch3', 'rm -f /etc/clickhouse-backup/double-version');
  }
});

test('a rolling restart waits for a running backup (and the lock is released after it); a backup during the restart is refused with the reason', async () => {
  const patient = inventoryVariant(inv, 'patient', (d) => (d.backup.lock_wait = '90s'));
  await faults('ch1', 'upload_delay=4\n');
  const bk = sh('ch1', `${CRON_ENV} '${AGENT} diff'`);
  for (let i = 0; i < 150 && (await sh('ch1', 'flock -n /run/lock/chops-node.lock true')).code === 0; i++) await sleep(100);
  const lines: string[] = [];
  const rr = chops(['run', 'rolling-restart', '-i', patient, '--limit', 'ch1', '--output', 'plain', '--yes'], { onLine: (l) => lines.push(l) });
  const backup = await bk;
  assert.equal(backup.code, 0, backup.stderr);
  const restart = await rr.done;
  await faults('ch1', '');
  assert.equal(restart.code, 0, restart.stdout + restart.stderr);
  assert.match(restart.stdout, /node lock held by backup diff pid \d+ since \S+: waiting up to 90 s before stop clickhouse-server/);
  const bkEnd = Date.parse((await status('ch1')).updated);
  assert.ok(bkEnd > 0);
  assert.equal((await sh('ch1', 'flock -n /run/lock/chops-node.lock true')).code, 0, 'lock not released after the restart');

  // the reverse: while chops holds the lock (server stopped), the agent refuses (exit 4) with chops as the reason
  const slow = inventoryVariant(
    inv,
    'slowstop',
    (d) => (d.clusters.lab.shards[0].replicas[0].clickhouse = { stop_command: 'systemctl stop clickhouse-server && sleep 6' }),
  );
  const rr2 = chops(['run', 'rolling-restart', '-i', slow, '--limit', 'ch1', '--output', 'plain', '--yes']);
  for (let i = 0; i < 200 && !/chops /.test((await sh('ch1', 'cat /run/lock/chops-node.lock.owner 2>/dev/null')).stdout); i++) await sleep(100);
  const refused = await sh('ch1', `${CRON_ENV} '${AGENT} diff'`);
  assert.equal(refused.code, 4, refused.stderr);
  assert.match(refused.stderr, /node lock still busy after 3 s \(chops \S+ \(stop clickhouse-server\) pid \d+/);
  const r2 = await rr2.done;
  assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  assert.equal((await sh('ch1', 'flock -n /run/lock/chops-node.lock true')).code, 0);
});

test('logrotate: one forced rotation of the agent log; the next run writes a fresh log', async () => {
  const r = await sh('ch1', 'logrotate -f /etc/logrotate.d/chops-backup && ls /var/log/clickhouse-backup');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /agent\.log\.1/);
  const run = await sh('ch1', `${CRON_ENV} '${AGENT} diff'`);
  assert.equal(run.code, 0, run.stderr);
  assert.match(await labSh(lab, 'ch1', 'cat /var/log/clickhouse-backup/agent.log'), /phase start[\s\S]*phase end/);
});
