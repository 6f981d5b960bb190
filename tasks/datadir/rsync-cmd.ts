// The rsync command lines of a data-directory move, and pure parsers of what rsync prints.
// /work/shared/notes/move-data.md, conditions 2–5: ONE rsync over the whole root per pass (hard
// links are matched only inside one transfer), the same flags on every pass, links copied as
// links (never -L), owners kept by number; `--delete` only once the server is stopped; exit 24
// ("some files vanished") is normal only while the server still writes.
import { sh, raw } from '../../src/quote.js';

/** -a (perms, times, owners, symlinks as symlinks, devices), -H hard links, -A ACLs, -X xattrs. */
export const RSYNC_FLAGS = ['-aHAX', '--numeric-ids', '--no-inc-recursive'] as const;

/**
 * lost+found of a fresh ext4 is root-owned and not ours: excluded from the transfer, so `--delete`
 * never fights over it (an excluded path is also protected from deletion). Condition 6. The same
 * for the volume's marker (situation.ts VOLUME_MARK), which exists only on the new volume.
 */
export const RSYNC_EXCLUDES = ['--exclude=/lost+found', '--exclude=/.chops-new-volume'] as const;

export type PassKind = 'live' | 'final' | 'verify';

export interface PassOptions {
  src: string;
  dst: string;
  kind: PassKind;
  /** rsync --bwlimit value (e.g. "50m", KiB/s when a bare number); live passes only. */
  bwlimit?: string;
}

/** `/path` → `/path/`: copy the directory's contents, not the directory into itself. */
export const slash = (p: string) => (p.endsWith('/') ? p : `${p}/`);

/**
 * The argument vector of one pass. live: throttled, no delete; final: `--delete` with the server
 * stopped (never throttled: that is downtime); verify: the dry run that must list nothing.
 */
export function rsyncArgs(o: PassOptions): string[] {
  const args: string[] = [...RSYNC_FLAGS, ...RSYNC_EXCLUDES];
  if (o.kind === 'live' && o.bwlimit) args.push(`--bwlimit=${o.bwlimit}`);
  if (o.kind !== 'live') args.push('--delete');
  if (o.kind === 'verify') args.push('--dry-run', '--itemize-changes', '--out-format=%i %n%L');
  else args.push('--stats', '--info=progress2');
  args.push('--', slash(o.src), slash(o.dst));
  return args;
}

/**
 * Whether a pass ended successfully. 0 always; while the server runs (live), also 24 (files
 * vanished) and a 23 whose every error is a source file that vanished: rsync reports a part
 * directory merged away between its listing and the read of its ACL or xattrs (-A, -X) as an
 * error ("[sender] get_acl: sys_acl_get_file(...): No such file or directory (2)"), not as
 * vanished. The verdict is the host's count over the whole of rsync's stderr (the pass prints
 * only its tail), never a guess from the tail. The stopped pass copies from a tree nothing
 * writes: any error there fails it.
 */
export function passSucceeded(kind: PassKind, code: number, stderr = ''): boolean {
  if (code === 0) return true;
  if (kind !== 'live') return false;
  if (code === 24) return true;
  if (code !== 23) return false;
  const v = stderrVerdict(stderr);
  return v !== undefined && v.vanished > 0 && v.other === 0;
}

// POSIX EREs (grep -E on the host; the same text is a JS RegExp in the tests). A vanished source:
// rsync's own "file has vanished", or ENOENT where the sender reads a file's ACL or xattrs — only
// with the [sender] tag (rsync >= 3.2): rsync 3.1 tags no line, and there the generator and the
// receiver read the destination's ACLs and xattrs with the same words.
export const VANISHED_ERE = String.raw`^(file has vanished: .*|rsync: \[sender\] (get_acl|get_xattr[a-z_]*|rsync_xal_get): .*: No such file or directory \(2\))$`;
/** rsync's own summary lines of such a pass (not errors by themselves). */
export const SUMMARY_ERE = String.raw`^(rsync warning: some files vanished before they could be transferred .*|rsync error: some files/attrs were not transferred \(see previous errors\) \(code 23\) .*)$`;
const VERDICT_TAG = 'chops-rsync-stderr:';
const VERDICT = new RegExp(`^${VERDICT_TAG} vanished=(\\d+) other=(\\d+)$`, 'm');

