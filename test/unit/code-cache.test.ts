// bin/chops.js's V8 code cache, on a private copy of the built CLI (the real dist/bundle/cache is
// shared with every other test): written by a command's first run that exits 0, never by one
// that fails, kept while it serves, replaced when V8 rejects it, and retrained by a run that took
// much more CPU than the one that trained it.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
let cache: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'chops-cache-'));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'dist', 'bundle'), { recursive: true });
  for (const f of ['chops.js', 'package.json']) copyFileSync(join(ROOT, 'bin', f), join(dir, 'bin', f));
  copyFileSync(join(ROOT, 'dist', 'bundle', 'chops.cjs'), join(dir, 'dist', 'bundle', 'chops.cjs'));
  cache = join(dir, 'dist', 'bundle', 'cache');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const chops = (...args: string[]) => execa(process.execPath, [join(dir, 'bin', 'chops.js'), ...args], { reject: false, env: { NO_COLOR: '1' } });
const stamp = (f: string) => statSync(join(cache, f)).mtimeMs;

test('a failing first run writes no cache; the first run that exits 0 does, with the CPU it took', async () => {
  const bad = await chops('nosuch-command');
  assert.equal(bad.exitCode, 2, bad.stderr);
  assert.throws(() => statSync(join(cache, 'nosuch-command.v8')));
  const ok = await chops('--help');
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.ok(statSync(join(cache, 'help.v8')).size > 10_000);
  assert.ok(Number(readFileSync(join(cache, 'help.v8.cpu'), 'utf8')) > 0);
});

test('a cache that serves is kept; one trained by a much smaller run is retrained', async () => {
  const before = stamp('help.v8');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await chops('--help')).exitCode, 0);
  assert.equal(stamp('help.v8'), before, 'the same run again does not rewrite it');
  writeFileSync(join(cache, 'help.v8.cpu'), '-1000\n'); // below any run's CPU: as if a trivial run had trained it
  assert.equal((await chops('--help')).exitCode, 0);
  assert.ok(stamp('help.v8') > before, 'retrained');
  assert.ok(Number(readFileSync(join(cache, 'help.v8.cpu'), 'utf8')) > 0);
});

test('a cache V8 rejects (another build) is replaced, and the CLI works meanwhile', async () => {
  writeFileSync(join(cache, 'help.v8'), Buffer.alloc(4096, 7));
  const r = await chops('--help');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /Usage:/);
  assert.notDeepEqual(readFileSync(join(cache, 'help.v8')).subarray(0, 64), Buffer.alloc(64, 7));
});

test('the built CLI keeps a validated inventory beside its code cache; the next command on the same file prints the same', async () => {
  const inv = join(dir, 'inventory.yml');
  copyFileSync(join(ROOT, 'inventory.yml'), inv);
  const first = await chops('inventory', 'check', '-i', inv);
  assert.equal(first.exitCode, 0, first.stderr);
  const kept = readdirSync(join(cache, 'inventories')).filter((n) => n.endsWith('.v8'));
  assert.equal(kept.length, 1);
  assert.equal(statSync(join(cache, 'inventories', kept[0])).mode & 0o777, 0o600);
  const again = await chops('inventory', 'check', '-i', inv);
  assert.equal(again.exitCode, 0, again.stderr);
  assert.equal(again.stdout, first.stdout);
  writeFileSync(inv, 'version: 1\nclusters: {}\nbogus: 1\n');
  const bad = await chops('inventory', 'check', '-i', inv);
  assert.equal(bad.exitCode, 2, 'an edited file is parsed again');
  assert.match(bad.stderr, /inventory\.yml:3:1/);
});
