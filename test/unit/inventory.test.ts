import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../src/errors.js';
import { describeTopology, InventoryError, limitHosts, loadInventory, parseInventory } from '../../src/inventory/load.js';
import { mode } from '../../src/inventory/rules.js';
import { readSecret } from '../../src/inventory/secrets.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = join(repoRoot, 'test/fixtures/inventory');
const env = { HOME: '/home/op' };

/** A valid inventory whose replica entry h1 (at 8:13; its address on line 9) gets `replica` appended (line 10 on). */
function withReplica(replica = '', head = 'defaults:\n  ssh: {identity_file: /keys/id}\n'): string {
  return `version: 1\n${head}clusters:\n  c:\n    shards:\n      - replicas:\n          - host: h1\n            address: 10.0.0.1\n${replica}`;
}

/** The InventoryError message `text` produces (fails when it loads). */
function problemsOf(text: string): string {
  try {
    parseInventory(text, 'inv.yml', { env });
  } catch (err) {
    assert.ok(err instanceof InventoryError, `expected InventoryError, got ${err}`);
    assert.ok(err instanceof UsageError);
    assert.equal(err.exitCode, 2);
    return err.message;
  }
  assert.fail('inventory loaded without errors');
}

describe('the example inventory.yml', () => {
  test('loads cleanly with the documented topology', async () => {
    const inv = await loadInventory(join(repoRoot, 'inventory.yml'), { env });
    assert.deepEqual(
      inv.hosts.map((h) => h.name),
      ['ch-01-1', 'ch-01-2', 'ch-02-1', 'ch-02-2'],
    );
    assert.equal(inv.clusters.length, 1);
    assert.deepEqual(
      inv.clusters[0].shards.map((s) => [s.index, s.name, s.replicas.length]),
      [
        [1, '01', 2],
        [2, '02', 2],
      ],
    );
    const [first, , , last] = inv.hosts;
    assert.equal(first.ssh.identityFile, '/home/op/.ssh/id_ed25519');
    assert.equal(first.ssh.knownHosts, '/home/op/.ssh/known_hosts');
    assert.equal(first.ssh.connectTimeoutMs, 10_000);
    assert.equal(first.ssh.keepaliveIntervalMs, 15_000);
    assert.deepEqual(first.vars, { data_disk: '/dev/nvme1n1' });
    assert.equal(first.gates.waitTimeoutMs, 300_000);
    assert.equal(first.gates.pollIntervalMs, 500);
    assert.equal(first.gates.maxDelayMs, 10_000);
    assert.match(first.where, /inventory\.yml:61:13$/);
    assert.equal(last.ssh.user, 'ops');
    assert.equal(last.ssh.sudo, true);
    assert.equal(last.ssh.port, 22, 'per-host ssh override keeps the default port');
    assert.deepEqual([last.shard, last.shardName, last.replica, last.replicaName], [2, '02', 2, 'ch-02-2']);
    assert.deepEqual(last.vars, { data_disk: '/dev/sdb' });
    assert.equal(inv.stateDir, '/home/op/.chops');
    assert.equal(inv.logRetentionDays, 30);
  });

  test('hash is the sha256 of the file bytes; path is absolute', async () => {
    const file = join(repoRoot, 'inventory.yml');
    const inv = await loadInventory(file, { env });
    assert.equal(
      inv.hash,
      createHash('sha256')
        .update(await readFile(file))
        .digest('hex'),
    );
    assert.equal(inv.path, file);
    const changed = parseInventory(`${await readFile(file, 'utf8')}\n# edited\n`, file, { env });
    assert.notEqual(changed.hash, inv.hash);
  });

  test('describeTopology renders one row per host', async () => {
    const table = describeTopology(await loadInventory(join(repoRoot, 'inventory.yml'), { env }));
    const lines = table.split('\n');
    assert.match(lines[0], /^CLUSTER\s+SHARD\s+REPLICA\s+HOST\s+ADDRESS:PORT\s+USER\s+SUDO$/);
    assert.match(lines[4], /^production\s+02\s+ch-02-2\s+ch-02-2\s+10\.0\.2\.12:22\s+ops\s+yes$/);
    assert.equal(lines.at(-1), '1 cluster, 2 shards, 4 hosts');
  });
});

