// The built CLI (bin/chops.js, run through execa like an operator or cron runs it) on hostile and
// ordinary-but-odd command lines: exit 2 with a message, never a stack trace or exit 70; and the
// operator paths of issue 8 G, H, J on a local-connection inventory (no SSH needed).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const CHOPS = fileURLToPath(new URL('../../bin/chops.js', import.meta.url));
let dir: string;
let inv: string;

const chops = (args: string[]) =>
  execa(process.execPath, [CHOPS, ...args], { reject: false, stdin: 'ignore', cwd: dir, env: { NO_COLOR: '1' }, timeout: 60_000 });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chops-cli-'));
  inv = join(dir, 'inventory.yml');
  await writeFile(
    inv,
    `version: 1\nstate: {dir: ${dir}/state}\ndefaults:\n  ssh: {sudo: true}\nclusters:\n  lab:\n    shards:\n      - replicas:\n          - {host: h1, connection: local}\n          - {host: h2, connection: local}\n`,
  );
});
after(() => rm(dir, { recursive: true, force: true }));

function refused(r: { exitCode?: number; stderr: string; stdout: string }, re?: RegExp): void {
  assert.equal(r.exitCode, 2, `${r.stderr}${r.stdout}`);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, 'no stack trace');
  assert.match(r.stderr, /^chops: /);
  if (re) assert.match(r.stderr, re);
}

describe('every flag of every command: exit 2 with a message (item 1, 6)', { concurrency: 4 }, () => {
  const cases: [string[], RegExp][] = [
    [['plan', 'facts', '--limit', ''], /--limit is empty/],
    [['plan', 'facts', '--limit', '123'], /unknown host "123"/],
    [['plan', 'facts', '--limit', 'h1', '--limit', 'h1'], /--limit was given 2 times/],
    [['status', '--limit', 'h1', '--limit', 'h1'], /--limit was given 2 times/],
    [['plan', 'facts', '-i', ''], /--inventory is empty/],
    [['plan', 'facts', '-i', '123'], /cannot read inventory .*123: no such file/],
    [['runs', '-i', '123'], /cannot read inventory/],
    [['runs', '-i', 'a', '-i', 'b'], /--inventory was given 2 times/],
    [['inventory', 'check', '-i', ''], /--inventory is empty/],
    [['unlock', 'lab', '-i', ''], /--inventory is empty/],
    [['resume', '--parallel-shards', '0'], /--parallel-shards: expected an integer 1-10000/],
    [['plan', '__proto__'], /unknown playbook "__proto__"/],
    [['plan', 'constructor'], /unknown playbook "constructor"/],
    [['run', 'toString'], /unknown playbook "toString"/],
    [['plan', 'exec', '--cmd'], /--cmd for playbook exec needs a value/],
    [['plan', 'exec', '--cmd', ''], /--cmd .*empty/],
    [['plan', 'exec', '--cmd', 'x', '--max-queue-size', '-5'], /--max-queue-size .*found "-5"/],
    [['plan', 'exec', '--cmd', 'x', '--max-queue-size=-5'], /--max-queue-size .*found "-5"/],
    [['plan', 'exec', '--cmd', 'x', '--parallel-shards', '-1'], /--parallel-shards: .*found "-1"/],
    [['plan', 'exec', '--cmd', 'x', '--parallel-hosts', '1e3'], /--parallel-hosts: .*plain decimal/],
    [['plan', 'exec', '--cmd', 'x', '--wait-timeout', '0s'], /--wait-timeout .*1s to 1d/],
    [['plan', 'exec', '--cmd', 'x', '--wait-timeout', '30d'], /--wait-timeout .*1s to 1d/],
    [['plan', 'exec', '--cmd', 'x', '--poll-interval', '0ms'], /--poll-interval .*10ms to 1m/],
    [['plan', 'exec', '--cmd', 'x', '--scope', 'each', '--scope', 'once'], /--scope .*given 2 times/],
    [['plan', 'exec', '--cmd', 'x', '--output', ''], /--output is empty/],
    [['plan', 'exec', '--cmd', 'x', '--__proto__', 'y'], /no parameter --__proto__/],
    [['plan', 'facts', '--limit', 'a\u001b]0;x\u0007'], /control characters: "a\\x1b\]0;x\\x07"/],
    [['nosuch\u001b[2J'], /unknown command "nosuch\\x1b\[2J"/],
  ];
  for (const [args, re] of cases) {
    test(args.map((a) => JSON.stringify(a)).join(' '), async () => refused(await chops([...args.slice(0, 1), ...args.slice(1)]), re));
  }
});

