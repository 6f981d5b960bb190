// The copy of move-data on synthetic trees shaped like a modern data directory (Atomic store/
// with absolute and relative symlinks under data/ and metadata/, hard links shared between parts,
// shadow/ and backup/ made of hard links), through the same code and the same rsync commands as
// on a host, on this machine (local transport). Files change while the live passes run.
// No lab: temp dirs only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseInventory } from '../../src/inventory/load.js';
import { makeRunContext, type TestRunContext } from '../support/run-context.js';
import { dryRunDifferences, copyInPlace, endLeftoverCopy, runPass, smallFileDifferences, RUN_DIR } from '../../tasks/datadir/copy.js';
import { compareTrees, treeStats } from '../../facts/datadir/tree.js';
import { converged } from '../../tasks/datadir/rsync-cmd.js';

let dir: string;
let ctx: TestRunContext;
const SRC = () => join(dir, 'clickhouse');
const DST = () => join(dir, 'volume');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chops-move-tree-'));
  const inv = parseInventory(
    `version: 1\nstate: {dir: ${dir}/state}\nclusters:\n  c:\n    shards:\n      - replicas: [{host: local1, connection: local, clickhouse: {data_dir: ${dir}/clickhouse}}]\n`,
    join(dir, 'inventory.yml'),
  );
  ctx = makeRunContext(inv);
});
after(async () => {
  await ctx?.close();
  rmSync(dir, { recursive: true, force: true });
});

const uuid1 = 'a1b2c3d4-0000-4000-8000-000000000001';
const uuid2 = 'a1b2c3d4-0000-4000-8000-000000000002';

