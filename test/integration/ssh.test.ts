// chops over real OpenSSH against the nspawn lab: facts, hostile values, host keys,
// unreachable hosts, failing commands, sudo, atomic file writes, one connection per host,
// and a runner killed with SIGKILL mid-run that `chops resume` finishes correctly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labUp, labExec as labExecRaw, type Lab } from '../lab/lab.js';
import { chops, events } from '../support/cli.js';
import { parseInventory } from '../../src/inventory/load.js';
import { Session } from '../../src/engine/session.js';
import YAML from 'yaml';
import { readRunStateIn } from '../support/run-state.js';
import { raw } from '../../src/quote.js';

let lab: Lab;
const HOSTILE_DIR = `/srv/ch data/$(touch /tmp/pwned)/\`id\`/'q' "d";x*`;

before(async () => {
  lab = await labUp({ name: 'sshit', hosts: 4, net: '127.0.91' });
});
after(async () => {
  await lab?.down();
});

/** A copy of the lab inventory with EDIT applied to its parsed data, written next to it. */
function variant(name: string, edit: (inv: any) => void): string {
  const p = join(lab.dir, `inventory-${name}.yml`);
  const data = YAML.parse(readFileSync(lab.inventoryPath, 'utf8'));
  data.defaults ??= {};
  data.defaults.ssh ??= {};
  data.defaults.clickhouse ??= {};
  edit(data);
  writeFileSync(p, YAML.stringify(data));
  return p;
}
function replicaEntry(inv: any, host: string): any {
  for (const c of Object.values<any>(inv.clusters)) for (const sh of c.shards) for (const r of sh.replicas) if (r.host === host) return r;
  throw new Error(`no ${host}`);
}