describe('operator paths (G, H, J)', () => {
  test('a run that stops servers asks first: without a terminal and without --yes it refuses with exit 2', async () => {
    const r = await chops(['run', 'rolling-restart', '-i', inv]);
    refused(r, /has disruptive steps and there is no terminal to confirm them/);
    assert.match(r.stderr, /restart replicas › stop clickhouse-server/);
    assert.match(r.stderr, /re-run with --yes/);
    refused(await chops(['run', 'exec', '-i', inv, '--rolling', '--gates', 'false', '--cmd', 'true']), /disruptive/);
    refused(await chops(['run', 'exec', '-i', inv, '--cmd', 'true', '--reboot']), /reboot and wait/);
    const help = await chops(['run', '--help']);
    assert.match(help.stdout, /--yes .*stop servers or destroy data.*required for them without a terminal/);
  });

  test('the plan ends with the real run command and shows sudo -n where it runs', async () => {
    const r = await chops(['plan', 'exec', '-i', inv, '--cmd', 'touch /tmp/chops-never', '--limit', 'h1']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /\$ sudo -n touch \/tmp\/chops-never/);
    assert.match(
      r.stdout,
      new RegExp(`Run it with: chops run exec -i ${inv.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} --cmd 'touch /tmp/chops-never' --limit h1$`, 'm'),
    );
    assert.doesNotMatch(r.stdout, /<same arguments>/);
  });

  test('unlock of a cluster that does not exist exits 2', async () => {
    refused(await chops(['unlock', 'nosuch', '-i', inv]), /no cluster named "nosuch".*\n\s+fix: clusters: lab/);
    const ok = await chops(['unlock', 'lab', '-i', inv]);
    assert.equal(ok.exitCode, 0, ok.stderr);
  });

  test('abandon: recorded in `chops runs`; resume without an id skips it and says which run it picks', async () => {
    // Two failed runs (exec of `false` under sudo -n fails on h1 or as root simply exits 1).
    const fail = async () => {
      const r = await chops(['run', 'exec', '-i', inv, '--limit', 'h1', '--cmd', 'exit 3', '--output', 'plain']);
      assert.equal(r.exitCode, 1, r.stderr + r.stdout);
      return /run (\d{8}-\d{6}-[0-9a-f]{4})/.exec(r.stderr + r.stdout)![1];
    };
    const older = await fail();
    const newer = await fail();
    const ab = await chops(['abandon', newer, '-i', inv, '--reason', 'done by hand']);
    assert.equal(ab.exitCode, 0, ab.stderr);
    const runs = await chops(['runs', '-i', inv]);
    assert.match(runs.stdout, new RegExp(`${newer}.*abandoned \\(was failed\\)`));
    assert.doesNotMatch(runs.stdout, new RegExp(`${older}.*abandoned`));
    refused(await chops(['resume', newer, '-i', inv, '--output', 'plain']), /was abandoned/);
    const res = await chops(['resume', '-i', inv, '--output', 'plain']);
    assert.match(res.stdout + res.stderr, new RegExp(`Resuming run ${older} .*the latest unfinished run of this inventory`));
    await chops(['abandon', older, '-i', inv]);
    refused(await chops(['resume', '-i', inv]), /there is no unfinished run of .* to resume/);
    assert.ok((await readdir(join(dir, 'state', 'runs'))).length >= 2);
    refused(await chops(['abandon', '20000101-000000-abcd', '-i', inv]), /no run 20000101-000000-abcd/);
  });
});