/** A data directory as 22.x leaves it (absolute symlinks) with one database in the 23.x style (relative). */
function buildModernTree(root: string): void {
  const w = (p: string, content: string | Buffer) => {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), content);
  };
  const store1 = `store/a1b/${uuid1}`;
  const store2 = `store/a1b/${uuid2}`;
  for (const part of ['all_1_1_0', 'all_2_2_0']) {
    w(`${store1}/${part}/data.bin`, Buffer.alloc(300_000, part));
    w(`${store1}/${part}/data.mrk2`, Buffer.alloc(4096, 1));
    w(`${store1}/${part}/checksums.txt`, `checksums ${part}`);
    w(`${store1}/${part}/count.txt`, '1000');
    w(`${store1}/${part}/columns.txt`, 'columns format version: 1\n1 columns:\n`x` UInt64\n');
  }
  // A mutated part shares its unchanged columns with its source by hard links.
  mkdirSync(join(root, store1, 'all_1_1_0_3'), { recursive: true });
  linkSync(join(root, store1, 'all_1_1_0/data.bin'), join(root, store1, 'all_1_1_0_3/data.bin'));
  w(`${store1}/all_1_1_0_3/checksums.txt`, 'checksums mutated');
  w(`${store1}/mutation_3.txt`, 'format version: 1\ncreate time: 2026-11-30 10:00:00\n');
  w(`${store1}/format_version.txt`, '1');
  w(`${store2}/all_1_1_0/data.bin`, Buffer.alloc(200_000, 'b'));
  w(`${store2}/all_1_1_0/checksums.txt`, 'c2');
  w(`store/4f1/4f1aaaaa-0000-4000-8000-0000000000aa/t1.sql`, "ATTACH TABLE _ UUID '...' (x UInt64) ENGINE = MergeTree ORDER BY x\n");
  w(`store/4f2/4f2aaaaa-0000-4000-8000-0000000000bb/t2.sql`, 'ATTACH TABLE _ (x UInt64) ENGINE = MergeTree ORDER BY x\n');
  // data/ and metadata/: symlinks into store/ (absolute in 20.x–22.x, relative later)
  mkdirSync(join(root, 'data/db1'), { recursive: true });
  mkdirSync(join(root, 'data/db2'), { recursive: true });
  symlinkSync(join(root, store1), join(root, 'data/db1/t1'));
  symlinkSync(`../../${store2}`, join(root, 'data/db2/t2'));
  mkdirSync(join(root, 'metadata'), { recursive: true });
  symlinkSync(join(root, 'store/4f1/4f1aaaaa-0000-4000-8000-0000000000aa'), join(root, 'metadata/db1'));
  symlinkSync('../store/4f2/4f2aaaaa-0000-4000-8000-0000000000bb', join(root, 'metadata/db2'));
  w('metadata/db1.sql', "ATTACH DATABASE _ UUID '4f1aaaaa-0000-4000-8000-0000000000aa' ENGINE = Atomic\n");
  w('metadata/db2.sql', "ATTACH DATABASE _ UUID '4f2aaaaa-0000-4000-8000-0000000000bb' ENGINE = Atomic\n");
  // FREEZE (shadow/) and clickhouse-backup (backup/NAME/shadow/): hard links to the parts
  for (const base of ['shadow/1', 'backup/daily-1/shadow/db1/t1/default']) {
    for (const part of ['all_1_1_0', 'all_2_2_0']) {
      const d = join(root, base, `store/a1b/${uuid1}`, part);
      mkdirSync(d, { recursive: true });
      for (const f of readdirSync(join(root, store1, part))) linkSync(join(root, store1, part, f), join(d, f));
    }
  }
  w('backup/daily-1/metadata.json', '{"backup_name":"daily-1"}');
  w('shadow/increment.txt', '1');
  w('access/users.list', 'x');
  w('access/a0000000-0000-0000-0000-000000000001.sql', 'ATTACH USER u');
  w('status', 'PID: 12345\nStarted at: 2026-11-30 10:00:00\nRevision: 54460\n');
  w('uuid', '11111111-2222-4333-8444-555555555555');
  w('preprocessed_configs/config.xml', '<clickhouse><path>/var/lib/clickhouse/</path></clickhouse>');
  mkdirSync(join(root, 'metadata_dropped'), { recursive: true });
  mkdirSync(join(root, 'flags'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  mkdirSync(join(root, 'user_files'), { recursive: true });
  mkdirSync(join(root, 'format_schemas'), { recursive: true });
}

/** Every path of a tree with its type, link target, link count and size, independently of the code under test. */
function inventoryOf(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const st = lstatSync(p);
      const rel = relative(root, p);
      if (st.isSymbolicLink()) out.set(rel, `link -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(rel, 'dir');
        walk(p);
      } else out.set(rel, `file size=${st.size} nlink=${st.nlink} mode=${st.mode.toString(8)} uid=${st.uid}`);
    }
  };
  walk(root);
  return out;
}

async function duBytes(root: string): Promise<number> {
  const r = await execa('du', ['-s', '-B1', root]);
  return Number(r.stdout.split('\t')[0]);
}

test('two-phase copy of a modern data directory: links as links, hard links kept, same space; changes during the live passes converge', async () => {
  buildModernTree(SRC());
  mkdirSync(DST());
  mkdirSync(join(DST(), 'lost+found')); // a fresh ext4's root-owned lost+found: never deleted, never copied over
  const sc = ctx.stepContext('local1');
  const before = await sc.host.fact(treeStats, SRC());
  assert.equal(before.extraLinks, 1 + 2 * 2 * 5, 'one mutated-part link plus shadow/ and backup/ links of 2 parts × 5 files');

  // A writer that behaves like a running server: new parts appear, merged-away parts vanish,
  // small files are rewritten. It runs during the live passes.
  let stop = false;
  let n = 0;
  const writer = (async () => {
    while (!stop) {
      n++;
      const d = join(SRC(), `store/a1b/${uuid1}/tmp_insert_${n}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'data.bin'), Buffer.alloc(50_000, n % 255));
      rmSync(join(SRC(), `store/a1b/${uuid1}/tmp_insert_${n - 1}`), { recursive: true, force: true });
      writeFileSync(join(SRC(), 'status'), `PID: ${10000 + (n % 9000)}\nStarted at: 2026-11-30 10:00:00\nRevision: 54460\n`);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const deltas: number[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const r = await runPass(sc, 'live', { src: SRC(), dst: DST(), nice: false }, `live pass ${i + 1}`);
      // runPass threw on anything but 0, 24 or a 23 of vanished sources (the writer deletes parts).
      assert.ok([0, 23, 24].includes(r.code), `live pass exit ${r.code}`);
      deltas.push(r.delta);
      if (converged(deltas, { convergedBytes: 200_000, maxPasses: 5 }).done && i >= 1) break;
    }
  } finally {
    stop = true;
    await writer;
  }
  assert.ok(deltas[0] > 800_000, `the first pass copies the tree (${deltas[0]} B)`);
  assert.ok(deltas[deltas.length - 1] < deltas[0] / 4, `later passes copy a small delta (${deltas.join(', ')})`);

  // Server "stopped". A small file rewritten in place, same size, same mtime: size+mtime cannot see it.
  const status = join(SRC(), 'status');
  const st0 = statSync(status);
  await runPass(sc, 'final', { src: SRC(), dst: DST() }, 'final pass');
  writeFileSync(
    status,
    readFileSync(status, 'utf8').replace(/PID: \d/, (m) => `PID: ${(Number(m.slice(-1)) + 1) % 10}`),
  );
  utimesSync(status, st0.atime, statSync(join(DST(), 'status')).mtime);
  assert.deepEqual(await dryRunDifferences(sc.host, SRC(), DST()), [], 'rsync itself sees no difference (same size and mtime)');
  const changed = await smallFileDifferences(sc.host, SRC(), DST(), 64);
  assert.deepEqual(changed, ['./status'], 'the checksum comparison of small files finds it');
  await copyInPlace(sc.host, SRC(), DST(), changed);
  assert.deepEqual(await smallFileDifferences(sc.host, SRC(), DST(), 64), []);

  // The proof the step makes, and an independent look at both trees.
  assert.deepEqual(await dryRunDifferences(sc.host, SRC(), DST()), []);
  const a = await sc.host.fact(treeStats, SRC());
  const b = await sc.host.fact(treeStats, DST());
  assert.deepEqual(compareTrees(a, b), []);
  const ia = inventoryOf(SRC());
  const ib = inventoryOf(DST());
  ib.delete('lost+found');
  assert.deepEqual([...ib].sort(), [...ia].sort(), 'every path: same type, symlink target, link count, size, mode, owner');
  assert.equal(readlinkSync(join(DST(), 'data/db1/t1')), join(SRC(), `store/a1b/${uuid1}`), 'absolute symlink kept as is');
  assert.equal(readlinkSync(join(DST(), 'data/db2/t2')), `../../store/a1b/${uuid2}`, 'relative symlink kept as is');
  assert.ok(lstatSync(join(DST(), 'metadata/db1')).isSymbolicLink(), 'metadata/db1 is a symlink, not a directory (ClickHouse#23213)');
  assert.equal(
    statSync(join(DST(), `shadow/1/store/a1b/${uuid1}/all_1_1_0/data.bin`)).ino,
    statSync(join(DST(), `store/a1b/${uuid1}/all_1_1_0/data.bin`)).ino,
    'shadow/ shares inodes with the part',
  );
  assert.equal(statSync(join(DST(), `store/a1b/${uuid1}/all_1_1_0/data.bin`)).nlink, 4, 'part + mutated part + shadow + backup');
  const duA = await duBytes(SRC());
  const duB = await duBytes(join(DST()));
  const lf = await duBytes(join(DST(), 'lost+found'));
  assert.equal(duB - lf, duA, 'the copy uses the same space (hard links not duplicated)');
  assert.ok(existsSync(join(DST(), 'lost+found')), 'lost+found was left alone by --delete');
});