/** The host's count of rsync's stderr lines: vanished sources and anything else (empty lines aside). */
export function stderrVerdictScript(errFile: string): string {
  return sh`v=$(grep -caE ${VANISHED_ERE} ${errFile}); o=$(grep -cavE ${`${VANISHED_ERE}|${SUMMARY_ERE}|^$`} ${errFile}); printf '%s vanished=%s other=%s\n' ${VERDICT_TAG} "\${v:-0}" "\${o:-0}" >&2`;
}

/** The verdict line the pass printed last on stderr, or undefined (none: nothing proven). */
export function stderrVerdict(stderr: string): { vanished: number; other: number } | undefined {
  const m = VERDICT.exec(stderr);
  return m ? { vanished: Number(m[1]), other: Number(m[2]) } : undefined;
}

/** rsync's stderr as the operator reads it: without the verdict line. */
export function rsyncStderr(stderr: string): string {
  return stderr.replace(new RegExp(`^${VERDICT_TAG} .*\\n?`, 'm'), '');
}

export function rsyncExitMeaning(code: number): string {
  const m: Record<number, string> = {
    1: 'syntax or usage error',
    2: 'protocol incompatibility',
    3: 'errors selecting input/output files, dirs',
    5: 'error starting client-server protocol',
    10: 'error in socket I/O',
    11: 'error in file I/O (target full?)',
    12: 'error in rsync protocol data stream',
    13: 'errors with program diagnostics',
    20: 'received SIGUSR1 or SIGINT (killed)',
    23: 'partial transfer due to error',
    24: 'partial transfer due to vanished source files',
    25: 'the --max-delete limit stopped deletions',
    30: 'timeout in data send/receive',
    35: 'timeout waiting for daemon connection',
    124: 'killed by the step timeout',
    127: 'rsync not found on the host (install rsync)',
    137: 'killed (SIGKILL)',
    143: 'killed (SIGTERM)',
  };
  return m[code] ?? 'unknown rsync exit code';
}

// ------------------------------------------------------------------ a pass on the host

export interface PassFiles {
  /** Where the pass's pid (= process group, via setsid) is kept while it runs. */
  pidFile: string;
  /** rsync's stdout (progress + --stats), polled for progress. */
  log: string;
  err: string;
}

export function passFiles(runDir: string): PassFiles {
  return { pidFile: `${runDir}/rsync.pid`, log: `${runDir}/rsync.out`, err: `${runDir}/rsync.err` };
}

/**
 * The shell script of one pass. rsync runs in its own session (setsid: pid = process group) with
 * its pid on disk, so a later run can find and end a copy left behind by a killed runner before
 * it starts another one (two rsyncs into one target would race). The script prints rsync's
 * stats (progress lines carriage-returned into lines) and exits with rsync's code.
 */
export function passScript(o: PassOptions, f: PassFiles, nice: boolean): string {
  const prefix = nice && o.kind === 'live' ? 'ionice -c2 -n7 nice -n10 ' : '';
  return [
    sh`mkdir -p -- $(dirname -- ${f.pidFile}) && : > ${f.log} && : > ${f.err} || exit 1`,
    sh`${raw(prefix)}setsid rsync ${rsyncArgs(o)} > ${f.log} 2> ${f.err} &`,
    sh`p=$!; echo "$p" > ${f.pidFile}; wait "$p"; rc=$?; rm -f -- ${f.pidFile}`,
    sh`tr '\\r' '\\n' < ${f.log} | grep -av '^ *$' | tail -n 40; tail -n 20 ${f.err} >&2`,
    // Only a 23 needs the host's verdict (passSucceeded): other passes print none.
    `[ "$rc" != 23 ] || { ${stderrVerdictScript(f.err)}; }; exit "$rc"`,
  ].join('\n');
}

/** End the copy a killed runner left behind (its pid file names its process group), and wait for it. */
export function killLeftoverScript(f: PassFiles): string {
  // A zombie (exited, not yet reaped by the shell that started it) is gone for our purpose.
  return sh`[ -s ${f.pidFile} ] || exit 0
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
p=$(cat ${f.pidFile})
if [ -r "/proc/$p/cmdline" ] && tr '\\0' ' ' < "/proc/$p/cmdline" | grep -q '^rsync '; then
  echo "ending leftover rsync $p"
  kill -TERM "-$p" 2>/dev/null
  i=0; while alive "$p" && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  alive "$p" && kill -KILL "-$p" 2>/dev/null; sleep 0.2
fi
rm -f -- ${f.pidFile}`;
}

