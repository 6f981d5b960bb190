// Loading inventory.yml: read, parse with positions, check against the schema, build the topology.
// Every problem in the file is reported at once as an InventoryError (exit code 2); nothing connects.

import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { UsageError } from '../errors.js';
import { buildTopology, type RawInventory } from './build.js';
import { buildBackupSettings } from './backup-schema.js';
import { buildConfigSettings } from './config-schema.js';
import { InventoryError, type Problem, type SourcePos } from './problems.js';
import { MAX_BYTES, MAX_DEPTH, MAX_NODES, expansionProblem, invalidUtf8, readInventoryFile, resolveAliases, scanLayout } from './limits.js';
import { printable, show } from './values.js';
import { cacheKey, cacheSlot, readCached, writeCached } from './parse-cache.js';
import { inventorySchema } from './schema.js';
import type { Host, Inventory } from './types.js';
import { SchemaWalker } from './validate.js';

export { InventoryError, type Problem } from './problems.js';
export { describeTopology } from './topology.js';

export interface LoadOptions {
  /** Environment for `~` ($HOME); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Reads and validates an inventory file. Throws UsageError (InventoryError for content problems). */
export async function loadInventory(path: string, opts: LoadOptions = {}): Promise<Inventory> {
  const bytes = await readInventoryFile(path);
  const slot = cacheSlot();
  if (!slot) return parseBytes(bytes, path, opts);
  // An unchanged file parsed by this build before (see parse-cache.ts): the same result, ~30 ms sooner.
  const hash = sha256(bytes);
  const key = cacheKey(hash, path, homeOf(opts), slot.build);
  const kept = readCached(slot, key, hash, path);
  if (kept) return kept;
  const inv = parseBytes(bytes, path, opts, hash);
  writeCached(slot, key, inv);
  return inv;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const homeOf = (opts: LoadOptions) => (opts.env ?? process.env).HOME || homedir();

/** Validates inventory text; `path` is used for messages and Inventory.path. Reads nothing. */
export function parseInventory(text: string | Buffer, path: string, opts: LoadOptions = {}): Inventory {
  return parseBytes(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, path, opts);
}

function parseBytes(bytes: Buffer, path: string, opts: LoadOptions, hash?: string): Inventory {
  const ctx = { home: homeOf(opts) };
  const refuse = (at: SourcePos, message: string, hint?: string) => new InventoryError(path, [{ key: '', at, message, ...(hint ? { hint } : {}) }]);
  if (bytes.length > MAX_BYTES)
    throw refuse({ line: 1, col: 1 }, `the file is ${bytes.length} bytes; the limit is ${MAX_BYTES} bytes (16 MiB)`, 'split the inventory per cluster');
  // Decoding would silently turn bad bytes into U+FFFD: a data_dir would then name another path.
  const bad = invalidUtf8(bytes);
  if (bad) throw refuse(bad.at, `byte 0x${bytes[bad.offset].toString(16).padStart(2, '0')} at offset ${bad.offset} is not UTF-8`, 'save the file as UTF-8');
  const text = bytes.toString('utf8');
  // The YAML parser recurses per level: refuse deep nesting before it runs.
  const layout = scanLayout(text);
  if (layout.deep) throw refuse(layout.deep, `nested more than ${MAX_DEPTH} levels deep`, 'an inventory needs about 8 levels; flatten the structure');
  if (layout.crowded) throw refuse(layout.crowded, `more than ${MAX_NODES} YAML nodes (keys, values, list items) by here`, 'split the inventory per cluster');
  const lines = new LineCounter();
  let doc;
  try {
    // uniqueKeys off: the walker reports duplicates itself, naming both positions.
    doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false, merge: true });
  } catch (err) {
    if (err instanceof RangeError) throw refuse({ line: 1, col: 1 }, `nested too deeply to parse (limit: ${MAX_DEPTH} levels)`);
    throw err;
  }
  if (doc.errors.length > 0) {
    // A document that did not parse gives no reliable structure to check further.
    throw new InventoryError(
      path,
      doc.errors.map(
        (e): Problem => ({
          key: '',
          at: lines.linePos(e.pos[0]),
          message:
            e.code === 'MULTIPLE_DOCS'
              ? 'YAML syntax error: more than one document (an inventory is a single document: remove the extra `---`)'
              : `YAML syntax error: ${printable(e.message.split('\n')[0], { oneLine: true })}`,
        }),
      ),
    );
  }
  // Without a `*` there is no alias: the layout count above already bounds the nodes.
  const aliases = text.includes('*') ? resolveAliases(doc) : new Map();
  const expansion = aliases.size > 0 ? expansionProblem(doc, aliases, lines) : undefined;
  if (expansion) throw new InventoryError(path, [expansion]);
  const walker = new SchemaWalker(doc, text, lines, ctx, aliases);
  for (const w of doc.warnings) walker.add('', lines.linePos(w.pos[0]), `YAML: ${printable(w.message.split('\n')[0], { oneLine: true })}`);
  const raw = (walker.walk(doc.contents, inventorySchema, '', { line: 1, col: 1 }) ?? {}) as RawInventory;
  const topology = buildTopology(raw, walker, path, ctx);
  const backup = buildBackupSettings((raw as { backup?: Record<string, unknown> }).backup, walker, path, topology.hosts);
  const config = buildConfigSettings((raw as { config?: Record<string, unknown> }).config, walker, path);
  if (walker.problems.length > 0) throw new InventoryError(path, walker.problems);
  return {
    path: resolve(path),
    hash: hash ?? sha256(bytes),
    ...topology,
    ...(backup ? { backup } : {}),
    ...(config ? { config } : {}),
  };
}

/** The hosts named by `--limit h1,h2` (all hosts without it), in inventory order. */
export function limitHosts(inv: Inventory, limit: string | undefined): Host[] {
  if (limit === undefined) return inv.hosts;
  const wanted = new Set(
    limit
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const valid =
    inv.hosts
      .slice(0, 20)
      .map((h) => h.name)
      .join(', ') + (inv.hosts.length > 20 ? `, ... (${inv.hosts.length} hosts: see \`chops inventory check\`)` : '');
  // An empty --limit is usually an unset shell variable; running on everything would be the wrong guess.
  if (wanted.size === 0) throw new UsageError('--limit names no hosts', { hint: `valid host names: ${valid}` });
  const known = new Set(inv.hosts.map((h) => h.name));
  const unknown = [...wanted].filter((name) => !known.has(name));
  if (unknown.length > 0) {
    const names =
      unknown
        .slice(0, 10)
        .map((n) => show(n))
        .join(', ') + (unknown.length > 10 ? ` and ${unknown.length - 10} more` : '');
    throw new UsageError(`--limit: unknown host${unknown.length > 1 ? 's' : ''} ${names}; valid host names: ${valid}`);
  }
  return inv.hosts.filter((h) => wanted.has(h.name));
}
