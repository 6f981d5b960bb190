// `findmnt --verify`: util-linux's own check of an fstab (parse errors, a source that does not
// exist, an unknown filesystem type, a target that is not a directory). We run it on a candidate
// file before installing it and on /etc/fstab before relying on it: a line that would stop the
// host from booting is found now, not at the next reboot.
import { ChopsError } from '../../src/errors.js';
import { defineFact } from '../../src/fact.js';
import { sh } from '../../src/quote.js';

export interface FstabVerdict {
  /** "[E] ..." lines: the table cannot be trusted (exit code non-zero). */
  errors: string[];
  /** "[W] ..." lines: worth showing (e.g. a nofail source that is absent). */
  warnings: string[];
  /** The summary line findmnt ends with ("0 parse errors, 0 errors, 1 warning"). */
  summary: string;
  ok: boolean;
}

/**
 * Pure: findmnt --verify output (stdout+stderr merged) and its exit code → the verdict.
 * findmnt exits non-zero when it found errors (parse errors included); a run that printed no
 * summary line is refused rather than read as "fine" (a gate never passes on missing information).
 */
export function parseFindmntVerify(out: string, code: number): FstabVerdict {
  const lines = out.split('\n').map((l) => l.trimEnd());
  const errors = lines.filter((l) => /^\s*\[E\]/.test(l)).map((l) => l.trim());
  const warnings = lines.filter((l) => /^\s*\[W\]/.test(l)).map((l) => l.trim());
  // util-linux 2.38 ends with "Success, no errors or warnings detected" on a clean table, and
  // prints "N parse errors, N errors, N warnings" first otherwise.
  const clean = lines.some((l) => /^Success, no errors or warnings detected$/.test(l.trim()));
  const summary = clean ? 'no errors or warnings' : lines.find((l) => /\d+ parse errors?, \d+ errors?, \d+ warnings?/.test(l))?.trim();
  if (!summary) {
    throw new ChopsError(`findmnt --verify printed no summary (exit ${code}): ${out.trim().slice(0, 300) || '(nothing)'}`, {
      hint: 'findmnt from util-linux ≥ 2.29 is needed to check /etc/fstab before relying on it',
    });
  }
  const m = /(\d+) parse errors?, (\d+) errors?/.exec(summary);
  const counted = m ? Number(m[1]) + Number(m[2]) : 0;
  if (counted > 0 && errors.length === 0) errors.push(summary);
  return { errors, warnings, summary, ok: code === 0 && counted === 0 && errors.length === 0 };
}

/** Verify FILE (default /etc/fstab). */
export const fstabVerify = defineFact({
  name: 'fstab verification',
  command: (file: string) => sh`findmnt --verify --verbose --tab-file ${file} 2>&1`,
  parse: ({ stdout, code }) => parseFindmntVerify(stdout, code),
});
