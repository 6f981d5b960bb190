// Issue 8, items 1-9: every class of bad input is refused with exit 2 and a position (or a
// message naming the flag), cheaply, and nothing quoted back reaches a terminal raw.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InventoryError, loadInventory, parseInventory } from '../../src/inventory/load.js';
import { MAX_DEPTH, MAX_NODES, scanLayout } from '../../src/inventory/limits.js';
import { address, dataDirectory, decimalInt, durationMs, DURATION_RANGES, printable, show } from '../../src/inventory/values.js';
import { normaliseArgv, rawFlags, withRawValues } from '../../src/commands/argv.js';
import { flagText, positiveInt } from '../../src/commands/common.js';
import { parseParams } from '../../src/engine/params.js';
import { UsageError } from '../../src/errors.js';
import { describeTopology } from '../../src/inventory/topology.js';
import { DESCRIPTOR_HINT, credentialProblems, isDescriptorLimit, readIdentity } from '../../src/transport/credentials.js';
import exec from '../../playbooks/exec.js';
import { loadPlaybook } from '../../playbooks/index.js';

const env = { HOME: '/home/op' };
const head = 'version: 1\ndefaults:\n  ssh: {identity_file: /keys/id}\n';
const oneReplica = (replica: string) => `${head}clusters:\n  c:\n    shards:\n      - replicas:\n          - ${replica}\n`;

function problemsOf(text: string | Buffer): string {
  try {
    parseInventory(text, 'inv.yml', { env });
  } catch (err) {
    assert.ok(err instanceof InventoryError, `expected InventoryError, got ${(err as Error)?.stack}`);
    assert.equal(err.exitCode, 2);
    return err.message;
  }
  assert.fail('inventory loaded without errors');
}
const load = (text: string) => parseInventory(text, 'inv.yml', { env });

