// /etc/fstab as lines: entries are parsed, everything else (comments, blank lines, lines we do not
// understand) is kept byte for byte, so rewriting the file changes only the line we mean to change.
import { ChopsError } from '../../src/errors.js';
import { defineFact } from '../../src/fact.js';
import { sh } from '../../src/quote.js';

export interface FstabEntry {
  spec: string;
  file: string;
  vfstype: string;
  mntops: string;
  freq: string;
  passno: string;
}

export interface FstabLine {
  /** The line exactly as it was read (without its newline). */
  raw: string;
  /** Present when the line is a mount entry (4 to 6 fields, not a comment). */
  entry?: FstabEntry;
}

export interface Fstab {
  lines: FstabLine[];
  /** Did the file end with a newline? (kept when rendering) */
  finalNewline: boolean;
}

/** fstab(5) escapes blanks in fields as octal (\040 = space, \011 = tab). */
export function unescapeField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8)));
}

export function escapeField(s: string): string {
  return s.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export function parseFstab(text: string): Fstab {
  const finalNewline = text.endsWith('\n');
  const body = finalNewline ? text.slice(0, -1) : text;
  const lines: FstabLine[] =
    text === ''
      ? []
      : body.split('\n').map((raw) => {
          const t = raw.trim();
          if (t === '' || t.startsWith('#')) return { raw };
          const f = t.split(/[ \t]+/);
          if (f.length < 4 || f.length > 6) return { raw };
          return { raw, entry: { spec: unescapeField(f[0]), file: unescapeField(f[1]), vfstype: f[2], mntops: f[3], freq: f[4] ?? '0', passno: f[5] ?? '0' } };
        });
  return { lines, finalNewline };
}

export function renderFstab(f: Fstab): string {
  if (f.lines.length === 0) return '';
  return f.lines.map((l) => l.raw).join('\n') + (f.finalNewline ? '\n' : '');
}

export function formatEntry(e: FstabEntry): string {
  return [escapeField(e.spec), escapeField(e.file), e.vfstype, e.mntops, e.freq, e.passno].join(' ');
}

/** Normalise a mount point for comparison: no trailing slash (except "/"). */
function normDir(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** Entries that mount something at DIR. */
export function entriesFor(f: Fstab, dir: string): FstabLine[] {
  return f.lines.filter((l) => l.entry && normDir(l.entry.file) === normDir(dir));
}

/**
 * Make LINE the one entry for its mount point: an identical line is left alone (changed=false);
 * another entry for the same mount point is replaced in place; otherwise the line is appended.
 * Refuses when several entries already mount something there (an operator must decide).
 */
export function upsertEntry(f: Fstab, line: string): { fstab: Fstab; changed: boolean; replaced?: string } {
  const parsed = parseFstab(`${line}\n`).lines[0];
  if (!parsed?.entry) throw new ChopsError(`not an fstab entry: ${line}`);
  const same = entriesFor(f, parsed.entry.file);
  if (same.length > 1) {
    throw new ChopsError(`/etc/fstab has ${same.length} entries for ${parsed.entry.file}: ${same.map((l) => l.raw.trim()).join(' | ')}`, {
      hint: 'remove the extra entries by hand, then run again',
    });
  }
  if (same.length === 1) {
    if (same[0].raw === line) return { fstab: f, changed: false };
    const lines = f.lines.map((l) => (l === same[0] ? parsed : l));
    return { fstab: { ...f, lines }, changed: true, replaced: same[0].raw };
  }
  return { fstab: { lines: [...f.lines, parsed], finalNewline: true }, changed: true };
}

/** The mount options as a list (comma separated). */
export function options(mntops: string): string[] {
  return mntops.split(',').filter(Boolean);
}

export const fstab = defineFact({
  name: 'fstab',
  // Absent file = empty table (a fresh container); any other read error is an error.
  command: (_: void) => sh`if [ -e /etc/fstab ]; then cat /etc/fstab; fi`,
  parse: ({ stdout, stderr, code }) => {
    if (code !== 0) throw new ChopsError(`cannot read /etc/fstab (exit ${code}): ${stderr.trim()}`);
    return { ...parseFstab(stdout), text: stdout };
  },
});