// ------------------------------------------------------------------ parsers (pure)

export interface RsyncStats {
  files: number;
  regularFiles: number;
  /** Files created or updated by this pass. */
  regularTransferred: number;
  deleted: number;
  totalSize: number;
  /** Size of the files this pass sent (the delta). */
  transferredSize: number;
  literalData: number;
  bytesSent: number;
}

const num = (s: string | undefined) => (s === undefined ? NaN : Number(s.replace(/,/g, '')));

/** The `--stats` block; undefined when it is not there (rsync died first). */
export function parseRsyncStats(out: string): RsyncStats | undefined {
  const get = (re: RegExp) => num(re.exec(out)?.[1]);
  const files = get(/^Number of files: ([\d,]+)/m);
  const transferredSize = get(/^Total transferred file size: ([\d,]+) bytes/m);
  if (Number.isNaN(files) || Number.isNaN(transferredSize)) return undefined;
  const reg = /^Number of files: [\d,]+ \((?:.*?)reg: ([\d,]+)/m.exec(out);
  return {
    files,
    regularFiles: reg ? num(reg[1]) : 0,
    regularTransferred: get(/^Number of regular files transferred: ([\d,]+)/m) || 0,
    deleted: get(/^Number of deleted files: ([\d,]+)/m) || 0,
    totalSize: get(/^Total file size: ([\d,]+) bytes/m),
    transferredSize,
    literalData: get(/^Literal data: ([\d,]+) bytes/m) || 0,
    bytesSent: get(/^Total bytes sent: ([\d,]+)/m) || 0,
  };
}

export interface RsyncProgress {
  bytes: number;
  percent: number;
  /** Bytes per second, as rsync estimated it. */
  rate: number;
  /** rsync's own remaining-time estimate, seconds. */
  etaSeconds?: number;
}

const UNIT: Record<string, number> = { '': 1, B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/**
 * The last `--info=progress2` line in OUT ("    1,234,567  45%   12.34MB/s    0:00:10 (xfr#5, …)").
 * progress2's percentage is of the whole transfer; rsync rewrites the line with \r.
 */
export function parseRsyncProgress(out: string): RsyncProgress | undefined {
  const lines = out.split(/[\r\n]+/).filter((l) => /^\s*[\d,]+\s+\d+%/.test(l));
  const last = lines[lines.length - 1];
  if (!last) return undefined;
  const m = /^\s*([\d,]+)\s+(\d+)%\s+([\d.]+)([kKMGT]?i?B)\/s\s+(\d+):(\d\d):(\d\d)/.exec(last);
  if (!m) return undefined;
  const bytes = num(m[1]);
  const percent = Number(m[2]);
  const rate = Number(m[3]) * (UNIT[m[4]] ?? 1);
  const eta = Number(m[5]) * 3600 + Number(m[6]) * 60 + Number(m[7]);
  return { bytes, percent, rate, etaSeconds: /xfr#|to-chk|ir-chk/.test(last) && percent < 100 ? eta : undefined };
}

/** Lines of an itemized dry run that mean a difference (every line does; blank lines do not). */
export function parseItemized(out: string): string[] {
  return out
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l && !/^(sending|sent|total size|building|created directory|done$)/.test(l));
}

/**
 * Live passes go on while they help: stop when the last delta is at most CONVERGED bytes, when it
 * shrank by less than half (the server writes about as fast as we copy: stopping now is as good
 * as later), or after MAXPASSES passes.
 */
export function converged(deltas: number[], o: { convergedBytes: number; maxPasses: number }): { done: boolean; why: string } {
  const n = deltas.length;
  if (n === 0) return { done: false, why: 'no pass yet' };
  const last = deltas[n - 1];
  if (n >= 2 && last <= o.convergedBytes) return { done: true, why: `delta ${last} B ≤ ${o.convergedBytes} B` };
  if (n === 1 && last <= o.convergedBytes) return { done: true, why: `first pass copied only ${last} B` };
  if (n >= o.maxPasses) return { done: true, why: `${n} passes (the maximum)` };
  if (n >= 3 && last > deltas[n - 2] / 2) return { done: true, why: `delta no longer shrinking (${deltas[n - 2]} → ${last} B)` };
  return { done: false, why: `delta ${last} B` };
}