describe('inventory resource limits (item 2)', () => {
  test('an alias bomb of one big anchor used thousands of times is refused at the alias, without expanding it', () => {
    const text = `${head}  vars:\n    big: &big [${Array(5000).fill('1').join(',')}]\n${Array.from({ length: 9990 }, (_, i) => `    r${i}: *big`).join('\n')}\nclusters:\n  c:\n    shards:\n      - replicas:\n          - {host: h1, address: 10.0.0.1}\n`;
    const t0 = process.cpuUsage();
    const msg = problemsOf(text);
    assert.match(msg, new RegExp(`inv\\.yml:6:\\d+: the inventory expands to more than ${MAX_NODES} nodes; alias \\*big \\(5001 nodes\\) is used \\d+ times`));
    const cpu = process.cpuUsage(t0);
    assert.ok(cpu.user + cpu.system < 20e6, 'well below the 48 s it took when every alias was expanded'); // sanity, not a benchmark
  });

  test('an alias inside its own anchor is refused, not followed forever', () => {
    assert.match(
      problemsOf(`${head}  vars:\n    a: &a [1, *a]\nclusters: {c: {shards: [{replicas: [{host: h1, address: 10.0.0.1}]}]}}\n`),
      /alias \*a refers to the node that contains it/,
    );
  });

  test('nesting deeper than the limit is refused with its position before the parser recurses (2000 levels)', () => {
    const nested = `${head}  vars:\n${Array.from({ length: 2000 }, (_, i) => `${'  '.repeat(i + 2)}k${i}:`).join('\n')}\n${'  '.repeat(2002)}v: 1\n`;
    const deep = problemsOf(nested);
    const line = Number(/inv\.yml:(\d+):\d+: nested more than 32 levels deep/.exec(deep)?.[1]);
    assert.ok(line > 5 && line <= MAX_DEPTH + 5, deep);
    assert.match(problemsOf(`${head}  vars: {x: ${'['.repeat(5000)}${']'.repeat(5000)}}\n`), /nested more than 32 levels deep/);
    assert.match(
      problemsOf(`${head}  vars:\n    x:\n${Array.from({ length: 100 }, (_, i) => `${'  '.repeat(i + 3)}- `).join('\n')}1\n`),
      /nested more than 32 levels/,
    );
  });

  test('a real inventory is far inside the layout bounds; text inside block scalars does not count as nesting', () => {
    const r = scanLayout(`a:\n  b: |\n${Array.from({ length: 100 }, (_, i) => `${' '.repeat(4 + i)}[[[[ {{{{`).join('\n')}\nc: 1\n`);
    assert.equal(r.deep, undefined);
  });

  test('more nodes than the limit are refused before parsing, with a position', () => {
    const text = `${head}  vars:\n    x: [${Array(MAX_NODES + 10)
      .fill('0')
      .join(',')}]\n`;
    assert.match(problemsOf(text), new RegExp(`inv\\.yml:5:\\d+: more than ${MAX_NODES} YAML nodes`));
  });

  test('20 000 replicas with a problem each: all counted, the first 50 shown (linear problem handling)', () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => `          - {host: h${i}, address: 10.0.${i >> 8}.${(i & 127) + 1}, ssh: {port: 0}}`).join('\n');
    const msg = problemsOf(`${head}clusters:\n  c:\n    shards:\n      - replicas:\n${rows}\n`);
    assert.match(msg, /^inventory inv\.yml: 20000 problems$/m);
    assert.match(msg, /\.\.\. and 19950 more/);
    assert.equal(msg.split('\n').filter((l) => l.startsWith('inv.yml:')).length, 50);
  });

  test('the topology of a very large inventory prints (no spread of every row into Math.max)', () => {
    const hosts = Array.from({ length: 200_000 }, (_, i) => ({
      name: `h${i}`,
      cluster: 'c',
      shardName: '1',
      replicaName: `h${i}`,
      connection: 'ssh',
      ssh: { address: '10.0.0.1', port: 22, user: 'root', sudo: false },
    }));
    const text = describeTopology({ hosts, clusters: [{ name: 'c', shards: [{}] }] } as any);
    assert.match(text, /200000 hosts$/);
  });

  test('bytes that are not UTF-8 are refused with their position', () => {
    const bytes = Buffer.concat([
      Buffer.from(`${head}clusters:\n  c:\n    shards:\n      - replicas:\n          - {host: h1, address: 10.0.0.1, clickhouse: {data_dir: /srv/d`),
      Buffer.from([0xe9]),
      Buffer.from('t}}\n'),
    ]);
    assert.match(problemsOf(bytes), /inv\.yml:8:72: byte 0xe9 at offset \d+ is not UTF-8/);
  });

  describe('the file itself', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'chops-inv-'));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    test('a FIFO is refused at once (no wait for a writer); /dev/zero is refused, not read', async () => {
      const fifo = join(dir, 'fifo.yml');
      execFileSync('mkfifo', [fifo]);
      await assert.rejects(loadInventory(fifo), (e: any) => e instanceof UsageError && e.exitCode === 2 && /it is a FIFO, not a regular file/.test(e.message));
      await assert.rejects(loadInventory('/dev/zero'), (e: any) => e instanceof UsageError && /it is a device, not a regular file/.test(e.message));
      await assert.rejects(loadInventory(dir), (e: any) => e instanceof UsageError && /directory/.test(e.message));
    });

    test('a file above the size cap is refused by its size', async () => {
      const big = join(dir, 'big.yml');
      await writeFile(big, '');
      execFileSync('truncate', ['-s', '17M', big]);
      await assert.rejects(loadInventory(big), /is 17825792 bytes; the limit is 16777216 bytes/);
    });
  });
});

describe('secrets are never echoed (item 3)', () => {
  test('a flow map whose only key is the value', () => {
    for (const bad of ['{hunter2-VALUE}', '{hunter2-VALUE: 1}', '{env: A, hunter2-VALUE: x}', '[hunter2-VALUE]']) {
      const msg = problemsOf(oneReplica(`{host: h1, address: 10.0.0.1, clickhouse: {password: ${bad}}}`));
      assert.match(msg, /secrets are references/);
      assert.ok(!msg.includes('hunter2'), msg);
    }
  });
});

describe('YAML 1.2 traps where a key is a name; numbers only in plain decimal (item 4)', () => {
  test('cluster names and vars keys stay as written', () => {
    const inv = load(
      `${head}  vars: {0644: a, 22.10: b, 1e3: c}\nclusters:\n  01:\n    shards: [{replicas: [{host: h1, address: 10.0.0.1}]}]\n  22.10:\n    shards: [{replicas: [{host: h2, address: 10.0.0.2}]}]\n`,
    );
    assert.deepEqual(
      inv.clusters.map((c) => c.name),
      ['01', '22.10'],
    );
    assert.deepEqual(Object.keys(inv.hosts[0].vars).sort(), ['0644', '1e3', '22.10']);
  });

  for (const port of ['0022', '0x16', '1e3', '0o26', '+22', '22.0']) {
    test(`port ${port} is refused`, () => {
      assert.match(
        problemsOf(oneReplica(`{host: h1, address: 10.0.0.1, ssh: {port: ${port}}}`)),
        /ssh\.port': expected an integer 1-65535 written in plain decimal digits, found/,
      );
    });
  }
  test('gate counts too', () => {
    assert.match(
      problemsOf(oneReplica('{host: h1, address: 10.0.0.1, gates: {max_queue_size: 0x10}}')),
      /max_queue_size': expected an integer 0-1000000000 written in plain decimal digits/,
    );
  });
});

describe('durations have a documented range (item 5)', () => {
  for (const [key, value, range] of [
    ['ssh', 'connect_timeout: 30d', '1s to 10m'],
    ['ssh', 'keepalive_interval: 365d', '1s to 1h'],
    ['gates', 'wait_timeout: 99999999999999999999d', '1s to 1d'],
    ['gates', 'poll_interval: 0ms', '10ms to 1m'],
  ] as const) {
    test(`${key}.${value}`, () => {
      assert.match(problemsOf(oneReplica(`{host: h1, address: 10.0.0.1, ${key}: {${value}}}`)), new RegExp(`expected a duration with a unit, ${range}, found`));
    });
  }
  test('every range stays below the Node timer limit where it becomes a timer', () => {
    for (const [name, r] of Object.entries(DURATION_RANGES)) if (name !== 'logRetention') assert.ok(r.max <= 2 ** 31 - 1, name);
    assert.equal(durationMs('1.5m', DURATION_RANGES.waitTimeout).ok, true);
    assert.equal(durationMs('10 s', DURATION_RANGES.waitTimeout).ok, false);
  });
});

describe('flags use the inventory validators (items 1, 6)', () => {
  const raw = (...args: string[]) => withRawValues({}, rawFlags(normaliseArgv(args)));

  test("values arrive as typed: '' and 123 stay strings, repeats are arrays, -5 is a value", () => {
    assert.deepEqual(raw('--limit', '', '-i', '0022'), { limit: '', inventory: '0022', i: '0022' });
    assert.deepEqual(raw('--limit', 'h1', '--limit', 'h1').limit, ['h1', 'h1']);
    assert.equal(raw('--max-queue-size', '-5')['max-queue-size'], '-5');
    assert.equal(raw('--cmd')['cmd'], true);
    assert.equal(raw('--json', 'x').json, undefined, 'booleans are left to cac');
  });

  test('chops flags: empty, repeated, valueless and non-decimal values are UsageErrors', () => {
    assert.throws(
      () => flagText({ limit: '' }, 'limit'),
      (e: any) => e instanceof UsageError && e.exitCode === 2 && /--limit is empty/.test(e.message),
    );
    assert.throws(() => flagText({ limit: ['a', 'b'] }, 'limit'), /--limit was given 2 times/);
    assert.throws(() => flagText({ inventory: true }, 'inventory'), /--inventory needs/);
    assert.throws(() => flagText({ limit: 'a\u001b[2J' }, 'limit'), /control characters: "a\\x1b\[2J"/);
    assert.throws(() => positiveInt({ 'parallel-shards': '-1' }, 'parallel-shards', 2), /plain decimal/);
    assert.throws(() => positiveInt({ parallelShards: '0x2' }, 'parallel-shards', 2), /plain decimal/);
    assert.equal(positiveInt({ parallelShards: '3' }, 'parallel-shards', 2), 3);
  });

  test('playbook parameters: the gate flags refuse what the inventory refuses', () => {
    const bad = (extra: Record<string, unknown>, re: RegExp) =>
      assert.throws(
        () => parseParams(exec, { cmd: 'x', ...extra }),
        (e: any) => e instanceof UsageError && re.test(e.message),
      );
    bad({ 'wait-timeout': '0s' }, /--wait-timeout .*1s to 1d/);
    bad({ 'wait-timeout': '30d' }, /--wait-timeout .*1s to 1d/);
    bad({ 'poll-interval': '0ms' }, /--poll-interval .*10ms to 1m/);
    bad({ 'max-queue-size': '-5' }, /--max-queue-size .*plain decimal/);
    bad({ 'max-queue-size': ['1', '2'] }, /given 2 times/);
    bad({ 'reboot-timeout': '365d' }, /--reboot-timeout/);
    assert.throws(() => parseParams(exec, { cmd: true }), /--cmd for playbook exec needs a value/);
    assert.throws(() => parseParams(exec, { cmd: '' }), /--cmd .*empty/);
    assert.equal(parseParams(exec, { cmd: 'x', 'max-delay': '0s' })['max-delay'], 0, 'max_delay: 0s is allowed in both');
  });

  test('playbook names that are properties of every object are unknown playbooks', async () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      await assert.rejects(loadPlaybook(name), (e: any) => e instanceof UsageError && e.exitCode === 2 && /unknown playbook/.test(e.message));
    }
  });
});

describe('addresses (item 8)', () => {
  test('host:port, invalid IPv4 and over-long names are refused; IPv6 is accepted', () => {
    assert.match(
      problemsOf(oneReplica('{host: h1, address: "127.0.0.1:2222"}')),
      /a port does not belong in the address\)\n\s+fix: address: 127\.0\.0\.1 and ssh\.port: 2222/,
    );
    assert.match(problemsOf(oneReplica('{host: h1, address: 999.999.999.999}')), /expected a valid IPv4 address/);
    assert.match(problemsOf(oneReplica(`{host: h1, address: ${'a'.repeat(100_000)}}`)), /at most 253 characters\), found 100000 characters/);
    const inv = load(
      `${head}clusters:\n  c:\n    shards:\n      - replicas:\n          - {host: h1, address: "::1"}\n          - {host: h2, address: "::ffff:127.0.0.1"}\n`,
    );
    assert.deepEqual(
      inv.hosts.map((h) => h.ssh.address),
      ['::1', '::ffff:127.0.0.1'],
    );
    assert.match(describeTopology(inv), /\[::1\]:22/);
    for (const ok of ['db-1.example.com', '10.0.0.1', 'localhost', 'fe80::1']) assert.equal(address(ok).ok, true, ok);
    for (const no of ['a..b', '-a', 'a b', 'user@h', 'http://x', '1.2.3']) assert.equal(address(no).ok, false, no);
  });
});

