// The package and server-process facts on output captured in the rolling-upgrade lab
// (test/unit/facts/packages/README.md), Debian version order against dpkg itself, and the
// upgrade's pure decisions (what --version means on a host, what the verification refuses).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { compareDebianVersions, isConfigured, parsePackages, releaseOf, resolveVersion, parseMadison, parseInstalled } from '../../../facts/system/packages.js';
import { parseServerProcess } from '../../../facts/system/server-process.js';
import { mixedVersions } from '../../../facts/clickhouse/server.js';
import { upgradeDecision, versionProblems } from '../../../tasks/clickhouse/upgrade.js';

const fixture = (name: string) => readFileSync(new URL(`./packages/${name}`, import.meta.url), 'utf8');
const BASE = '18.16.1+ds-7.3+b2';
const NEXT = '18.16.1+ds-7.4~chops1';
const BROKEN = '18.16.1+ds-7.5~chops1';

test('packages: installed, held and offered versions of the Debian 18.16 packaging', () => {
  const base = parsePackages(fixture('packages-base.txt'));
  assert.deepEqual(
    base.installed.map((p) => [p.name, p.version, p.state]),
    [
      ['clickhouse-common', BASE, 'ii'],
      ['clickhouse-server', BASE, 'ii'],
      ['clickhouse-client', BASE, 'ii'],
    ],
  );
  assert.deepEqual(base.held, []);
  for (const p of ['clickhouse-common', 'clickhouse-server', 'clickhouse-client'])
    assert.deepEqual([...base.available[p]].sort(compareDebianVersions), [BASE, NEXT, BROKEN]);
  const up = parsePackages(fixture('packages-upgraded.txt'));
  assert.deepEqual(
    up.installed.map((p) => p.version),
    [NEXT, NEXT, NEXT],
  );
  assert.deepEqual(up.held, ['clickhouse-client', 'clickhouse-common', 'clickhouse-server']);
  // held packages are `hi`: installed and configured (wanted: hold), not a half-done install
  assert.deepEqual(
    up.installed.map((p) => [p.state, isConfigured(p.state)]),
    [
      ['hi', true],
      ['hi', true],
      ['hi', true],
    ],
  );
  assert.deepEqual(['iU', 'iF', 'iH', 'iW', 'iiR', 'ii', 'hi'].map(isConfigured), [false, false, false, false, false, true, true]);
  // other held packages are not ours; half-installed states are kept (the decision refuses them)
  assert.deepEqual(parsePackages('@installed\n@held\nclickhouse-backup\nlibc6\n@available\n').held, []);
  assert.deepEqual(parseInstalled(['clickhouse-server\t24.8.4.13\tiU ', 'clickhouse-client\t24.8.4.13\trc ', 'clickhouse-keeper\t\tun ']), [
    { name: 'clickhouse-server', version: '24.8.4.13', state: 'iU' },
  ]);
  assert.deepEqual(parseMadison([' clickhouse-server | 24.8.4.13 | https://packages.clickhouse.com/deb stable/main amd64 Packages', 'garbage']), {
    'clickhouse-server': ['24.8.4.13'],
  });
  assert.throws(() => parsePackages('dpkg-query: command not found\n'), /cannot read the package state/);
});

test('Debian version order is dpkg --compare-versions', () => {
  const pairs = [
    [BASE, NEXT],
    [NEXT, BROKEN],
    ['1.0~rc1', '1.0'],
    ['1.0', '1.0+b1'],
    ['1.0-1', '1.0-1.1'],
    ['1:0.9', '2.0'],
    ['24.3.2.23', '24.8.4.13'],
    ['24.8.4.13', '24.10.1.2812'],
    ['1.0a', '1.0b'],
    ['1.0', '1.0a'],
    ['1.0-1', '1.0-1'],
    ['2.0.0', '2.0'],
    ['1.2.3~~', '1.2.3~'],
  ];
  for (const [a, b] of pairs) {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ]) {
      const ours = Math.sign(compareDebianVersions(x, y));
      const lt = execFileSync('sh', [
        '-c',
        `dpkg --compare-versions "$1" lt "$2" && echo -1 || { dpkg --compare-versions "$1" eq "$2" && echo 0 || echo 1; }`,
        'sh',
        x,
        y,
      ])
        .toString()
        .trim();
      assert.equal(ours, Number(lt), `${x} vs ${y}`);
    }
  }
});

test("releaseOf: the server's version() in a package version; --version resolves to one offered version", () => {
  assert.equal(releaseOf(BASE), '18.16.1');
  assert.equal(releaseOf('24.8.4.13'), '24.8.4.13');
  assert.equal(releaseOf('1:23.3.1.2823-1'), '23.3.1.2823');
  assert.equal(releaseOf('~weird'), undefined);
  assert.deepEqual(resolveVersion(NEXT, [BASE, NEXT]), { version: NEXT });
  assert.deepEqual(resolveVersion('24.8.4.13', ['24.8.4.13', '24.3.2.23']), { version: '24.8.4.13' });
  assert.deepEqual(resolveVersion('24.8.4.13', ['24.8.4.13-1', '24.3.2.23-1']), { version: '24.8.4.13-1' });
  assert.match((resolveVersion('18.16.1', [BASE, NEXT]) as { error: string }).error, /matches 2 package versions/);
  assert.match((resolveVersion('99', [BASE]) as { error: string }).error, /not offered by the repositories \(they offer 18\.16\.1\+ds-7\.3\+b2\)/);
  assert.match((resolveVersion('99', []) as { error: string }).error, /apt-cache madison lists nothing/);
});

