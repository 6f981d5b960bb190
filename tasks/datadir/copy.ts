// One rsync pass of a data-directory move on a host, with progress (bytes, rate, ETA) reported
// while it runs, and the delta it copied read from --stats. See rsync-cmd.ts for the flags.
import type { StepContext } from '../../src/engine/playbook.js';
import type { HostHandle } from '../../src/host.js';
import type { ExecResult } from '../../src/transport/types.js';
import { ChopsError, tail } from '../../src/errors.js';
import { formatBytes } from '../../src/format.js';
import {
  type PassKind,
  type RsyncStats,
  killLeftoverScript,
  parseItemized,
  parseRsyncProgress,
  parseRsyncStats,
  passFiles,
  passScript,
  passSucceeded,
  rsyncArgs,
  rsyncExitMeaning,
  rsyncStderr,
} from './rsync-cmd.js';
import { sh } from '../../src/quote.js';

/** Where a pass keeps its pid and output on the host (tmpfs: gone after a reboot, like the rsync). */
export const RUN_DIR = '/run/chops-move-data';

export interface PassResult {
  kind: PassKind;
  code: number;
  ms: number;
  stats?: RsyncStats;
  /** Bytes of the files this pass sent (the delta). */
  delta: number;
}

export interface PassParams {
  src: string;
  dst: string;
  bwlimit?: string;
  /** ionice/nice the live passes (default true). */
  nice?: boolean;
}

/** End a copy left running by a runner that was killed, so two rsyncs never write one target. */
export async function endLeftoverCopy(host: HostHandle): Promise<string | undefined> {
  const r = await host.$({ timeoutMs: 30_000 })`${raw(killLeftoverScript(passFiles(RUN_DIR)))}`;
  return r.stdout.trim() || undefined;
}

/**
 * Run one pass. Live passes accept files vanished while the server writes (exit 24, or a 23 made
 * only of vanished sources: see passSucceeded); every other non-zero exit fails with rsync's
 * meaning and stderr.
 */
export async function runPass(ctx: StepContext<any>, kind: PassKind, p: PassParams, label: string): Promise<PassResult> {
  const { host } = ctx;
  const files = passFiles(RUN_DIR);
  const script = passScript({ src: p.src, dst: p.dst, kind, bwlimit: p.bwlimit }, files, p.nice !== false);
  const t0 = performance.now();
  const stop = watchProgress(ctx, files.log, label);
  let r;
  try {
    r = await host.runString('exec', script, { nothrow: true, timeoutMs: 7 * 24 * 3600_000 });
  } finally {
    stop();
  }
  const ms = performance.now() - t0;
  // What the pass copied is known once it ran: a plan copies nothing.
  const stats = await host.whenApplied(NOTHING_COPIED, async () => passStats(host.name, kind, p, label, r));
  return { kind, code: r.code, ms, stats, delta: stats.transferredSize };
}

/** A plan's pass: nothing sent. */
const NOTHING_COPIED: RsyncStats = {
  files: 0,
  regularFiles: 0,
  regularTransferred: 0,
  deleted: 0,
  totalSize: 0,
  transferredSize: 0,
  literalData: 0,
  bytesSent: 0,
};

/** The --stats of a pass that ran, or why it failed (rsync's meaning of its exit code, stderr). */
function passStats(host: string, kind: PassKind, p: PassParams, label: string, r: ExecResult): RsyncStats {
  if (!passSucceeded(kind, r.code, r.stderr)) {
    throw new ChopsError(
      `${host}: ${label}: rsync exited ${r.code} (${rsyncExitMeaning(r.code)}): rsync ${rsyncArgs({ src: p.src, dst: p.dst, kind, bwlimit: p.bwlimit }).join(' ')}${tail(rsyncStderr(r.stderr)) ? `\n  stderr: ${tail(rsyncStderr(r.stderr))}` : ''}`,
      {
        hint:
          r.code === 11
            ? 'the new volume is probably full: check `df -h` on the staging point'
            : `see the run log; \`chops resume\` runs this pass again (what is already copied is not copied twice)`,
      },
    );
  }
  const stats = parseRsyncStats(r.stdout);
  if (!stats) throw new ChopsError(`${host}: ${label}: rsync exited ${r.code} but printed no --stats block (output: ${tail(r.stdout, 3)})`);
  return stats;
}

