// Fixture tests of the data-directory facts and of the pure judgements of a move: what rsync
// prints, the tree summary, ClickHouse config paths, findmnt/fstab/df, the preflight refusals,
// convergence, the fstab arming, where a replica stands, and the backup precondition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  converged,
  parseItemized,
  parseRsyncProgress,
  parseRsyncStats,
  passSucceeded,
  rsyncArgs,
  rsyncStderr,
  stderrVerdictScript,
} from '../../../tasks/datadir/rsync-cmd.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a pass prints on stderr for these rsync stderr lines: the last 20, then the host's verdict. */
function hostStderr(lines: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'chops-rsync-err-'));
  try {
    const err = join(dir, 'rsync.err');
    writeFileSync(err, lines.map((l) => `${l}\n`).join(''));
    const r = spawnSync('sh', ['-c', `tail -n 20 "$1" >&2; ${stderrVerdictScript(err)}`, 'sh', err], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stderr;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
import { compareTrees, parseTreeStats } from '../../../facts/datadir/tree.js';
import { parseConfigPaths } from '../../../facts/datadir/config-paths.js';
import { fstabEntryFor, mountArgs, mountsInside, parseDf, parseFindmnt, parseFstab } from '../../../facts/datadir/mounts.js';
import { judgePreflight, judgeSpace } from '../../../tasks/datadir/preflight.js';
import { setArmed } from '../../../tasks/datadir/swap.js';
import { parseSituation, situation } from '../../../facts/datadir/situation.js';
import { mounts, space } from '../../../facts/datadir/mounts.js';
import { configPaths } from '../../../facts/datadir/config-paths.js';
import { treeStats } from '../../../facts/datadir/tree.js';
import type { Host } from '../../../src/inventory/types.js';
import { phaseOf } from '../../../tasks/datadir/situation.js';
import { judgeShardBackups } from '../../../tasks/datadir/backup-guard.js';
import { compareWithBefore } from '../../../tasks/datadir/verify.js';

const STATS = `
Number of files: 5 (reg: 2, dir: 2, link: 1)
Number of created files: 4 (reg: 2, dir: 1, link: 1)
Number of deleted files: 3
Number of regular files transferred: 1
Total file size: 6,000,003 bytes
Total transferred file size: 3,000,000 bytes
Literal data: 3,000,000 bytes
Matched data: 0 bytes
File list size: 0
Total bytes sent: 3,000,890
Total bytes received: 48

sent 3,000,890 bytes  received 48 bytes  6,001,876.00 bytes/sec
total size is 6,000,003  speedup is 2.00
`;

test('rsync --stats (3.2.7 format) parsed; no block = undefined', () => {
  assert.deepEqual(parseRsyncStats(STATS), {
    files: 5,
    regularFiles: 2,
    regularTransferred: 1,
    deleted: 3,
    totalSize: 6_000_003,
    transferredSize: 3_000_000,
    literalData: 3_000_000,
    bytesSent: 3_000_890,
  });
  assert.equal(parseRsyncStats('rsync: connection unexpectedly closed'), undefined);
});

test('rsync progress2 line: bytes, percent, rate, ETA', () => {
  const out = '         32,768   0%    0.00kB/s    0:00:00  \r    150,000,000  45%   12.34MB/s    0:00:10 (xfr#5, to-chk=10/100)';
  assert.deepEqual(parseRsyncProgress(out), { bytes: 150_000_000, percent: 45, rate: 12_340_000, etaSeconds: 10 });
  assert.equal(parseRsyncProgress('sending incremental file list'), undefined);
});

test('same flags on every pass; --delete only without the server; vanished files (24, or a 23 of vanished sources) only live', () => {
  const live = rsyncArgs({ src: '/a', dst: '/b', kind: 'live', bwlimit: '50m' });
  const final = rsyncArgs({ src: '/a', dst: '/b', kind: 'final', bwlimit: '50m' });
  for (const a of [live, final])
    for (const f of ['-aHAX', '--numeric-ids', '--no-inc-recursive', '--exclude=/lost+found']) assert.ok(a.includes(f), `${f} in ${a.join(' ')}`);
  assert.ok(live.includes('--bwlimit=50m') && !live.includes('--delete'));
  assert.ok(final.includes('--delete') && !final.some((x) => x.startsWith('--bwlimit')), 'the stopped pass is downtime: never throttled');
  assert.ok(!live.some((x) => x === '-L' || x === '--copy-links'));
  assert.deepEqual(live.slice(-2), ['/a/', '/b/']);
  assert.equal(passSucceeded('live', 24), true);
  assert.equal(passSucceeded('final', 24), false);
  assert.equal(passSucceeded('live', 23), false);
  // rsync 3.2+ on a part merged away between the listing and the ACL read (seen in CI): 23, not 24.
  // The verdict is the host's grep over the WHOLE stderr file (real grep here, on a temp file).
  const aclGone = [
    'rsync: [sender] get_acl: sys_acl_get_file(store/a1b/x/tmp_insert_3, ACL_TYPE_DEFAULT): No such file or directory (2)',
    '',
    'file has vanished: "/var/lib/clickhouse/store/a1b/x/tmp_insert_4/data.bin"',
    'rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [sender=3.5.0]',
  ];
  assert.equal(passSucceeded('live', 23, hostStderr(aclGone)), true);
  assert.equal(passSucceeded('final', 23, hostStderr(aclGone)), false, 'nothing vanishes from a stopped server');
  assert.equal(passSucceeded('live', 23, aclGone.join('\n')), false, 'no verdict line from the host: nothing proven');
  assert.equal(passSucceeded('live', 23, hostStderr(['rsync: [sender] get_xattr_names: llistxattr("a/b",1024) failed: No such file or directory (2)'])), true);
  // A real error anywhere in the file fails the pass, even when the 20 lines the pass prints are
  // all vanished files.
  const early = [
    'rsync: [receiver] mkstemp "/b/.x.abc" failed: Permission denied (13)',
    ...Array.from({ length: 30 }, (_, i) => `file has vanished: "/a/p${i}"`),
  ];
  const printed = hostStderr(early);
  assert.ok(!printed.includes('mkstemp'), 'the error is not in the tail the pass prints');
  assert.equal(passSucceeded('live', 23, printed), false);
  for (const other of [
    'rsync: [receiver] mkstemp "/b/.x.abc" failed: No such file or directory (2)',
    'rsync: [sender] send_files failed to open "/a/x": Permission denied (13)',
    'rsync: [sender] change_dir "/var/lib/clickhouse" failed: No such file or directory (2)',
    'rsync: [sender] link_stat "/var/lib/clickhouse/." failed: No such file or directory (2)',
    'rsync: [generator] failed to set permissions on "/b/x": Operation not permitted (1)',
    // rsync 3.1 tags no line: there the generator and the receiver read the destination's ACLs too
    'rsync: get_acl: sys_acl_get_file(a/b, ACL_TYPE_ACCESS): No such file or directory (2)',
  ])
    assert.equal(passSucceeded('live', 23, hostStderr(['file has vanished: "/a/y"', other])), false, other);
  assert.equal(passSucceeded('live', 23, hostStderr([aclGone[3]])), false, 'a summary alone: nothing shown to have vanished');
  assert.equal(passSucceeded('live', 23, ''), false, 'no stderr: no proof anything merely vanished');
  assert.equal(rsyncStderr(hostStderr(['x'])), 'x\n', 'the operator sees rsync, not the verdict');
  assert.deepEqual(parseItemized('\n>f.st...... status\n'), ['>f.st...... status']);
});

test('convergence: tiny first pass, small delta, not shrinking, maximum', () => {
  const o = { convergedBytes: 100, maxPasses: 4 };
  assert.equal(converged([50], o).done, true);
  assert.equal(converged([10_000], o).done, false);
  assert.equal(converged([10_000, 90], o).done, true);
  assert.equal(converged([10_000, 5_000, 4_000], o).done, true, 'shrinking by less than half');
  assert.equal(converged([10_000, 4_000, 1_000], o).done, false);
  assert.equal(converged([10_000, 4_000, 1_000, 400], o).done, true);
});

const TREE =
  'dirs=10\nfiles=40\nsymlinks=4\nother=0\ninodes=18\nbytes=12345\nused=65536\nmeta=0123456789abcdef\nlinks=fedcba9876543210\nhardlinks=00112233aabbccdd\n';
test('tree stats: parsed; a missing value or digest is an error, never a zero', () => {
  const t = parseTreeStats(TREE, 0, '', '/d');
  assert.equal(t.extraLinks, 22);
  assert.equal(t.usedBytes, 65536);
  assert.throws(() => parseTreeStats(TREE.replace('inodes=18\n', ''), 0, '', '/d'), /inodes/);
  assert.throws(() => parseTreeStats(TREE.replace(/hardlinks=.*\n/, 'hardlinks=\n'), 0, '', '/d'), /hardlinks/);
  assert.throws(() => parseTreeStats('', 3, 'cd: /d: No such file', '/d'), /exit 3/);
  const u = parseTreeStats(TREE.replace('inodes=18', 'inodes=40'), 0, '', '/d');
  assert.deepEqual(compareTrees(t, u), ['distinct files (inodes): 18 ≠ 40', 'hard links: 22 ≠ 0']);
});

const CONFIG = `==> /var/lib/clickhouse/preprocessed_configs/config.xml
<?xml version="1.0"?>
<!-- <path>/commented/out/</path> -->
<yandex>
    <path>/var/lib/clickhouse/</path>
    <tmp_path>/var/lib/clickhouse/tmp/</tmp_path>
    <user_files_path>/srv/user_files/</user_files_path>
    <format_schema_path>/var/lib/clickhouse/format_schemas/</format_schema_path>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
    <user_directories><local_directory><path>/var/lib/clickhouse/access/</path></local_directory></user_directories>
    <keeper_server><log_storage_path>/var/lib/clickhouse/coordination/log</log_storage_path><snapshot_storage_path>/var/lib/clickhouse/coordination/snapshots</snapshot_storage_path></keeper_server>
    <storage_configuration><disks>
        <default><keep_free_space_bytes>0</keep_free_space_bytes></default>
        <fast><path>/var/lib/clickhouse/disks/fast/</path></fast>
        <cold><path>/mnt/cold/</path></cold>
    </disks></storage_configuration>
</yandex>
`;

test('config paths from the preprocessed config: nested <path> of distributed_ddl is not the data path', () => {
  const c = parseConfigPaths(CONFIG);
  assert.equal(c.path, '/var/lib/clickhouse/');
  assert.equal(c.accessControlPath, '/var/lib/clickhouse/access/');
  assert.equal(c.keeperLogPath, '/var/lib/clickhouse/coordination/log');
  assert.deepEqual(c.disks, [
    { name: 'fast', path: '/var/lib/clickhouse/disks/fast/' },
    { name: 'cold', path: '/mnt/cold/' },
  ]);
  // config.xml then config.d/: the later file wins
  const merged = parseConfigPaths(
    '==> /etc/clickhouse-server/config.xml\n<yandex><path>/a/</path><tmp_path>/a/tmp/</tmp_path></yandex>\n==> /etc/clickhouse-server/config.d/p.xml\n<yandex><path>/b/</path></yandex>\n',
  );
  assert.equal(merged.path, '/b/');
  assert.equal(merged.tmpPath, '/a/tmp/');
});

const FINDMNT = '/ /dev/sda1 ext4 rw,relatime\n/var/lib/clickhouse/disks/fast /dev/nvme0n1p1 ext4 rw\n/mnt/my\\x20disk /dev/sdc1 xfs rw\n';
const layout = { dataDir: '/var/lib/clickhouse', oldDir: '/var/lib/clickhouse-tmp', staging: '/mnt/chops-move-data' };
const tree = parseTreeStats(TREE, 0, '', '/d');

test('preflight refuses a mounted disk inside the tree, a path into the old dir, a data_dir that is not <path>', () => {
  const ms = parseFindmnt(FINDMNT);
  assert.equal(ms[2].target, '/mnt/my disk');
  assert.deepEqual(
    mountsInside(ms, '/var/lib/clickhouse').map((m) => m.target),
    ['/var/lib/clickhouse/disks/fast'],
  );
  const v = judgePreflight({ layout, config: parseConfigPaths(CONFIG), mounts: ms, tree });
  assert.equal(v.refusals.length, 1);
  assert.match(v.refusals[0], /disks\/fast .*mounted inside the data directory \(disk "fast"\)/);
  assert.ok(v.notes.some((n) => n.startsWith('user_files_path /srv/user_files/: outside')));
  assert.ok(v.notes.some((n) => n.startsWith('keeper log_storage_path /var/lib/clickhouse/coordination/log: inside')));
  const ok = judgePreflight({ layout, config: parseConfigPaths(CONFIG), mounts: ms.filter((m) => !m.target.includes('fast')), tree });
  assert.deepEqual(ok.refusals, []);
  const wrong = judgePreflight({
    layout,
    config: parseConfigPaths('==> c\n<yandex><path>/data/ch/</path><tmp_path>/var/lib/clickhouse-tmp/tmp</tmp_path></yandex>'),
    mounts: [],
    tree,
  });
  assert.equal(wrong.refusals.length, 2);
  assert.match(wrong.refusals[0], /<path> is \/data\/ch\//);
  assert.match(wrong.refusals[1], /tmp_path .* points into \/var\/lib\/clickhouse-tmp/);
  assert.match(
    judgePreflight({ layout, config: parseConfigPaths(''), mounts: [], tree }).refusals[0],
    /not in its configuration/,
    'no config read: refused, not assumed',
  );
});

test('space: the volume must hold the data plus a margin', () => {
  assert.equal(judgeSpace(1000, { avail: 2000, used: 0 }), undefined);
  assert.match(judgeSpace(1000, { avail: 1000, used: 0 }) ?? '', /1000 bytes for 1000 bytes/);
  assert.equal(judgeSpace(1000, { avail: 100, used: 1000 }), undefined, 'a previous pass already filled it');
  assert.deepEqual(parseDf('Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/vdb1 4096000 1000 4095000 1% /mnt/chops move\n'), {
    size: 4_096_000,
    used: 1000,
    avail: 4_095_000,
    target: '/mnt/chops move',
  });
  assert.throws(() => parseDf('df: /x: No such file'), /unexpected df output/);
});

const FSTAB = `# /etc/fstab
UUID=1111 / ext4 errors=remount-ro 0 1
UUID=2222-aaaa /var/lib/clickhouse ext4 defaults,noatime 0 2
`;

test('fstab: the data dir entry, mount arguments for the staging point, disarm/arm round trip', () => {
  const e = fstabEntryFor(parseFstab(FSTAB), '/var/lib/clickhouse/')!;
  assert.equal(e.source, 'UUID=2222-aaaa');
  assert.deepEqual(mountArgs(e), ['-t', 'ext4', '-o', 'noatime', '--', 'UUID=2222-aaaa']);
  assert.deepEqual(mountArgs({ source: '/mnt/d/vol', fstype: 'none', options: 'bind' }), ['-o', 'bind', '--', '/mnt/d/vol']);
  const off = setArmed(FSTAB, '/var/lib/clickhouse', false);
  assert.ok(off.changed);
  assert.match(off.text, /^#chops-move-data-pending# UUID=2222-aaaa/m);
  assert.ok(off.text.includes('UUID=1111 / ext4'), 'other lines untouched');
  const parsedOff = fstabEntryFor(parseFstab(off.text), '/var/lib/clickhouse')!;
  assert.equal(parsedOff.disarmed, true);
  assert.equal(setArmed(off.text, '/var/lib/clickhouse', false).changed, false, 'idempotent');
  const on = setArmed(off.text, '/var/lib/clickhouse', true);
  assert.equal(on.text, FSTAB);
});

test('where a replica stands, from the situation probe', () => {
  const s = (d: string, o: string) => parseSituation(`data ${d}\nold ${o}\nstaging exists=1 dir=1 mount=1 volume=1 entries=12 owner=root:root\n`);
  const before = s('exists=1 dir=1 mount=0 volume=0 entries=14 owner=clickhouse:clickhouse', 'exists=0');
  assert.equal(phaseOf(before).phase, 'before');
  assert.equal(before.staging.entries, 12);
  assert.equal(phaseOf(s('exists=0', 'exists=1 dir=1 mount=0 volume=0 entries=14 owner=clickhouse:clickhouse')).phase, 'set-aside');
  assert.equal(
    phaseOf(s('exists=1 dir=1 mount=0 volume=0 entries=0 owner=clickhouse:clickhouse', 'exists=1 dir=1 mount=0 volume=0 entries=14 owner=c:c')).phase,
    'set-aside',
  );
  assert.equal(
    phaseOf(s('exists=1 dir=1 mount=1 volume=1 entries=14 owner=clickhouse:clickhouse', 'exists=1 dir=1 mount=0 volume=0 entries=14 owner=c:c')).phase,
    'swapped',
  );
  assert.equal(
    phaseOf(s('exists=1 dir=1 mount=0 volume=0 entries=3 owner=c:c', 'exists=1 dir=1 mount=0 volume=0 entries=14 owner=c:c')).phase,
    'inconsistent',
    'data in both places: no guessing',
  );
  assert.throws(() => parseSituation('data exists=0\n'), /no "old" line/);
});

test('backup precondition: a fresh good backup on one replica passes its shard; nothing known never passes', () => {
  // the newest good backup as facts/backup/status.ts reads it (the agent's status + the node's clock)
  const diff = { type: 'diff' as const, name: 'diff-7', finished: '2026-12-01T10:00:00Z', ageSeconds: 2 * 3600 };
  assert.equal(
    judgeShardBackups(
      [
        { host: 'ch1', newest: diff },
        { host: 'ch2', error: 'no backup agent installed (chops backup install)' },
      ],
      36 * 3600_000,
    ).ok,
    true,
  );
  const old = judgeShardBackups([{ host: 'ch1', newest: diff }], 3600_000);
  assert.equal(old.ok, false, 'older than the limit');
  assert.match(old.detail, /ch1: newest good backup diff-7 is 2 h 0 min old/);
  const none = judgeShardBackups(
    [
      { host: 'ch1', error: 'the agent has written no status yet' },
      { host: 'ch2', newest: undefined },
    ],
    36 * 3600_000,
  );
  assert.equal(none.ok, false);
  assert.match(none.detail, /ch1: the agent has written no status yet; ch2: no good backup/);
});

test('verification: non-replicated counts must be equal, replicated must not shrink, tables must not vanish', () => {
  const before = [
    { table: 'lab.local', engine: 'MergeTree', replicated: false, rows: 10 },
    { table: 'lab.events_local', engine: 'ReplicatedMergeTree', replicated: true, rows: 100 },
    { table: 'lab.events', engine: 'Distributed', replicated: false, rows: -1 },
  ];
  assert.deepEqual(compareWithBefore(before, [...before.slice(0, 1), { ...before[1], rows: 130 }, before[2]]), []);
  assert.deepEqual(
    compareWithBefore(before, [
      { ...before[0], rows: 9 },
      { ...before[1], rows: 99 },
    ]),
    ['lab.local: 9 rows, 10 before the stop', 'lab.events_local: 99 rows, fewer than the 100 before the stop', 'lab.events (Distributed) is gone'],
  );
});

test("data-directory facts (host.fact): a parse error names the host and the fact; the move's deadlines", () => {
  const host = { name: 'ch1' } as Host;
  const layout = { dataDir: '/var/lib/clickhouse', oldDir: '/var/lib/clickhouse.old', staging: '/mnt/new data' };
  assert.match(situation.command(layout, host), /st \/var\/lib\/clickhouse data; st \/var\/lib\/clickhouse\.old old; st '\/mnt\/new data' staging/);
  const line = 'exists=1 dir=1 mount=0 volume=0 entries=3 owner=clickhouse:clickhouse';
  const out = { stdout: `data ${line}\nold exists=0\nstaging exists=0\n`, stderr: '', code: 0 };
  assert.deepEqual(situation.parse(out, layout, host), parseSituation(out.stdout));
  assert.throws(
    () => situation.parse({ stdout: 'old exists=0\n', stderr: '', code: 0 }, layout, host),
    /^ChopsError: ch1: fact "data directory situation": no "data" line/,
  );
  assert.throws(
    () => mounts.parse({ stdout: '', stderr: 'findmnt: boom\n', code: 1 }, undefined, host),
    /^ChopsError: ch1: fact "mounts": findmnt failed \(exit 1\): findmnt: boom$/,
  );
  assert.throws(() => space.parse({ stdout: 'garbage', stderr: '', code: 0 }, '/mnt', host), /ch1: fact "free space": unexpected df output/);
  assert.deepEqual(
    [situation, mounts, space, configPaths, treeStats].map((f) => f.timeoutMs),
    [30_000, 120_000, 120_000, 120_000, 3600_000],
  );
});
