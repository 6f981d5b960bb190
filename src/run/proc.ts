// Is a process still alive on this machine? Used by the run lock and the resume check.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** Name this controller records in locks and run state. */
export function controllerName(): string {
  return hostname();
}

/**
 * True when `pid` names a live process on this machine. `process.kill(pid, 0)` answers ESRCH for
 * a dead pid and EPERM for a live process owned by someone else (alive).
 *
 * `notStartedAfter`: the time the recorded owner was certainly already running (a lock's
 * startedAt, a state's updatedAt). On Linux, a live process that started well after that moment
 * is a reused pid (typically after a reboot), not the recorded owner, and counts as dead.
 */
export function pidAlive(pid: number, opts: { notStartedAfter?: string | Date } = {}): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    if (code !== 'EPERM') return false;
  }
  if (opts.notStartedAfter !== undefined && pid !== process.pid) {
    const ref = new Date(opts.notStartedAfter).getTime();
    const started = processStartMs(pid);
    // 30 s of slack covers btime rounding and clock steps; a reused pid is usually far later.
    if (started !== undefined && Number.isFinite(ref) && started > ref + 30_000) return false;
  }
  return true;
}

let bootTimeMs: number | undefined | null = null;

/** Start time of a process in epoch ms (Linux /proc only; undefined elsewhere or on error). */
export function processStartMs(pid: number): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    if (bootTimeMs === null) {
      const m = /^btime\s+(\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
      bootTimeMs = m ? Number(m[1]) * 1000 : undefined;
    }
    if (bootTimeMs === undefined) return undefined;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces/parens): state is field 3,
    // starttime is field 22, in clock ticks since boot (USER_HZ, 100 on Linux).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[19]);
    if (!Number.isFinite(ticks)) return undefined;
    return bootTimeMs + (ticks / 100) * 1000;
  } catch {
    return undefined;
  }
}