test('a bare rsync -a (no -H) would have doubled the linked files: the tree facts see it', async () => {
  const plain = join(dir, 'plain');
  await execa('rsync', ['-a', `${SRC()}/`, `${plain}/`]);
  const sc = ctx.stepContext('local1');
  const a = await sc.host.fact(treeStats, SRC());
  const b = await sc.host.fact(treeStats, plain);
  const diff = compareTrees(a, b);
  assert.ok(
    diff.some((d) => d.startsWith('distinct files')),
    diff.join('; '),
  );
  assert.ok(
    diff.some((d) => d.startsWith('hard-link structure')),
    diff.join('; '),
  );
  assert.ok(b.usedBytes > a.usedBytes * 1.5, `without -H the copy needs more space (${b.usedBytes} vs ${a.usedBytes})`);
});

test('a copy left running by a killed runner is ended before the next pass', async () => {
  const sc = ctx.stepContext('local1');
  const big = join(dir, 'big');
  mkdirSync(big);
  writeFileSync(join(big, 'f'), Buffer.alloc(50_000_000, 7));
  // A pass throttled to a crawl, abandoned (as by SIGKILL of the runner): its rsync keeps running.
  const abandoned = runPass(sc, 'live', { src: big, dst: join(dir, 'big-copy'), bwlimit: '100', nice: false }, 'slow pass').catch((e) => e);
  const pidFile = `${RUN_DIR}/rsync.pid`;
  for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
  const pid = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(pid > 0 && existsSync(`/proc/${pid}`), 'rsync is running');
  const note = await endLeftoverCopy(sc.host);
  assert.match(note ?? '', /ending leftover rsync/);
  const gone = !existsSync(`/proc/${pid}`) || /State:\s*Z/.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(gone, 'the leftover rsync is gone');
  const err = await abandoned;
  assert.match(String(err?.message ?? err), /rsync exited (20|143|137)/, 'the abandoned pass saw its rsync killed');
});