test('facts over SSH: every host answers, no block devices are visible in the lab', async () => {
  const r = await chops(['run', 'facts', '-i', lab.inventoryPath, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const results = events(r.stdout).filter((e) => e.type === 'result');
  assert.deepEqual(results.map((e) => e.host).sort(), lab.hosts.map((h) => h.name).sort());
  for (const e of results) {
    assert.match(e.data.os, /Debian GNU\/Linux 12/);
    assert.equal(e.data.disks.filter((d: any) => d.type === 'disk').length, 0, 'no disks inside a lab host');
    assert.ok(e.data.dataDir.path);
  }
  const plain = await chops(['run', 'facts', '-i', lab.inventoryPath, '--output', 'plain']);
  assert.equal(plain.code, 0);
  assert.match(plain.stdout, /HOST\s+OS\s+KERNEL/);
});

test('a hostile value in the inventory arrives as one literal argument', async () => {
  await labExec(lab, 'h1', `mkdir -p ${shellQuote(HOSTILE_DIR)}`);
  const inv = variant('hostile', (d) => (d.defaults.clickhouse.data_dir = HOSTILE_DIR));
  const r = await chops(['run', 'facts', '-i', inv, '--limit', 'h1', '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const res = events(r.stdout).find((e) => e.type === 'result');
  assert.equal(res.data.dataDir.path, HOSTILE_DIR);
  assert.ok(res.data.dataDir.sizeBytes > 0, `df ran on the literal directory: ${JSON.stringify(res.data.dataDir)}`);
  const pwned = await labExec(lab, 'h1', 'test -e /tmp/pwned && echo PWNED || echo clean');
  assert.equal(pwned.trim(), 'clean');
});

test('unknown and changed host keys are refused with a fix; trust on first use is explicit', async () => {
  const kh = readFileSync(lab.knownHosts, 'utf8');
  const h1 = lab.hosts[0];
  const others = kh.split('\n').filter((l) => l && !l.startsWith(h1.address + ' '));
  const unknownKh = join(lab.dir, 'known_hosts.unknown');
  writeFileSync(unknownKh, others.join('\n') + '\n');
  const inv1 = variant('unknownkey', (d) => (d.defaults.ssh.known_hosts = unknownKh));
  const r1 = await chops(['run', 'facts', '-i', inv1, '--limit', h1.name, '--output', 'plain']);
  // refused before the first step: an input problem (known_hosts), nothing was changed
  assert.equal(r1.code, 2);
  assert.match(r1.stderr, /nothing was changed/);
  assert.match(r1.stderr, /unknown host key for 127\.[\d.]+ \(ssh-ed25519 SHA256:/);
  assert.match(r1.stderr, /ssh-keyscan/);

  // h1 presenting a key different from the one on record: "changed"
  const changedKh = join(lab.dir, 'known_hosts.changed');
  const h2key = lab.hosts[1].hostKeyLine.split(' ').slice(1).join(' ');
  writeFileSync(changedKh, [...others, `${h1.address} ${h2key}`].join('\n') + '\n');
  const inv2 = variant('changedkey', (d) => (d.defaults.ssh.known_hosts = changedKh));
  const r2 = await chops(['run', 'facts', '-i', inv2, '--limit', h1.name, '--output', 'plain']);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /HOST KEY CHANGED/);
  assert.match(r2.stderr, /ssh-keygen -f .* -R/);

  // explicit opt-in: the key is recorded (hashed) and the run works
  const tofuKh = join(lab.dir, 'known_hosts.tofu');
  writeFileSync(tofuKh, '');
  const inv3 = variant('tofu', (d) => {
    d.defaults.ssh.known_hosts = tofuKh;
    d.defaults.ssh.trust_on_first_use = true;
  });
  const r3 = await chops(['run', 'facts', '-i', inv3, '--limit', h1.name, '--output', 'plain']);
  assert.equal(r3.code, 0, r3.stderr);
  assert.match(readFileSync(tofuKh, 'utf8'), /^\|1\|.* ssh-ed25519 /);
  // and a changed key is still refused even with the opt-in
  writeFileSync(tofuKh, `${h1.address} ${h2key}\n`);
  const r4 = await chops(['run', 'facts', '-i', inv3, '--limit', h1.name, '--output', 'plain']);
  assert.equal(r4.code, 2);
  assert.match(r4.stderr, /HOST KEY CHANGED/);
});

test('an unreachable host refuses the run before the first change, naming the host and the fix', async () => {
  const inv = variant('unreachable', (d) => (replicaEntry(d, lab.hosts[3].name).address = '127.0.0.254'));
  const marker = `/tmp/chops-unreachable-${process.pid}`;
  const r = await chops(['run', 'exec', '-i', inv, '--cmd', `touch ${marker}`, '--output', 'plain', '--yes']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`${lab.hosts[3].name} \\(to be worked on\\): .*cannot connect to host 127\\.0\\.0\\.254:22: ECONNREFUSED`));
  assert.match(r.stderr, /sshd running/);
  assert.match(r.stderr, /nothing was changed/);
  // no host ran the command, and no run state was left for `chops resume` to pick
  for (const h of lab.hosts.slice(0, 3)) assert.equal((await labExec(lab, h.name, `test -e ${marker} && echo yes || echo no`)).trim(), 'no');
  assert.doesNotMatch(r.stderr, /chops resume/);
});

test('a failing command names host, step, command, exit code, stderr and the resume command', async () => {
  const r = await chops([
    'run',
    'exec',
    '-i',
    lab.inventoryPath,
    '--limit',
    'h2',
    '--cmd',
    'echo to-stdout; echo something broke >&2; exit 7',
    '--output',
    'plain',
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /host:\s+h2/);
  assert.match(r.stderr, /step:\s+commands › \$ echo to-stdout/);
  assert.match(r.stderr, /exit:\s+7/);
  assert.match(r.stderr, /stderr:\s+something broke/);
  assert.match(r.stderr, /next:\s+.*chops resume/);
});

test('an invalid inventory exits 2 and connects nowhere', async () => {
  const before = await acceptedLogins('h1');
  const inv = variant('invalid', (d) => (d.defaults.ssh.port = 70000));
  const r = await chops(['run', 'facts', '-i', inv]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /inventory-invalid\.yml:\d+:\d+: key '.*port'/);
  assert.equal(await acceptedLogins('h1'), before);
});

test('one SSH connection per host per run, however many commands', async () => {
  const before = await acceptedLogins('h3');
  const cmds = Array.from({ length: 10 }, (_, i) => ['--cmd', `echo ${i}`]).flat();
  const r = await chops(['run', 'exec', '-i', lab.inventoryPath, '--limit', 'h3', ...cmds, '--output', 'plain']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await acceptedLogins('h3')) - before, 1);
});

test('sudo -n for a non-root login, and atomic root-owned file writes through stdin', async () => {
  const path = variant('sudo', (d) => {
    d.defaults.ssh.user = 'ops';
    d.defaults.ssh.sudo = true;
  });
  const inv = parseInventory(readFileSync(path, 'utf8'), path);
  const session = new Session(inv, false, () => {});
  try {
    const h = session.handle('h4');
    assert.equal((await h.$`id -u`).stdout.trim(), '0');
    assert.equal((await h.probe({ sudo: false })`id -un`).stdout.trim(), 'ops');
    const content = "line with 'quotes' and $(dollar)\n";
    assert.deepEqual(await h.putFile('/etc/chops-test.conf', content, { mode: '0640', owner: 'root', group: 'root' }), { changed: true });
    assert.equal((await h.$`stat -c '%a %U' /etc/chops-test.conf`).stdout.trim(), '640 root');
    assert.equal((await h.$`cat /etc/chops-test.conf`).stdout, content);
    assert.deepEqual(await h.putFile('/etc/chops-test.conf', content, { mode: '0640', owner: 'root', group: 'root' }), { changed: false });
    assert.equal((await h.$`ls -a /etc | grep -c chops-put || true`).stdout.trim(), '0', 'no temp file left');
  } finally {
    await session.close();
  }
});

test('a login whose sudo asks for a password is refused before the first change, naming sudo and the fix', async () => {
  const path = variant('sudo-password', (d) => {
    d.defaults.ssh.user = 'ops';
    d.defaults.ssh.sudo = true;
  });
  const marker = `/tmp/chops-sudo-refused-${process.pid}`;
  await labExec(lab, 'h2', 'mv /etc/sudoers.d/ops /root/sudoers-ops.aside');
  try {
    const r = await chops(['run', 'exec', '-i', path, '--limit', 'h1,h2', '--cmd', `touch ${marker}`, '--output', 'plain', '--yes']);
    assert.equal(r.code, 2, r.stderr);
    // the persistent shell every command would use is what is verified: sudo's own words, no "true exited"
    assert.match(r.stderr, /h2 \(to be worked on\): h2: its shell \(sudo -n -- sh\) ended before it answered \(exit 1\): .*password is required/);
    assert.match(r.stderr, /NOPASSWD/);
    assert.match(r.stderr, /nothing was changed/);
    assert.doesNotMatch(r.stderr, /h1 \(/, 'h1 verified fine');
    for (const h of ['h1', 'h2']) assert.equal((await labExec(lab, h, `test -e ${marker} && echo yes || echo no`)).trim(), 'no');
  } finally {
    await labExec(lab, 'h2', 'mv /root/sudoers-ops.aside /etc/sudoers.d/ops');
  }
});

test('the persistent shell keeps commands apart and reports exactly what a fresh exec would', async () => {
  const inv = parseInventory(readFileSync(lab.inventoryPath, 'utf8'), lab.inventoryPath);
  const session = new Session(inv, false, () => {});
  try {
    const h = session.handle('h2');
    const r1 = await h.$({ nothrow: true })`printf 'no newline'; printf 'err' >&2; exit 3`;
    assert.deepEqual([r1.stdout, r1.stderr, r1.code], ['no newline', 'err', 3]);
    await h.$`cd /tmp; FOO=bar; set -e`;
    assert.equal((await h.$`pwd; echo "[$FOO]"`).stdout, '/root\n[]\n', 'cd, variables and set -e do not leak');
    const big = (await h.$`head -c 3000000 /dev/zero | tr '\\0' x`).stdout;
    assert.equal(big.length, 3_000_000, 'large output survives channel windowing');
    const syntax = await h.$({ nothrow: true })`if then fi`;
    assert.equal(syntax.code, 2);
    assert.equal((await h.$`echo still alive`).stdout, 'still alive\n', 'a syntax error does not kill the shell');
    assert.equal((await h.$`cat`).stdout, '', 'stdin is /dev/null: nothing waits for input');
    const parallel = await Promise.all([1, 2, 3, 4, 5].map((i) => h.$`sleep 0.2; echo ${i}`));
    assert.deepEqual(
      parallel.map((r) => r.stdout.trim()),
      ['1', '2', '3', '4', '5'],
      'concurrent commands fall back to exec channels',
    );
    const fed = await h.transport.exec('cat', { stdin: 'fed through stdin' });
    assert.equal(fed.stdout, 'fed through stdin');

    // A command with a deadline runs in the same persistent shell (under the remote `timeout`):
    // the process under sshd it descends from is the session's long-lived sh, the same for every
    // such command (an exec channel would start a login shell per command).
    const sessionShell =
      'ppid() { while read -r k v; do [ "$k" = PPid: ] && echo "$v"; done < /proc/$1/status; }; ' +
      'top=$$; while p=$(ppid $top); c=$(cat /proc/$p/comm); [ "${c#sshd}" = "$c" ]; do top=$p; done; echo $top';
    const a = await h.$({ timeoutMs: 15_000 })`${raw(sessionShell)}`;
    const b = await h.$({ timeoutMs: 15_000 })`${raw(sessionShell)}`;
    assert.match(a.stdout, /^\d+\n$/);
    assert.equal(a.stdout, b.stdout, 'commands with a deadline share the persistent shell');
    const late = await h.$({ nothrow: true, timeoutMs: 1_000 })`sleep 30; echo not reached`;
    assert.deepEqual([late.code, late.stdout], [124, ''], 'the remote timeout ends it with 124, as on an exec channel');
    assert.equal((await h.$({ timeoutMs: 15_000 })`${raw(sessionShell)}`).stdout, a.stdout, 'and the session lives on');
  } finally {
    await session.close();
  }
});

test('runner killed with SIGKILL mid-run; chops resume finishes from the exact step', async () => {
  for (const h of lab.hosts) await labExec(lab, h.name, 'rm -f /root/s1 /root/s3');
  // --gates false: these hosts run no ClickHouse server, so only the rolling order is exercised
  const args = [
    'run',
    'exec',
    '-i',
    lab.inventoryPath,
    '--rolling',
    '--gates',
    'false',
    '--output',
    'plain',
    '--yes',
    '--cmd',
    'date +%s%N >> /root/s1',
    '--cmd',
    'sleep 1.5',
    '--cmd',
    'date +%s%N >> /root/s3',
  ];
  let killedAt = '';
  const first = await chops(args, {
    onStdout: (out, child) => {
      // kill as soon as the second replica of some shard has begun its steps
      const m = /(h2|h4) > #1/.exec(out);
      if (m && !killedAt) {
        killedAt = m[1];
        child.kill('SIGKILL');
      }
    },
  });
  assert.equal(first.signal, 'SIGKILL');
  const runId = /run (\d{8}-\d{6}-[0-9a-f]{4})/.exec(first.stdout)![1];
  // state.yml with the journal of the killed process folded in, as `chops resume` reads it
  const atKill = readRunStateIn(join(lab.dir, 'state'), runId);
  assert.equal(atKill.outcome, 'running');

  // the dead run's lock is reported as stale, with how to clear it; nothing else may start meanwhile
  const blocked = await chops(['run', 'exec', '-i', lab.inventoryPath, '--cmd', 'true', '--output', 'plain']);
  assert.equal(blocked.code, 2, blocked.stderr);
  assert.match(blocked.stderr, new RegExp(`stale.*${runId}|${runId}.*stale`, 's'));
  assert.match(blocked.stderr, /chops unlock|chops resume/);

  const runs = await chops(['runs', '-i', lab.inventoryPath]);
  assert.match(runs.stdout, new RegExp(`${runId}.*crashed`));
  // a changed inventory is refused (a comment is enough: the run was planned on other bytes)
  const original = readFileSync(lab.inventoryPath, 'utf8');
  writeFileSync(lab.inventoryPath, original + '# edited\n');
  const refused = await chops(['resume', runId, '-i', lab.inventoryPath, '--output', 'plain', '--yes']);
  writeFileSync(lab.inventoryPath, original);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /inventory/i);

  const res = await chops(['resume', runId, '-i', lab.inventoryPath, '--output', 'plain', '--yes']);
  assert.equal(res.code, 0, res.stderr + res.stdout);
  assert.match(res.stdout, /already done|skipped|succeeded/);
  // A step that was done at the kill is never repeated; only a step in progress ("started") may
  // run again on resume (steps are idempotent for that reason).
  const statusAtKill = (step: number, host: string) => atKill.steps[0].steps[step].hosts[host]?.status ?? 'pending';
  // the step whose command was seen running had its start on disk before that command
  assert.notEqual(statusAtKill(0, killedAt), 'pending', `${killedAt}: step 1 recorded as started before its command ran`);
  for (const h of lab.hosts) {
    for (const [step, file] of [
      [0, '/root/s1'],
      [2, '/root/s3'],
    ] as const) {
      const lines = (await labExec(lab, h.name, `cat ${file}`)).trim().split('\n').length;
      const was = statusAtKill(step, h.name);
      if (was === 'started') assert.ok(lines === 1 || lines === 2, `${h.name} step ${step + 1}: in progress at the kill, ran ${lines} times`);
      else assert.equal(lines, 1, `${h.name} step ${step + 1} (${was} at the kill) ran exactly once`);
    }
  }
  assert.ok(killedAt);
  // replicas of a shard never overlapped: replica 2 started after replica 1 finished
  for (const [a, b] of [
    ['h1', 'h2'],
    ['h3', 'h4'],
  ]) {
    const aEnd = Number((await labExec(lab, a, 'tail -1 /root/s3')).trim());
    const bStart = Number((await labExec(lab, b, 'head -1 /root/s1')).trim());
    assert.ok(bStart > aEnd, `${b} started after ${a} finished`);
  }
  const again = await chops(['resume', runId, '-i', lab.inventoryPath]);
  assert.equal(again.code, 2, 'a finished run cannot be resumed');
});

/** stdout of a command run inside a lab container (as root, not over ssh). */
async function labExec(l: Lab, host: string, cmd: string): Promise<string> {
  return (await labExecRaw(l, host, cmd)).stdout;
}

test('Ctrl-C lets replicas in progress finish, starts nothing new, and the run resumes', async () => {
  for (const h of lab.hosts) await labExec(lab, h.name, 'rm -f /root/c1 /root/c3');
  const args = [
    'run',
    'exec',
    '-i',
    lab.inventoryPath,
    '--rolling',
    '--gates',
    'false',
    '--output',
    'plain',
    '--yes',
    '--cmd',
    'touch /root/c1',
    '--cmd',
    'sleep 1',
    '--cmd',
    'touch /root/c3',
  ];
  let sent = false;
  const first = await chops(args, {
    onStdout: (out, child) => {
      if (!sent && /h1 > #2/.test(out)) {
        sent = true;
        child.kill('SIGINT');
      }
    },
  });
  assert.equal(first.code, 130, first.stderr + first.stdout);
  assert.match(first.stderr, /stopping/);
  const runId = /run (\d{8}-\d{6}-[0-9a-f]{4})/.exec(first.stdout)![1];
  assert.equal(readRunStateIn(join(lab.dir, 'state'), runId).outcome, 'interrupted');
  assert.equal(
    JSON.parse(readFileSync(join(lab.dir, 'state', 'runs', runId, 'state.yml'), 'utf8')).outcome,
    'interrupted',
    'state.yml itself has the final outcome',
  );
  // the first replicas finished all their steps; the second replicas never began
  for (const h of ['h1', 'h3']) assert.equal(await labExec(lab, h, 'ls /root/c1 /root/c3 >/dev/null && echo both'), 'both\n');
  for (const h of ['h2', 'h4']) assert.equal(await labExec(lab, h, 'ls /root/c1 2>/dev/null || echo none'), 'none\n');
  const res = await chops(['resume', runId, '-i', lab.inventoryPath, '--output', 'plain', '--yes']);
  assert.equal(res.code, 0, res.stderr + res.stdout);
  for (const h of ['h2', 'h4']) assert.equal(await labExec(lab, h, 'ls /root/c1 /root/c3 >/dev/null && echo both'), 'both\n');
});

async function acceptedLogins(host: string): Promise<number> {
  const out = await labExec(lab, host, "journalctl -u ssh --no-pager -o cat 2>/dev/null | grep -c '^Accepted publickey' || true");
  return Number(out.trim());
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
