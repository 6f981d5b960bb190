// The validated-inventory cache (src/inventory/parse-cache.ts): the built CLI's slot is set here by
// hand, on a private directory. A hit gives exactly what the parse gave (shared host objects
// included); every input of the parse is in the key; any doubt about an entry means a parse.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import { InventoryError, loadInventory } from '../../src/inventory/load.js';
import { KEEP_ENTRIES, cacheSlot } from '../../src/inventory/parse-cache.js';
import type { Inventory } from '../../src/inventory/types.js';

const SLOT = Symbol.for('chops.cache');
const example = join(fileURLToPath(new URL('../../', import.meta.url)), 'inventory.yml');
const env = { HOME: '/home/op' };
let dir: string;
let cache: string;
let inv: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'chops-invcache-'));
  cache = join(dir, 'cache');
  inv = join(dir, 'inventory.yml');
});
afterEach(() => {
  delete (globalThis as Record<symbol, unknown>)[SLOT];
  rmSync(cache, { recursive: true, force: true });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const useCache = (build = 'b1') => {
  (globalThis as Record<symbol, unknown>)[SLOT] = { dir: cache, build };
};
const entries = () => {
  try {
    return readdirSync(join(cache, 'inventories')).filter((n) => n.endsWith('.v8'));
  } catch {
    return [];
  }
};
const entryFile = () => {
  const [one, ...more] = entries();
  assert.ok(one && more.length === 0, `one entry (${entries().join(', ')})`);
  return join(cache, 'inventories', one);
};
/** Replace the entry with the same inventory but another state dir: a later hit shows it. */
const mark = (stateDir: string) => {
  const f = entryFile();
  const kept = deserialize(readFileSync(f)) as { key: string; inventory: Inventory };
  writeFileSync(f, serialize({ key: kept.key, inventory: { ...kept.inventory, stateDir } }), { mode: 0o600 });
};

test('outside the built CLI nothing is kept: every load parses', async () => {
  assert.equal(cacheSlot(), undefined);
  writeFileSync(inv, readFileSync(example));
  await loadInventory(inv, { env });
  assert.deepEqual(entries(), []);
});

test('a passed parse is kept (0600 in a 0700 directory); the next load of the same file is that result', async () => {
  useCache();
  writeFileSync(inv, readFileSync(example));
  const parsed = await loadInventory(inv, { env });
  const f = entryFile();
  assert.equal(statSync(f).mode & 0o777, 0o600);
  assert.equal(statSync(join(cache, 'inventories')).mode & 0o777, 0o700);
  const kept = await loadInventory(inv, { env });
  assert.deepEqual(kept, parsed);
  // The topology's hosts are the hosts list's objects, as after a parse.
  assert.equal(kept.clusters[0].shards[1].replicas[0], kept.hosts[2]);
  mark('/from/the/cache');
  assert.equal((await loadInventory(inv, { env })).stateDir, '/from/the/cache', 'a hit reads the entry, not the YAML');
});

test('every input of the parse is in the key: the bytes, $HOME, the path, the build', async () => {
  useCache();
  writeFileSync(inv, readFileSync(example));
  await loadInventory(inv, { env });
  mark('/from/the/cache');
  assert.notEqual((await loadInventory(inv, { env: { HOME: '/home/other' } })).stateDir, '/from/the/cache', 'another $HOME');
  rmSync(cache, { recursive: true });
  const real = (await loadInventory(inv, { env })).stateDir;
  mark('/from/the/cache');
  writeFileSync(inv, `${readFileSync(example, 'utf8')}\n# one more line\n`);
  assert.equal((await loadInventory(inv, { env })).stateDir, real, 'other bytes');
  const copy = join(dir, 'copy.yml');
  writeFileSync(copy, readFileSync(inv));
  assert.equal((await loadInventory(copy, { env })).stateDir, real, 'another path');
  useCache('b2');
  assert.equal((await loadInventory(inv, { env })).stateDir, real, 'another build');
});

test('an entry in doubt is not used: torn, readable by others, owned by someone else, or for other bytes', async () => {
  useCache();
  writeFileSync(inv, readFileSync(example));
  const real = (await loadInventory(inv, { env })).stateDir;
  const f = entryFile();
  const good = readFileSync(f);
  writeFileSync(f, good.subarray(0, good.length >> 1));
  assert.equal((await loadInventory(inv, { env })).stateDir, real, 'torn');
  mark('/planted');
  chmodSync(f, 0o644);
  assert.equal((await loadInventory(inv, { env })).stateDir, real, 'mode 0644');
  mark('/planted');
  if (process.getuid?.() === 0) {
    chownSync(f, 4321, 4321);
    assert.equal((await loadInventory(inv, { env })).stateDir, real, 'another owner');
  }
  const kept = deserialize(good) as { key: string; inventory: Inventory };
  writeFileSync(f, serialize({ key: kept.key, inventory: { ...kept.inventory, hash: '0'.repeat(64), stateDir: '/planted' } }), { mode: 0o600 });
  assert.equal((await loadInventory(inv, { env })).stateDir, real, 'an entry for other bytes');
  // An entry renamed onto another key (the same file under another $HOME) names its own key.
  rmSync(cache, { recursive: true });
  await loadInventory(inv, { env: { HOME: '/home/other' } });
  mark('/planted');
  const other = readFileSync(entryFile());
  rmSync(cache, { recursive: true });
  await loadInventory(inv, { env });
  const mineFile = entryFile();
  writeFileSync(mineFile, other, { mode: 0o600 });
  assert.equal((await loadInventory(inv, { env })).stateDir, real, 'an entry renamed onto this key');
  // A directory others may write to, or a symlink to one, is not trusted.
  mark('/planted');
  chmodSync(join(cache, 'inventories'), 0o777);
  assert.equal((await loadInventory(inv, { env })).stateDir, real, 'a directory others may write to');
});

test('a refused inventory is never kept: its refusal is computed each time, with its position', async () => {
  useCache();
  writeFileSync(inv, 'version: 1\nclusters: {}\nbogus: 1\n');
  for (let i = 0; i < 2; i++)
    await assert.rejects(loadInventory(inv, { env }), (e: unknown) => e instanceof InventoryError && /inventory\.yml:3:1/.test(e.message));
  assert.deepEqual(entries(), []);
});

test(`at most ${KEEP_ENTRIES} entries: the oldest written go first`, async () => {
  useCache();
  const text = readFileSync(example, 'utf8');
  const written: string[] = [];
  for (let i = 0; i < KEEP_ENTRIES + 3; i++) {
    const had = new Set(entries());
    writeFileSync(inv, `${text}\n# variant ${i}\n`);
    await loadInventory(inv, { env });
    written.push(...entries().filter((n) => !had.has(n)));
    await new Promise((r) => setTimeout(r, 2)); // distinct mtimes
  }
  assert.equal(written.length, KEEP_ENTRIES + 3, 'each variant wrote its own entry');
  assert.deepEqual(entries().sort(), written.slice(3).sort());
});