describe('smaller classes (item 9)', () => {
  test('jump loops and chains are refused; one hop is supported', () => {
    const two = (a: string, b: string) =>
      `${head}clusters:\n  c:\n    shards:\n      - replicas:\n          - {host: h1, address: 10.0.0.1, ssh: {jump: ${a}}}\n          - {host: h2, address: 10.0.0.2, ssh: {jump: ${b}}}\n          - {host: h3, address: 10.0.0.3}\n`;
    const loop = problemsOf(two('h2', 'h1'));
    assert.match(loop, /jump loop: h1 goes through h2, which goes through h1/);
    assert.match(problemsOf(two('h2', 'h3')), /jump chain: h2 itself goes through h3; chops supports one jump host per connection/);
    assert.equal(load(two('h3', 'h3')).hosts[0].ssh.jump?.address, '10.0.0.3');
  });

  test('control characters, U+202E and long keys are escaped and shortened in messages', () => {
    const msg = problemsOf(oneReplica(`{host: h1, address: 10.0.0.1, "a\\u009b\\u202eb": 1, ${'k'.repeat(100_000)}: 2}`));
    assert.ok(!/[\u0080-\u009f\u202e]/.test(msg), 'no raw C1 or bidi control');
    assert.match(msg, /\\x9b\\u202e/);
    assert.ok(msg.length < 2000, `message is ${msg.length} characters`);
    assert.match(msg, /\(100000 characters\)/);
    assert.equal(printable('\u001b[31mred\u0085'), '\\x1b[31mred\\x85');
    assert.equal(show('x'.repeat(100)), `"${'x'.repeat(57)}"... (100 characters)`);
    const pathMsg = (() => {
      try {
        parseInventory('version: 2\n', '/tmp/\u001b]0;evil\u0007.yml', { env });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    assert.ok(!pathMsg.includes('\u001b') && pathMsg.includes('\\x1b]0;evil\\x07'), pathMsg);
  });

  test('data_dir must be normalised and not a system directory', () => {
    for (const bad of ['/', '/etc', '/var/lib', '/var/lib/clickhouse/../../etc', '/var/lib/clickhouse/', '/srv//ch', '/proc/1', '/usr']) {
      assert.match(
        problemsOf(oneReplica(`{host: h1, address: 10.0.0.1, clickhouse: {data_dir: "${bad}"}}`)),
        /data_dir': expected (a normalised absolute path|ClickHouse's own data directory)/,
        bad,
      );
    }
    for (const good of ['/var/lib/clickhouse', '/srv/clickhouse', '/data', '/mnt/disk1/clickhouse']) assert.equal(dataDirectory(good).ok, true, good);
    assert.match(problemsOf(oneReplica('{host: h1, address: 10.0.0.1, ssh: {known_hosts: /root/./kh}}')), /known_hosts': expected a normalised absolute path/);
  });

  test('numbers: decimalInt reads only digits', () => {
    assert.deepEqual(decimalInt('22', 1, 65535), { ok: true, value: 22 });
    for (const w of ['0022', '0x16', '1e3', '', ' 22', '22 ', '-1', '٢٢']) assert.equal(decimalInt(w, 0, 65535).ok, false, w);
  });
});

describe('credentials are checked locally (item 7)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chops-cred-'));
    await mkdir(join(dir, 'keydir'));
    await writeFile(join(dir, 'id'), 'KEY');
    await writeFile(join(dir, 'kh'), '');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('identity_file missing or a directory, known_hosts missing: each named with its host and a fix', async () => {
    const inv = load(
      `version: 1\ndefaults:\n  ssh: {identity_file: ${dir}/id, known_hosts: ${dir}/kh}\nclusters:\n  c:\n    shards:\n      - replicas:\n          - {host: ok, address: 10.0.0.1}\n          - {host: dirkey, address: 10.0.0.2, ssh: {identity_file: ${dir}/keydir}}\n          - {host: nokey, address: 10.0.0.3, ssh: {identity_file: ${dir}/none}}\n          - {host: nokh, address: 10.0.0.4, ssh: {known_hosts: ${dir}/nokh}}\n          - {host: tofu, address: 10.0.0.5, ssh: {known_hosts: ${dir}/nokh, trust_on_first_use: true}}\n`,
    );
    const problems = await credentialProblems(inv.hosts);
    assert.deepEqual(
      problems.map((p) => p.host),
      ['dirkey', 'nokey', 'nokh'],
    );
    assert.match(problems[0].message, /identity_file .*keydir is a directory/);
    assert.match(problems[1].message, /identity_file .*none does not exist/);
    assert.match(problems[2].message, /known_hosts .*nokh does not exist/);
    assert.match(problems[2].hint, /ssh-keyscan 10\.0\.0\.4 >>/);
    assert.match(problems[0].where, /inv\.yml:9:13/);
  });

  test('an identity file is read once per run, however many hosts use it (item 13)', async () => {
    const key = join(dir, 'once');
    await writeFile(key, 'FIRST');
    assert.equal(await readIdentity(key), 'FIRST');
    await writeFile(key, 'SECOND');
    await rm(key);
    assert.equal(await readIdentity(key), 'FIRST', 'the second host got the text read for the first, no second open');
  });

  test('out of descriptors is named as the limit with its fix, not blamed on identity_file (item 13)', () => {
    assert.ok(isDescriptorLimit('EMFILE') && isDescriptorLimit('ENFILE'));
    assert.match(DESCRIPTOR_HINT, /file descriptors.*ulimit -n/);
    assert.doesNotMatch(DESCRIPTOR_HINT, /identity_file/);
  });
});