describe('merging defaults and overrides', () => {
  test('fixture with overrides, local hosts, jumps and merge keys', async () => {
    const inv = await loadInventory(join(fixtures, 'overrides.yml'), { env });
    const byName = Object.fromEntries(inv.hosts.map((h) => [h.name, h]));
    assert.deepEqual(Object.keys(byName), ['localhost', 'bastion', 'edge-1', 'edge-2', 'lab']);

    // localhost without an address, and connection: local, run on this machine.
    assert.equal(byName.localhost.connection, 'local');
    assert.equal(byName.lab.connection, 'local');
    assert.equal(byName.bastion.connection, 'ssh');

    const edge1 = byName['edge-1'];
    assert.deepEqual([edge1.shard, edge1.shardName, edge1.replica, edge1.replicaName], [2, '22.10', 1, 'r1']);
    assert.equal(byName.localhost.shardName, '1', 'shard name defaults to its index');
    assert.equal(edge1.ssh.user, 'root');
    assert.equal(edge1.ssh.connectTimeoutMs, 3000);
    assert.equal(edge1.ssh.sudo, true);
    assert.deepEqual(edge1.ssh.jump, { address: 'bastion.example.com', port: 2222, user: 'ops', agent: false, identityFile: '/home/op/.ssh/id_ed25519' });
    assert.equal(edge1.clickhouse.httpPort, 18123);
    assert.equal(edge1.clickhouse.tcpPort, 9000);
    assert.deepEqual(edge1.clickhouse.password, { env: 'CH_PASSWORD' });
    assert.equal(edge1.clickhouse.stopCommand, 'systemctl stop clickhouse-server; sleep 1');
    assert.equal(edge1.gates.maxDelayMs, 30_000);
    assert.equal(edge1.gates.waitTimeoutMs, 120_000);
    assert.equal(edge1.gates.pollIntervalMs, 250);
    // vars merge deeply; lists are replaced; hostile values are kept verbatim (quoted later).
    assert.deepEqual(edge1.vars, { disks: { data: '/dev/nvme1n1', log: '/dev/sdc' }, tags: ['c'], motd: '$(reboot); `id` \'x\' "y"' });

    // edge-2 inherits edge-1's entry through `<<: *edge`, then overrides ssh wholesale (like YAML does).
    const edge2 = byName['edge-2'];
    assert.equal(edge2.replicaName, 'r2');
    assert.equal(edge2.clickhouse.httpPort, 18123);
    assert.equal(edge2.ssh.sudo, false);
    assert.deepEqual(edge2.ssh.jump, { address: '192.0.2.1', port: 22, user: 'root', agent: false, identityFile: '/home/op/.ssh/id_ed25519' });
    assert.equal(edge2.where, `${join(fixtures, 'overrides.yml')}:37:13`);

    assert.equal(inv.stateDir, '/home/op/state/chops');
    assert.equal(inv.logRetentionDays, 7);
  });

  test('hosts do not share vars objects', () => {
    const inv = parseInventory(
      withReplica('          - {host: h2, address: 10.0.0.2}\n', 'defaults:\n  ssh: {agent: true}\n  vars: {d: {x: 1}}\n'),
      'inv.yml',
      { env },
    );
    (inv.hosts[0].vars.d as Record<string, number>).x = 2;
    assert.deepEqual(inv.hosts[1].vars, { d: { x: 1 } });
  });

  test('built-in defaults apply when the file sets none', () => {
    const inv = parseInventory(withReplica('            ssh: {agent: true}\n', ''), 'inv.yml', { env });
    const h = inv.hosts[0];
    assert.deepEqual([h.ssh.user, h.ssh.port, h.ssh.agent, h.ssh.identityFile], ['root', 22, true, undefined]);
    assert.equal(h.clickhouse.service, 'clickhouse-server');
    assert.equal(h.gates.maxQueueSize, 20);
    assert.equal(h.where, 'inv.yml:6:13');
  });
});

