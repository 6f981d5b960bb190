// A validated inventory kept beside the bundle's V8 code cache (dist/bundle/cache/inventories/), so
// a command on an unchanged inventory skips the YAML parse and the schema walk: the parser's code
// runs cold in every process, ~30 ms of CPU for a 20-host file (bench:fanout), paid by every
// `plan`, `run`, `status` and cron-started backup.
//
// The key covers everything the parse reads: the file's bytes, its path as given and resolved,
// $HOME (for `~`), the chops build and the Node version. A rebuilt bundle also empties the
// directory. An entry is only ever written from a parse that passed, so a refusal is always
// computed afresh, with its positions. Only the built CLI has a place for entries (bin/chops.js
// names it); tests and tsx runs parse every time.
//
// Entries are the writer's own (mode 0600, owner checked on read, in a directory of the same user
// that nobody else can write to; each entry names its key): a file another user could plant or
// rename would otherwise choose the hosts and the service commands a run uses.
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import type { Inventory } from './types.js';

/** Set by bin/chops.js before it runs the bundle. */
const SLOT = Symbol.for('chops.cache');
const FORMAT = 'chops-inventory-cache 1';
/** Entries kept; the oldest written go first. */
export const KEEP_ENTRIES = 32;
/** A bigger entry is not kept (deserialising it would cost about what parsing does). */
const MAX_ENTRY_BYTES = 8 << 20;

export interface CacheSlot {
  /** Directory of the entries. */
  dir: string;
  /** What identifies the bundle's code: a rebuilt one never reads an older build's entries. */
  build: string;
}

/** Where the built CLI keeps entries, or undefined (not the built CLI: parse every time). */
export function cacheSlot(): CacheSlot | undefined {
  const s = (globalThis as Record<symbol, unknown>)[SLOT] as Partial<CacheSlot> | undefined;
  return s && typeof s.dir === 'string' && typeof s.build === 'string' ? { dir: join(s.dir, 'inventories'), build: s.build } : undefined;
}

/** The entry's name: a hash of every input of the parse. */
export function cacheKey(bytesHash: string, path: string, home: string, build: string): string {
  return createHash('sha256')
    .update([FORMAT, build, process.version, path, resolve(path), home, bytesHash].join('\0'))
    .digest('hex');
}

/** The inventory a passed parse of the same inputs produced, or undefined (any doubt: parse). */
export function readCached(slot: CacheSlot, key: string, bytesHash: string, path: string): Inventory | undefined {
  let fd: number | undefined;
  try {
    if (!privateDir(slot.dir)) return undefined;
    fd = openSync(join(slot.dir, `${key}.v8`), constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_ENTRY_BYTES || (st.mode & 0o077) !== 0 || !mine(st.uid)) return undefined;
    const entry = deserialize(readFileSync(fd)) as { key?: unknown; inventory?: Inventory };
    const inv = entry?.inventory;
    // The entry names its own key (an entry renamed onto another key, e.g. another $HOME, is not
    // used), and a torn or foreign one lacks the facts it must carry.
    if (entry?.key !== key || inv?.hash !== bytesHash || inv.path !== resolve(path) || !Array.isArray(inv.hosts) || !Array.isArray(inv.clusters))
      return undefined;
    return inv;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Keep a passed parse. Best effort: a cache that cannot be written only costs the next parse. */
export function writeCached(slot: CacheSlot, key: string, inv: Inventory): void {
  let tmp: string | undefined;
  try {
    const data = serialize({ key, inventory: inv });
    if (data.length > MAX_ENTRY_BYTES) return;
    mkdirSync(dirname(slot.dir), { recursive: true }); // the code cache's directory: its own mode
    try {
      mkdirSync(slot.dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (!privateDir(slot.dir)) return;
    const file = join(slot.dir, `${key}.v8`);
    tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, file); // concurrent writers: one whole entry wins
    tmp = undefined;
    prune(slot.dir);
  } catch {
    /* read-only install, full disk */
    if (tmp) rmSync(tmp, { force: true });
  }
}

const mine = (uid: number) => typeof process.getuid !== 'function' || uid === process.getuid();

/** DIR is a real directory of this user that nobody else may write to (not a symlink to one). */
function privateDir(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && mine(st.uid) && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function prune(dir: string): void {
  const all = readdirSync(dir);
  // A writer killed between its write and its rename leaves a temporary file: gone after an hour.
  for (const n of all.filter((x) => x.endsWith('.tmp'))) {
    try {
      if (Date.now() - statSync(join(dir, n)).mtimeMs > 3600_000) unlinkSync(join(dir, n));
    } catch {
      /* another run removed it */
    }
  }
  const names = all.filter((n) => n.endsWith('.v8'));
  if (names.length <= KEEP_ENTRIES) return;
  const aged = names
    .map((n) => {
      try {
        return { n, t: statSync(join(dir, n)).mtimeMs };
      } catch {
        return { n, t: 0 };
      }
    })
    .sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, names.length - KEEP_ENTRIES)) {
    try {
      unlinkSync(join(dir, n));
    } catch {
      /* another run pruned it */
    }
  }
}
