// Loading inventory.yml: read, parse with positions, check against the schema, build the topology.
// Every problem in the file is reported at once as an InventoryError (exit code 2); nothing connects.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { UsageError } from '../errors.js';
import { buildTopology, type RawInventory } from './build.js';
import { buildBackupSettings } from './backup-schema.js';
import { InventoryError, type Problem } from './problems.js';
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
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new UsageError(`cannot read inventory ${path}: ${reason}`, { cause: err });
  }
  return parseBytes(bytes, path, opts);
}

/** Validates inventory text; `path` is used for messages and Inventory.path. Reads nothing. */
export function parseInventory(text: string, path: string, opts: LoadOptions = {}): Inventory {
  return parseBytes(Buffer.from(text, 'utf8'), path, opts);
}

function parseBytes(bytes: Buffer, path: string, opts: LoadOptions): Inventory {
  const env = opts.env ?? process.env;
  const ctx = { home: env.HOME || homedir() };
  const text = bytes.toString('utf8');
  const lines = new LineCounter();
  // uniqueKeys off: the walker reports duplicates itself, naming both positions.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false, merge: true });
  if (doc.errors.length > 0) {
    // A document that did not parse gives no reliable structure to check further.
    throw new InventoryError(path, doc.errors.map((e): Problem => ({
      key: '',
      at: lines.linePos(e.pos[0]),
      message:
        e.code === 'MULTIPLE_DOCS'
          ? 'YAML syntax error: more than one document (an inventory is a single document: remove the extra `---`)'
          : `YAML syntax error: ${e.message.split('\n')[0]}`,
    })));
  }
  const walker = new SchemaWalker(doc, text, lines, ctx);
  for (const w of doc.warnings) walker.add('', lines.linePos(w.pos[0]), `YAML: ${w.message.split('\n')[0]}`);
  const raw = (walker.walk(doc.contents, inventorySchema, '', { line: 1, col: 1 }) ?? {}) as RawInventory;
  const topology = buildTopology(raw, walker, path, ctx);
  const backup = buildBackupSettings((raw as { backup?: Record<string, unknown> }).backup, walker, path, topology.hosts);
  if (walker.problems.length > 0) throw new InventoryError(path, walker.problems);
  return {
    path: resolve(path),
    hash: createHash('sha256').update(bytes).digest('hex'),
    ...topology,
    ...(backup ? { backup } : {}),
  };
}

/** The hosts named by `--limit h1,h2` (all hosts without it), in inventory order. */
export function limitHosts(inv: Inventory, limit: string | undefined): Host[] {
  if (limit === undefined) return inv.hosts;
  const wanted = new Set(limit.split(',').map((s) => s.trim()).filter(Boolean));
  const valid = inv.hosts.map((h) => h.name).join(', ');
  // An empty --limit is usually an unset shell variable; running on everything would be the wrong guess.
  if (wanted.size === 0) throw new UsageError('--limit names no hosts', { hint: `valid host names: ${valid}` });
  const unknown = [...wanted].filter((name) => !inv.hosts.some((h) => h.name === name));
  if (unknown.length > 0) {
    const names = unknown.map((n) => JSON.stringify(n)).join(', ');
    throw new UsageError(`--limit: unknown host${unknown.length > 1 ? 's' : ''} ${names}; valid host names: ${valid}`);
  }
  return inv.hosts.filter((h) => wanted.has(h.name));
}