test('the upgrade decision on a host: one target for every installed package, downgrades only on purpose', () => {
  const base = parsePackages(fixture('packages-base.txt'));
  assert.deepEqual(upgradeDecision(base, NEXT), {
    target: NEXT,
    from: { 'clickhouse-common': BASE, 'clickhouse-server': BASE, 'clickhouse-client': BASE },
    upToDate: false,
  });
  const up = parsePackages(fixture('packages-upgraded.txt'));
  assert.equal((upgradeDecision(up, NEXT) as { upToDate: boolean }).upToDate, true);
  assert.match((upgradeDecision(up, BASE) as { error: string }).error, /older than the installed/);
  assert.equal((upgradeDecision(up, BASE, { allowDowngrade: true }) as { target: string }).target, BASE);
  // a package offered at another version only: refused, naming it
  const partial = { ...base, available: { ...base.available, 'clickhouse-client': [BASE] } };
  assert.match((upgradeDecision(partial, NEXT) as { error: string }).error, /^clickhouse-client 18\.16\.1\+ds-7\.4~chops1: not offered/);
  assert.match((upgradeDecision({ installed: [], held: [], available: {} }, NEXT) as { error: string }).error, /no ClickHouse package is installed/);
  const half = { ...base, installed: [{ name: 'clickhouse-server', version: BASE, state: 'iF' }] };
  assert.match((upgradeDecision(half, NEXT) as { hint: string }).hint, /dpkg --configure -a/);
});

test('server process: replaced files still mapped after the install, none after the restart', () => {
  const before = parseServerProcess(fixture('process-after-install.txt'));
  assert.ok(before.pid && before.pid > 0);
  assert.equal(before.exe, '/usr/sbin/clickhouse-server');
  assert.ok(
    before.deleted.some((f) => f.startsWith('/usr/lib/x86_64-linux-gnu/libclickhouse.so.18.16')),
    before.deleted.join(', '),
  );
  assert.ok(before.startedAtMs && before.startedAtMs > Date.parse('2026-01-01'));
  const after = parseServerProcess(fixture('process-restarted.txt'));
  assert.deepEqual(after.deleted, []);
  assert.notEqual(after.pid, before.pid);
  assert.deepEqual(parseServerProcess('@pid\n'), { deleted: [] });
  // a replaced program itself (a static binary, as upstream's packages ship)
  const stat = parseServerProcess('@pid 42\n@exe /usr/bin/clickhouse (deleted)\n@elapsed 5\n@now 1800000000\n@deleted /usr/bin/clickhouse\n');
  assert.deepEqual([stat.exe, stat.deleted], ['/usr/bin/clickhouse', ['/usr/bin/clickhouse']]);
});

test('the verification refuses what is not the upgrade, and says what it saw', () => {
  const up = parsePackages(fixture('packages-upgraded.txt'));
  const restarted = parseServerProcess(fixture('process-restarted.txt'));
  const notRestarted = parseServerProcess(fixture('process-after-install.txt'));
  assert.deepEqual(versionProblems(NEXT, up, restarted, '18.16.1', notRestarted.pid), []);
  assert.match(versionProblems(NEXT, up, notRestarted, '18.16.1').join('; '), /still runs replaced files: \/usr\/lib\/x86_64-linux-gnu\/libclickhouse/);
  assert.match(versionProblems(NEXT, up, restarted, '18.16.1', restarted.pid).join('; '), /still .*the one from before the stop/);
  assert.match(
    versionProblems(NEXT, up, restarted, '19.1.6').join('; '),
    /reports version\(\) 19\.1\.6, the package 18\.16\.1\+ds-7\.4~chops1 is release 18\.16\.1/,
  );
  assert.match(
    versionProblems(NEXT, { ...up, held: [] }, restarted, '18.16.1').join('; '),
    /not held: clickhouse-common, clickhouse-server, clickhouse-client/,
  );
  assert.match(versionProblems(BROKEN, up, restarted, '18.16.1').join('; '), /installed: clickhouse-common 18\.16\.1\+ds-7\.4~chops1/);
  assert.deepEqual(versionProblems(NEXT, up, { deleted: [] }, '18.16.1'), ['no server process']);
});

test('mixed versions: the shards whose replicas report different versions (the topology preflight and chops status)', () => {
  const h = (name: string, shardName: string, cluster = 'lab') => ({ name, cluster, shardName });
  assert.deepEqual(
    mixedVersions([
      { host: h('ch1', '01'), version: '24.8.4.13' },
      { host: h('ch2', '01'), version: '24.3.2.23' },
      { host: h('ch3', '02'), version: '24.8.4.13' },
      { host: h('ch4', '02'), version: '24.8.4.13' },
      { host: h('x1', '01', 'other'), version: '1' },
      { host: h('x2', '01', 'other') }, // did not answer: not compared
    ]),
    ['shard lab/01: ch1 24.8.4.13, ch2 24.3.2.23'],
  );
  assert.deepEqual(mixedVersions([]), []);
});
