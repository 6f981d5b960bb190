// A unified diff of two small text files (config fragments: tens to hundreds of lines), for
// `chops plan config-push`. Line-based LCS with 3 lines of context; every line of the result goes
// through the run's redactor, so a password in users.d shows as *** on both sides.
import { redactor } from '../../src/secrets.js';

/** Above this many line pairs the LCS table is not built: the diff says "replaced" instead. */
const MAX_CELLS = 4_000_000;
const CONTEXT = 3;

type Op = { kind: ' ' | '-' | '+'; line: string; a: number; b: number };

function ops(a: string[], b: string[]): Op[] | undefined {
  if ((a.length + 1) * (b.length + 1) > MAX_CELLS) return undefined;
  const w = b.length + 1;
  const t = new Uint32Array((a.length + 1) * w);
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--) t[i * w + j] = a[i] === b[j] ? t[(i + 1) * w + j + 1] + 1 : Math.max(t[(i + 1) * w + j], t[i * w + j + 1]);
  const out: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) out.push({ kind: ' ', line: a[i++], a: i, b: ++j });
    // Removals before additions on a tie, as diff(1) shows a replaced line.
    else if (i < a.length && (j === b.length || t[(i + 1) * w + j] >= t[i * w + j + 1])) out.push({ kind: '-', line: a[i++], a: i, b: j });
    else out.push({ kind: '+', line: b[j++], a: i, b: j });
  }
  return out;
}

const lines = (s: string): string[] => (s === '' ? [] : s.replace(/\n$/, '').split('\n'));

/**
 * `--- a/PATH` / `+++ b/PATH` and hunks; '' when the texts are equal. OLD undefined = a new file.
 * Redacted line by line.
 */
export function unifiedDiff(path: string, oldText: string | undefined, newText: string): string {
  if (oldText === newText) return '';
  const a = lines(oldText ?? '');
  const b = lines(newText);
  const head = [`--- ${oldText === undefined ? '/dev/null' : `a${path}`}`, `+++ b${path}`];
  const all = ops(a, b);
  if (!all) return redactor.redact([...head, `@@ file replaced: ${a.length} lines → ${b.length} lines (too large to diff) @@`].join('\n'));
  const out = [...head];
  // Hunks: runs of changes with CONTEXT lines around them, merged when they touch.
  const changed = all.map((o, k) => (o.kind === ' ' ? -1 : k)).filter((k) => k >= 0);
  let k = 0;
  while (k < changed.length) {
    let start = Math.max(0, changed[k] - CONTEXT);
    let end = Math.min(all.length - 1, changed[k] + CONTEXT);
    while (k + 1 < changed.length && changed[k + 1] - CONTEXT <= end + 1) end = Math.min(all.length - 1, changed[++k] + CONTEXT);
    k++;
    const hunk = all.slice(start, end + 1);
    const aStart = hunk[0].kind === '+' ? hunk[0].a : hunk[0].a - 1;
    const bStart = hunk[0].kind === '-' ? hunk[0].b : hunk[0].b - 1;
    const aLen = hunk.filter((o) => o.kind !== '+').length;
    const bLen = hunk.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${aLen ? aStart + 1 : aStart},${aLen} +${bLen ? bStart + 1 : bStart},${bLen} @@`);
    for (const o of hunk) out.push(`${o.kind}${o.line}`);
    start = end;
  }
  return out.map((l) => redactor.redact(l)).join('\n');
}
