// Bytes a directory holds on its own filesystem (du -sxb: apparent sizes, hard links once).
import { ChopsError } from '../../src/errors.js';
import { defineFact } from '../../src/fact.js';
import { sh } from '../../src/quote.js';

export interface DirSize {
  exists: boolean;
  bytes: number;
}

export function parseDu(stdout: string, code: number, stderr: string, dir: string): DirSize {
  if (/^@@absent$/m.test(stdout)) return { exists: false, bytes: 0 };
  const m = /^(\d+)\s/.exec(stdout.trim());
  if (code !== 0 || !m) throw new ChopsError(`du -sxb ${dir} exited ${code}: ${(stderr || stdout).trim().slice(-300)}`);
  return { exists: true, bytes: Number(m[1]) };
}

export const dirSize = defineFact({
  name: 'directory size',
  timeoutMs: 600_000, // a big data directory takes a while to walk
  command: (dir: string) => sh`if [ -e ${dir} ]; then du -sxb -- ${dir}; else echo @@absent; fi`,
  parse: ({ stdout, stderr, code }, dir: string) => parseDu(stdout, code, stderr, dir),
});
