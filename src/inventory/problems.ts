// Inventory problems: collected while checking the whole file, then reported together, so the
// operator fixes every mistake in one edit instead of one per run.

import { UsageError } from '../errors.js';
import { printable, show } from './values.js';

export interface SourcePos {
  line: number;
  col: number;
}

export interface Problem {
  at: SourcePos;
  /** Dotted key path, e.g. "clusters.production.shards[0].replicas[1].ssh.port" ("" = the file). */
  key: string;
  message: string;
  /** One line: the next action. */
  hint?: string;
}

/** At most this many problems are printed (all are counted); a generated file can have thousands. */
export const PROBLEMS_SHOWN = 50;

/** One or more problems in an inventory file: exit code 2, nothing connects. */
export class InventoryError extends UsageError {
  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    const sorted = [...problems].sort((a, b) => a.at.line - b.at.line || a.at.col - b.at.col);
    const count = sorted.length === 1 ? '1 problem' : `${sorted.length} problems`;
    const shownFile = printable(file, { oneLine: true });
    const shown = sorted.slice(0, PROBLEMS_SHOWN).map((p) => formatProblem(shownFile, p));
    if (sorted.length > PROBLEMS_SHOWN) shown.push(`... and ${sorted.length - PROBLEMS_SHOWN} more (fix these first, then check again)`);
    super(`inventory ${shownFile}: ${count}\n${shown.join('\n')}`, {
      hint: `fix ${shownFile} and run \`chops inventory check\``,
    });
    this.problems = sorted;
  }
}

export function formatProblem(file: string, p: Problem): string {
  const where = `${file}:${p.at.line}:${p.at.col}`;
  const line = p.key ? `${where}: key '${p.key}': ${p.message}` : `${where}: ${p.message}`;
  return p.hint ? `${line}\n    fix: ${p.hint}` : line;
}

/** Render a value from the file for a message: quoted, escaped (no terminal control codes), short. */
export { show };

/** A key path segment as written in messages: bare when it is a short plain word, quoted and shortened otherwise. */
export function keySegment(key: string): string {
  return /^[A-Za-z0-9_-]{1,60}$/.test(key) ? key : show(key, 40);
}

export function joinKey(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${keySegment(key)}` : keySegment(key);
}

/**
 * The known key an unknown key most likely meant: same word in another spelling
 * (identityFile, identity-file) or within a small edit distance (identiy_file).
 */
export function closestKey(unknown: string, known: string[]): string | undefined {
  // A key this long is no typo of a schema key; the edit distance would cost O(length) for nothing.
  if (unknown.length > 64) return undefined;
  const normalized = unknown
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toLowerCase();
  if (known.includes(normalized)) return normalized;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(normalized, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  // Beyond about a third of the word the "suggestion" is a guess that misleads more than it helps
  // (port -> host).
  return bestDistance <= Math.max(1, Math.floor(normalized.length / 3)) ? best : undefined;
}

/** Edits (insert, delete, substitute, swap two neighbours) turning a into b: typos are mostly these. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