describe('limitHosts', () => {
  const inv = parseInventory(withReplica('          - {host: h2, address: 10.0.0.2}\n          - {host: h3, address: 10.0.0.3}\n'), 'inv.yml', { env });
  test('no limit means every host', () => assert.equal(limitHosts(inv, undefined).length, 3));
  test('keeps inventory order and ignores spaces', () => {
    assert.deepEqual(
      limitHosts(inv, 'h3, h1').map((h) => h.name),
      ['h1', 'h3'],
    );
  });
  test('unknown names are a UsageError listing the valid names', () => {
    assert.throws(
      () => limitHosts(inv, 'h1,nope'),
      (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(err.message, /unknown host "nope"; valid host names: h1, h2, h3/);
        return true;
      },
    );
  });
  test('an empty limit is refused rather than meaning "all"', () => {
    assert.throws(() => limitHosts(inv, ' , '), UsageError);
  });
});

describe('inventory errors (all reported at once, with file:line:col)', () => {
  test('YAML syntax error names the position', () => {
    const msg = problemsOf('version: 1\nclusters:\n  c: [unclosed\n');
    assert.match(msg, /^inv\.yml:\d+:\d+: YAML syntax error: /m);
  });

  test('duplicate keys name both positions', () => {
    const msg = problemsOf(withReplica('            address: 10.0.0.9\n'));
    assert.match(msg, /inv\.yml:10:13: key 'clusters\.c\.shards\[0\]\.replicas\[0\]\.address': duplicate key \(first at 9:13\)/);
  });

  test('unknown keys suggest the closest known key', () => {
    const msg = problemsOf(withReplica('            ssh: {identityfile: /k, Agent: true}\n            port: 22\n            adress: x\n'));
    assert.match(msg, /inv\.yml:10:19: key '.*\.ssh\.identityfile': unknown key; did you mean 'identity_file'\?/);
    assert.match(msg, /key '.*\.ssh\.Agent': unknown key; did you mean 'agent'\?/);
    assert.match(msg, /inv\.yml:11:13: key '.*\.replicas\[0\]\.port': unknown key; did you mean 'ssh\.port'\?/);
    assert.match(msg, /key '.*\.adress': unknown key; did you mean 'address'\?/);
    assert.match(problemsOf(withReplica('            colour: blue\n')), /'.*\.colour': unknown key\n\s+fix: valid keys here: host, address/);
  });

  test('collects every problem, not just the first', () => {
    const msg = problemsOf(withReplica('            ssh: {port: 0, sudo: yes}\n            gates: {max_delay: 10}\n'));
    assert.match(msg, /^inventory inv\.yml: 3 problems$/m);
  });

  test('duplicate host names name both positions', () => {
    const msg = problemsOf(withReplica('      - replicas:\n          - {host: h1, address: 10.0.0.2}\n'));
    assert.match(msg, /inv\.yml:11:13: key '.*shards\[1\]\.replicas\[0\]\.host': duplicate host name "h1": also at inv\.yml:8:13/);
  });

  test('empty shard and cluster without shards', () => {
    const text = 'version: 1\nclusters:\n  a:\n    shards:\n      - name: "1"\n        replicas: []\n      - name: "2"\n  b:\n    shards: []\n  c: {}\n';
    const msg = problemsOf(text);
    assert.match(msg, /inv\.yml:6:19: key 'clusters\.a\.shards\[0\]\.replicas': empty shard: it has no replicas/);
    assert.match(msg, /key 'clusters\.a\.shards\[1\]\.replicas': empty shard/);
    assert.match(msg, /inv\.yml:9:13: key 'clusters\.b\.shards': cluster has no shards/);
    assert.match(msg, /key 'clusters\.c\.shards': cluster has no shards/);
    assert.match(problemsOf('version: 1\nclusters: {}\n'), /key 'clusters': no clusters/);
  });

  test('numbers where a string is required: quote it', () => {
    const msg = problemsOf('version: 1\nclusters:\n  c:\n    shards:\n      - name: 01\n        replicas: [{host: h, address: a, ssh: {agent: true}}]\n');
    assert.match(
      msg,
      /inv\.yml:5:15: key 'clusters\.c\.shards\[0\]\.name': expected a shard name .*found 01 \(YAML 1\.2 reads it as the number 1\)\n\s+fix: quote it: "01"/,
    );
    const vars = problemsOf(withReplica('            vars: {mode: 0644, version: 22.10, fine: 10, hostile: "$(rm -rf /)"}\n'));
    assert.match(vars, /key '.*\.vars\.mode': YAML 1\.2 reads 0644 as the number 644\n\s+fix: quote it: "0644"/);
    assert.match(vars, /key '.*\.vars\.version': YAML 1\.2 reads 22\.10 as the number 22\.1\n\s+fix: quote it: "22\.10"/);
    assert.match(vars, /^inventory inv\.yml: 2 problems$/m, 'plain numbers and hostile strings in vars are fine');
    assert.match(problemsOf(withReplica('            replica_name: 22.10\n')), /fix: quote it: "22\.10"/);
  });

  test('yes/no/on where a boolean is expected: use true/false', () => {
    const msg = problemsOf(withReplica('            ssh: {sudo: yes, agent: on}\n            gates: {allow_mutations: no}\n'));
    assert.match(msg, /key '.*\.ssh\.sudo': expected true or false, found "yes"\n\s+fix: use true\/false/);
    assert.match(msg, /key '.*\.ssh\.agent': expected true or false, found "on"/);
    assert.match(msg, /key '.*\.gates\.allow_mutations': expected true or false, found "no"/);
  });

  for (const [written, found] of [
    ['0', '0'],
    ['70000', '70000'],
    ['22a', '"22a"'],
    ['"22"', '"22"'],
  ]) {
    test(`bad port ${written}`, () => {
      const msg = problemsOf(withReplica(`            ssh: {port: ${written}}\n`));
      assert.ok(msg.includes(`inv.yml:10:25: key 'clusters.c.shards[0].replicas[0].ssh.port': expected an integer 1-65535, found ${found}`), msg);
    });
  }

  for (const [written, found] of [
    ['10', '10'],
    ['"10 parsecs"', '"10 parsecs"'],
    ['0s', '"0s"'],
  ]) {
    test(`bad duration ${written}`, () => {
      const msg = problemsOf(withReplica(`            ssh: {connect_timeout: ${written}}\n`));
      assert.match(msg, /key '.*\.ssh\.connect_timeout': expected a duration with a unit/);
      assert.ok(msg.includes(`found ${found}`), msg);
    });
  }

  test('inline secrets are refused without echoing the value', () => {
    const msg = problemsOf(withReplica('            clickhouse: {password: hunter2}\n            ssh: {passphrase: {env: "not a name hunter3"}}\n'));
    assert.match(msg, /key '.*\.clickhouse\.password': secrets are references: \{env: NAME\} or \{file: PATH\}/);
    assert.match(msg, /key '.*\.ssh\.passphrase\.env': expected an environment variable name/);
    assert.ok(!msg.includes('hunter2') && !msg.includes('hunter3'), msg);
    assert.match(problemsOf(withReplica('            clickhouse: {password: {env: A, file: /b}}\n')), /secrets are references/);
  });

  test('a {file: ...} secret must be an absolute path', () => {
    const msg = problemsOf(withReplica('            clickhouse: {password: {file: secrets/ch.txt}}\n'));
    assert.match(msg, /key '.*\.clickhouse\.password\.file': expected an absolute path/);
    const inv = parseInventory(withReplica('            clickhouse: {password: {file: ~/ch.txt}}\n'), 'inv.yml', { env });
    assert.deepEqual(inv.hosts[0].clickhouse.password, { file: '/home/op/ch.txt' });
  });

  test('octal-mode rule: a quoted string; an unquoted 0644 is told to quote it', () => {
    const ctx = { home: '/home/op' };
    assert.deepEqual(mode().check('0644', '"0644"', ctx), { ok: true, value: 0o644 });
    assert.deepEqual(mode().check(644, '0644', ctx), { ok: false, hint: 'quote it: "0644"', message: undefined });
    assert.equal(mode().check('0999', '"0999"', ctx).ok, false);
  });

  test('alias bombs stop at a budget instead of expanding', () => {
    const lists = ['a: &a [1,1,1,1,1,1,1,1,1,1]', ...'bcdefg'.split('').map((l, i) => `${l}: &${l} [${Array(10).fill(`*${'abcdef'[i]}`).join(',')}]`)];
    const msg = problemsOf(withReplica(`            vars:\n${lists.map((l) => `              ${l}`).join('\n')}\n`));
    assert.match(msg, /expands to more than 1000000 nodes; alias \*[a-g] \(\d+ nodes\) is used \d+ times/);
  });

  test('one document per file', () => {
    assert.match(problemsOf(`${withReplica()}---\nversion: 1\n`), /YAML syntax error: more than one document/);
  });

  test('version must be 1', () => {
    assert.match(problemsOf(withReplica().replace('version: 1', 'version: 2')), /inv\.yml:1:10: key 'version': version must be 1/);
    assert.match(problemsOf(withReplica().replace('version: 1\n', '')), /key 'version': missing\n\s+fix: add `version: 1`/);
  });

  test('hostile host names are refused, escaped in the message', () => {
    const msg = problemsOf(withReplica('          - {host: "h; rm -rf /\\u001b[2J", address: 10.0.0.2}\n'));
    assert.match(msg, /key '.*\.replicas\[1\]\.host': expected a host name .*found "h; rm -rf \/\\x1b\[2J"/);
    assert.match(problemsOf(withReplica('          - {host: -x, address: 10.0.0.2}\n')), /expected a host name/);
  });

  test('an ssh host needs an address and credentials', () => {
    const msg = problemsOf(withReplica('          - {host: h2}\n', ''));
    assert.match(msg, /key '.*\.replicas\[1\]\.address': missing: an ssh host needs an address/);
    assert.match(msg, /key '.*\.replicas\[0\]\.ssh': no SSH credentials/);
  });

  test('jump hosts must exist', () => {
    const msg = problemsOf(withReplica('            ssh: {jump: nowhere}\n'));
    assert.match(msg, /key '.*\.ssh\.jump': no host named "nowhere"/);
  });

  test('paths must be absolute; ~ is expanded', () => {
    const msg = problemsOf(withReplica('            ssh: {known_hosts: known_hosts}\n'));
    assert.match(msg, /key '.*\.ssh\.known_hosts': expected an absolute path/);
  });
});

