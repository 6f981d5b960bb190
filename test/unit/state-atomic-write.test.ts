// writeFileAtomic and the sweep of temp files left by dead writers (src/run/state/atomic-write.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { sweepTempFiles, writeFileAtomic } from '../../src/run/state/atomic-write.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'chops-atomic-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

it('writes and replaces a file, mode 600, no temp file left, durable or not', async () => {
  const f = join(dir, 'a.yml');
  await writeFileAtomic(f, 'one\n');
  assert.equal(readFileSync(f, 'utf8'), 'one\n');
  assert.equal(statSync(f).mode & 0o777, 0o600);
  await writeFileAtomic(f, 'two\n', { durable: false });
  assert.equal(readFileSync(f, 'utf8'), 'two\n');
  assert.deepEqual(readdirSync(dir), ['a.yml']);
});

it('a reader never sees a partial file while it is replaced over and over', async () => {
  const f = join(dir, 'b.yml');
  const texts = ['x'.repeat(300_000), 'y'.repeat(200_000)];
  await writeFileAtomic(f, texts[0], { durable: false });
  let stop = false;
  let reads = 0;
  const reader = (async () => {
    while (!stop) {
      const t = readFileSync(f, 'utf8');
      assert.ok(t === texts[0] || t === texts[1], `read ${t.length} bytes: neither version`);
      reads++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  for (let i = 0; i < 40; i++) await writeFileAtomic(f, texts[i % 2], { durable: false });
  stop = true;
  await reader;
  assert.ok(reads > 0);
});

it('a failed write leaves what was there and no temp file', async () => {
  const f = join(dir, 'missing-dir', 'c.yml');
  await assert.rejects(writeFileAtomic(f, 'x'), { code: 'ENOENT' });
  // the target is a non-empty directory: the rename fails after the temp file was written
  const sub = mkdtempSync(join(dir, 'sub-'));
  writeFileSync(join(sub, 'x'), '');
  await assert.rejects(writeFileAtomic(sub, 'x'));
  assert.deepEqual(readdirSync(sub), ['x'], 'the target is as it was');
  assert.deepEqual(
    readdirSync(dir).filter((e) => e.endsWith('.tmp')),
    [],
  );
});

it('sweepTempFiles removes temp files of dead writers only', async () => {
  const f = join(dir, 'state.yml');
  writeFileSync(f, 'x');
  const dead = join(dir, `state.yml.${2 ** 22 + 1}.deadbeef.tmp`); // above pid_max defaults: never alive
  const mine = join(dir, `state.yml.${process.pid}.cafe.tmp`);
  const other = join(dir, `other.yml.${2 ** 22 + 1}.dead.tmp`);
  for (const t of [dead, mine, other]) writeFileSync(t, 'half');
  await sweepTempFiles(f);
  const left = readdirSync(dir);
  assert.ok(!left.includes(`state.yml.${2 ** 22 + 1}.deadbeef.tmp`), "a dead writer's temp file is swept");
  assert.ok(left.includes(`state.yml.${process.pid}.cafe.tmp`), "a live writer's temp file is kept");
  assert.ok(left.includes(`other.yml.${2 ** 22 + 1}.dead.tmp`), "another file's temp files are not touched");
  await sweepTempFiles(join(dir, 'nope', 'state.yml')); // a missing dir is not an error
});
