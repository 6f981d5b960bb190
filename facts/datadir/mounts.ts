// Where things are mounted, what /etc/fstab says for the data directory, and free space: the
// facts a move reads before every change (and a resumed move reads to learn where it stands).
import { sh } from '../../src/quote.js';
import { defineDatadirFact } from './define.js';

export interface Mount {
  target: string;
  source: string;
  fstype: string;
  options: string;
}

/** `findmnt -rn` escapes blanks and backslashes as \xNN. */
const unhex = (s: string) => s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));

export const mounts = defineDatadirFact<Mount[]>({
  name: 'mounts',
  command: () => `findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS`,
  parse: ({ stdout, code, stderr }) => {
    if (code !== 0) throw new Error(`findmnt failed (exit ${code}): ${stderr.trim()}`);
    return parseFindmnt(stdout);
  },
});

export function parseFindmnt(out: string): Mount[] {
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [target, source, fstype, options] = l.split(' ');
      return { target: unhex(target), source: unhex(source ?? ''), fstype: fstype ?? '', options: options ?? '' };
    });
}

export const norm = (p: string) => (p.length > 1 ? p.replace(/\/+$/, '') : p);

/** The mount whose target is exactly DIR (the last one wins: mounts stack). */
export function mountAt(ms: Mount[], dir: string): Mount | undefined {
  return ms.filter((m) => norm(m.target) === norm(dir)).pop();
}

/** Mounts strictly inside DIR. */
export function mountsInside(ms: Mount[], dir: string): Mount[] {
  const d = `${norm(dir)}/`;
  return ms.filter((m) => norm(m.target).startsWith(d));
}

// ------------------------------------------------------------------ /etc/fstab

export interface FstabEntry {
  source: string;
  target: string;
  fstype: string;
  options: string;
  dump: string;
  pass: string;
  /** Line number (1-based) in the file. */
  line: number;
  /** Commented out by chops until the swap (see DISARM_MARK). */
  disarmed: boolean;
}

/**
 * Prefix of an fstab line chops has commented out while the new volume holds only a partial copy:
 * until the swap, a reboot must not mount it over the live data directory (the server would then
 * start on an incomplete copy). The swap re-arms it; a rollback disarms it again.
 */
export const DISARM_MARK = '#chops-move-data-pending# ';

export const fstab = defineDatadirFact<FstabEntry[]>({
  name: 'fstab',
  command: () => `cat /etc/fstab`,
  parse: ({ stdout, code, stderr }) => {
    if (code !== 0) throw new Error(`cannot read /etc/fstab (exit ${code}): ${stderr.trim()}`);
    return parseFstab(stdout);
  },
});

/** fstab's octal escapes (\040 for a blank). */
const unoct = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

export function parseFstab(text: string): FstabEntry[] {
  const out: FstabEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    let l = raw.trim();
    let disarmed = false;
    if (l.startsWith(DISARM_MARK.trim())) {
      disarmed = true;
      l = l.slice(DISARM_MARK.trim().length).trim();
    }
    if (!l || l.startsWith('#')) return;
    const f = l.split(/\s+/);
    if (f.length < 3) return;
    out.push({
      source: unoct(f[0]),
      target: unoct(f[1]),
      fstype: f[2],
      options: f[3] ?? 'defaults',
      dump: f[4] ?? '0',
      pass: f[5] ?? '0',
      line: i + 1,
      disarmed,
    });
  });
  return out;
}

export function fstabEntryFor(entries: FstabEntry[], dir: string): FstabEntry | undefined {
  return entries.filter((e) => norm(e.target) === norm(dir)).pop();
}

/**
 * How to mount an fstab entry somewhere else (the staging point): same source, type and options,
 * minus the options that only make sense at boot. A bind entry stays a bind mount.
 */
export function mountArgs(e: Pick<FstabEntry, 'source' | 'fstype' | 'options'>): string[] {
  const drop = new Set(['defaults', 'auto', 'noauto', 'nofail', 'user', 'nouser', 'users', '_netdev']);
  const opts = e.options.split(',').filter((o) => o && !drop.has(o) && !o.startsWith('x-') && !o.startsWith('comment='));
  const args: string[] = [];
  if (e.fstype && e.fstype !== 'none' && !opts.includes('bind')) args.push('-t', e.fstype);
  if (opts.length) args.push('-o', opts.join(','));
  args.push('--', e.source);
  return args;
}

// ------------------------------------------------------------------ free space

export interface Space {
  target: string;
  size: number;
  avail: number;
  used: number;
}

export const space = defineDatadirFact<Space, string>({
  name: 'free space',
  command: (path) => sh`df -P -B1 -- ${path}`,
  parse: ({ stdout, code, stderr }, path) => {
    if (code !== 0) throw new Error(`df ${path} failed (exit ${code}): ${stderr.trim()}`);
    return parseDf(stdout);
  },
});

export function parseDf(out: string): Space {
  const line = out.trim().split('\n')[1];
  const f = line?.trim().split(/\s+/);
  if (!f || f.length < 6 || !/^\d+$/.test(f[1])) throw new Error(`unexpected df output: ${JSON.stringify(out.slice(0, 200))}`);
  return { size: Number(f[1]), used: Number(f[2]), avail: Number(f[3]), target: f.slice(5).join(' ') };
}