describe('readSecret', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chops-secrets-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('env: returns the variable; missing names the variable and where', async () => {
    assert.equal(await readSecret({ env: 'CH_PW' }, 'inv.yml:3:5', { CH_PW: 's3cret' }), 's3cret');
    await assert.rejects(readSecret({ env: 'CH_PW' }, 'inv.yml:3:5', {}), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /inv\.yml:3:5: environment variable CH_PW is not set/);
      return true;
    });
  });

  test('file: mode 600 is read, one trailing newline stripped', async () => {
    const file = join(dir, 'ok');
    await writeFile(file, 'pass word\n\n');
    await chmod(file, 0o600);
    assert.equal(await readSecret({ file }, 'here'), 'pass word\n');
  });

  test('file readable by group or others is refused with the chmod to run', async () => {
    const file = join(dir, 'open');
    await writeFile(file, 'x');
    for (const mode of [0o640, 0o604, 0o644]) {
      await chmod(file, mode);
      await assert.rejects(readSecret({ file }, 'here'), (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.ok(err.message.includes(`chmod 600 ${file}`), err.message);
        assert.ok(!err.message.includes(': x'), 'never shows the content');
        return true;
      });
    }
  });

  test('missing file and non-regular file are UsageErrors', async () => {
    await assert.rejects(readSecret({ file: join(dir, 'absent') }, 'here'), /does not exist/);
    const sub = join(dir, 'sub');
    await mkdir(sub, { mode: 0o700 });
    await assert.rejects(readSecret({ file: sub }, 'here'), /not a regular file/);
  });
});