/** Poll the pass's output file every second: a progress event and a note (bar on a terminal). */
function watchProgress(ctx: StepContext<any>, log: string, label: string): () => void {
  const { host } = ctx;
  let busy = false;
  let last = '';
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const r = await host.probe({ nothrow: true, timeoutMs: 5_000 })`tail -c 400 ${log} 2>/dev/null`;
      const pr = parseRsyncProgress(r.stdout);
      if (!pr) return;
      const text = `${label}: ${progressBar(pr.percent)} ${pr.percent}% ${formatBytes(pr.bytes)} at ${formatBytes(pr.rate)}/s${pr.etaSeconds !== undefined ? `, ETA ${pr.etaSeconds}s` : ''}`;
      if (text === last) return;
      last = text;
      host.note(text);
      ctx.run.emit({
        type: 'progress',
        host: host.name,
        step: label,
        text,
        bytes: pr.bytes,
        rate: pr.rate,
        etaMs: pr.etaSeconds === undefined ? undefined : pr.etaSeconds * 1000,
      });
    } finally {
      busy = false;
    }
  }, 1000);
  return () => clearInterval(timer);
}

export function progressBar(percent: number, width = 20): string {
  const n = Math.max(0, Math.min(width, Math.round((percent / 100) * width)));
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}]`;
}

/** The identity dry run: `--delete --itemize-changes -n`; its lines are the differences ([] = identical). */
export async function dryRunDifferences(host: HostHandle, src: string, dst: string): Promise<string[]> {
  const args = rsyncArgs({ src, dst, kind: 'verify' });
  const r = await host.probe({ nothrow: true, timeoutMs: 3600_000 })`rsync ${args}`;
  if (r.code !== 0) throw new ChopsError(`${host.name}: identity dry run: rsync exited ${r.code} (${rsyncExitMeaning(r.code)}): ${tail(r.stderr)}`);
  return parseItemized(r.stdout);
}

/**
 * Small files rewritten in place with the same size within the same second look unchanged to
 * rsync's size+mtime check (condition 4): compare every file up to MAXKB on both sides by
 * checksum. Returns the relative paths that differ.
 */
export async function smallFileDifferences(host: HostHandle, src: string, dst: string, maxKb: number): Promise<string[]> {
  const list = (d: string) =>
    sh`cd -- ${d} && find . -mindepth 1 -path ./lost+found -prune -o -type f -size -${String(maxKb + 1)}k -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum`;
  const [a, b] = await Promise.all([
    host.probe({ nothrow: true, timeoutMs: 3600_000 })`${raw(list(src))}`,
    host.probe({ nothrow: true, timeoutMs: 3600_000 })`${raw(list(dst))}`,
  ]);
  if (a.code !== 0 || b.code !== 0) throw new ChopsError(`${host.name}: checksums of small files failed: ${tail(a.stderr || b.stderr)}`);
  const parse = (s: string) =>
    new Map(
      s
        .split('\n')
        .filter(Boolean)
        .map((l) => [l.slice(66), l.slice(0, 64)] as const),
    );
  const ma = parse(a.stdout);
  const mb = parse(b.stdout);
  const diff: string[] = [];
  for (const [p, sum] of ma) if (mb.get(p) !== sum) diff.push(p);
  return diff;
}

/**
 * Copy the content of PATHS (relative) from SRC onto the existing files in DST, in place: the
 * destination inode is kept, so hard links made by the pass stay links (the source was rewritten
 * in place too, or size/mtime/links would have differed and rsync would have copied it).
 */
export async function copyInPlace(host: HostHandle, src: string, dst: string, paths: string[]): Promise<void> {
  for (const p of paths) {
    const rel = p.replace(/^\.\//, '');
    await host.$`cp -p --no-dereference -- ${`${src.replace(/\/+$/, '')}/${rel}`} ${`${dst.replace(/\/+$/, '')}/${rel}`}`;
  }
}

import { raw } from '../../src/quote.js';
