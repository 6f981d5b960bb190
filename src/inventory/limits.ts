// Bounds on what an inventory may cost before it gets a verdict: the file is read as a regular
// file up to a size cap, must be UTF-8, may nest only so deep, and may expand (aliases included)
// to only so many nodes. Every bound is refused with exit 2 and a position, never a hang, a stack
// overflow or gigabytes of memory. The README states these numbers; keep them in step.

import { isAlias, isMap, isPair, isScalar, isSeq, visit, type Document, type LineCounter, type Node } from 'yaml';
import { UsageError } from '../errors.js';
import { openRegularFile } from '../regular-file.js';
import type { Problem, SourcePos } from './problems.js';
import { printable } from './values.js';

/** 16 MiB: 130 000 replicas written one per line take ~6 MB. */
export const MAX_BYTES = 16 * 1024 * 1024;
/** Nesting levels of maps, lists and flow collections (a real inventory uses about 8). */
export const MAX_DEPTH = 32;
/**
 * YAML nodes (each scalar, key, map and list counts one), as written and after expanding every
 * alias. The YAML parser costs ~10-20 µs and ~1 KB per node here, so this bounds the time and
 * memory before a verdict; 130 000 replicas written one per line are ~650 000 nodes.
 */
export const MAX_NODES = 1_000_000;

/** The file's bytes: a regular file (not a FIFO, device or directory) of at most MAX_BYTES. */
export async function readInventoryFile(path: string): Promise<Buffer> {
  const shown = printable(path, { oneLine: true });
  const f = await openRegularFile(path);
  if (f.notRegular)
    throw new UsageError(`cannot read inventory ${shown}: it is ${f.notRegular}, not a regular file`, { hint: 'pass the inventory file itself with -i FILE' });
  if (!f.ok) {
    const code = f.code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? String(f.error));
    throw new UsageError(`cannot read inventory ${shown}: ${reason}`, { cause: f.error, hint: 'pass the inventory file with -i FILE' });
  }
  const { handle, size } = f;
  try {
    if (size > MAX_BYTES) throw tooBig(shown, size);
    // Read at most one byte past the cap: a file growing while we read cannot exceed it either.
    const buf = Buffer.alloc(Math.min(size, MAX_BYTES) + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) break;
    }
    if (n > MAX_BYTES) throw tooBig(shown, n);
    return buf.subarray(0, n);
  } finally {
    await handle.close();
  }
}

function tooBig(shown: string, size: number): UsageError {
  return new UsageError(`inventory ${shown} is ${size} bytes; the limit is ${MAX_BYTES} bytes (16 MiB)`, { hint: 'split the inventory per cluster' });
}

/** The position of the first byte that is not valid UTF-8 (line, column in characters), if any. */
export function invalidUtf8(bytes: Buffer): { offset: number; at: SourcePos } | undefined {
  // Fast path: most files are valid, and the native decoder says so in one pass.
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return undefined;
  } catch {
    /* find where */
  }
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let valid = len > 0 && i + len <= bytes.length;
    for (let k = 1; valid && k < len; k++) valid = (bytes[i + k] & 0xc0) === 0x80;
    if (valid && len === 3) {
      const c = ((b & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6);
      valid = c >= 0x800 && !(c >= 0xd800 && c <= 0xdfff);
    }
    if (valid && len === 4) {
      const c = ((b & 0x07) << 18) | ((bytes[i + 1] & 0x3f) << 12);
      valid = c >= 0x10000 && c <= 0x10ffff;
    }
    if (!valid) {
      const before = bytes.subarray(0, i).toString('utf8');
      const lineStart = before.lastIndexOf('\n') + 1;
      let line = 1;
      for (let k = 0; k < lineStart; k++) if (before.charCodeAt(k) === 10) line++;
      return { offset: i, at: { line, col: before.length - lineStart + 1 } };
    }
    i += len;
  }
  return undefined;
}

/**
 * From the text's layout alone, before the YAML parser runs (it recurses per level, and costs
 * time and memory per node): where the text first nests deeper than MAX_DEPTH (block levels from
 * indentation and `- ` markers, flow levels from brackets), and where its node count first
 * exceeds MAX_NODES (keys, values, list items and flow items, counted from `:`, `- ` and `,`).
 * Both counts may run above what YAML builds (a list under a key at the same indentation counts a
 * level), never far below, which is what a bound needs.
 */
export function scanLayout(text: string): { deep?: SourcePos; crowded?: SourcePos; nodes: number } {
  const stack: { indent: number; depth: number }[] = [];
  let flow = 0;
  let nodes = 0;
  let blockScalarIndent = -1;
  let lineStart = 0;
  for (let ln = 0; lineStart <= text.length; ln++) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd < 0) lineEnd = text.length;
    const raw = text.slice(lineStart, lineEnd);
    lineStart = lineEnd + 1;
    let indent = 0;
    while (indent < raw.length && raw.charCodeAt(indent) === 32) indent++;
    const body = raw.slice(indent);
    if (blockScalarIndent >= 0) {
      if (body === '' || body === '\r' || indent > blockScalarIndent) continue;
      blockScalarIndent = -1;
    }
    if (body === '' || body === '\r' || body.startsWith('#')) continue;
    let depth: number;
    let col = indent;
    nodes++;
    if (flow > 0) {
      depth = (stack.at(-1)?.depth ?? 0) + flow;
    } else {
      while (stack.length && stack.at(-1)!.indent >= indent) stack.pop();
      depth = (stack.at(-1)?.depth ?? 0) + 1;
      // "- - key:" opens a list level per marker.
      let k = 0;
      while (body[k] === '-' && (body[k + 1] === ' ' || k + 1 === body.length)) {
        depth++;
        nodes++;
        col += 2;
        k += 2;
      }
      stack.push({ indent, depth });
    }
    if (depth > MAX_DEPTH) return { deep: { line: ln + 1, col: col + 1 }, nodes };
    // Flow collections, keys and items on this line (outside quotes).
    let quote = '';
    const base = flow > 0 ? depth - flow : depth;
    for (let k = 0; k < body.length; k++) {
      const c = body[k];
      if (quote) {
        if (c === quote) quote = '';
        continue;
      }
      if (c === '#' && (k === 0 || body[k - 1] === ' ')) break;
      if ((c === '"' || c === "'") && (k === 0 || /[\s,[{:]/.test(body[k - 1]))) quote = c;
      else if (c === '[' || c === '{') {
        flow++;
        nodes++;
        if (base + flow > MAX_DEPTH) return { deep: { line: ln + 1, col: indent + k + 1 }, nodes };
      } else if ((c === ']' || c === '}') && flow > 0) flow--;
      else if (c === ',' && flow > 0) nodes++;
      else if (c === ':' && (k + 1 === body.length || body[k + 1] === ' ' || body[k + 1] === '\r')) nodes++;
      if (nodes > MAX_NODES) return { crowded: { line: ln + 1, col: indent + k + 1 }, nodes };
    }
    if (nodes > MAX_NODES) return { crowded: { line: ln + 1, col: indent + 1 }, nodes };
    if (flow === 0 && /(?:^|[\s:])[|>][-+0-9]*\s*(#.*)?\r?$/.test(body)) blockScalarIndent = indent;
  }
  return { nodes };
}

/** Every alias of DOC with the node it stands for (the last anchor of that name before it). */
export function resolveAliases(doc: Document): Map<Node, Node | undefined> {
  const anchors = new Map<string, Node>();
  const resolved = new Map<Node, Node | undefined>();
  // visit() walks in document order, so "last anchor before the alias" is the one in the map.
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) resolved.set(node, anchors.get(node.source));
      else if (node.anchor) anchors.set(node.anchor, node);
    },
  });
  return resolved;
}

/**
 * The number of nodes DOC expands to with every alias replaced by what it stands for, or a
 * problem when that exceeds MAX_NODES (or an alias contains itself). Linear in the document:
 * the size of every anchored node is computed once.
 */
export function expansionProblem(doc: Document, aliases: Map<Node, Node | undefined>, lines: LineCounter): Problem | undefined {
  const size = new Map<unknown, number>();
  const inProgress = new Set<unknown>();
  const uses = new Map<Node, { count: number; first: Node }>();
  let cycle: Node | undefined;
  const sizeOf = (n: unknown): number => {
    if (n === null || n === undefined) return 0;
    if (isScalar(n)) return 1;
    const known = size.get(n);
    if (known !== undefined) return known;
    if (isAlias(n)) {
      const target = aliases.get(n);
      if (!target) return 1;
      const u = uses.get(target);
      if (u) u.count++;
      else uses.set(target, { count: 1, first: n });
      if (inProgress.has(target)) {
        cycle ??= n;
        return 1;
      }
      return sizeOf(target);
    }
    let total = 1;
    inProgress.add(n);
    if (isMap(n) || isSeq(n)) {
      for (const item of n.items as unknown[]) {
        total += isPair(item) ? sizeOf(item.key) + sizeOf(item.value) : sizeOf(item);
        if (total > MAX_NODES) break;
      }
    }
    inProgress.delete(n);
    size.set(n, total);
    return total;
  };
  let total: number;
  try {
    total = sizeOf(doc.contents);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return {
      key: '',
      at: { line: 1, col: 1 },
      message: `aliases nest too deeply to expand (limit: ${MAX_NODES} nodes, ${MAX_DEPTH} levels)`,
      hint: 'write the values out instead of chaining aliases',
    };
  }
  const posOf = (n: Node) => (n.range ? lines.linePos(n.range[0]) : { line: 1, col: 1 });
  if (cycle) {
    return {
      key: '',
      at: posOf(cycle),
      message: `alias *${(cycle as any).source} refers to the node that contains it`,
      hint: 'an alias must refer to a finished node written before it',
    };
  }
  if (total <= MAX_NODES) return undefined;
  // Name the alias that costs most, where it is first used.
  let worst: { target: Node; count: number; first: Node } | undefined;
  for (const [target, u] of uses) {
    if (!worst || (size.get(target) ?? 0) * u.count > (size.get(worst.target) ?? 0) * worst.count) worst = { target, ...u };
  }
  const why = worst ? `; alias *${(worst.first as any).source} (${size.get(worst.target) ?? '?'} nodes) is used ${worst.count} times` : '';
  return {
    key: '',
    at: worst ? posOf(worst.first) : { line: 1, col: 1 },
    message: `the inventory expands to more than ${MAX_NODES} nodes${why}`,
    hint: 'write fewer or smaller aliases, or split the inventory per cluster',
  };
}
