// The running ClickHouse server process: its pid, the program it runs, when it started, and
// which files it still maps that are gone from the disk. A process started before a package
// upgrade keeps the replaced program and libraries mapped as "(deleted)" (the way `needrestart`
// finds services to restart): none deleted = the process runs what is installed now. That holds
// whatever the version string says (a rebuilt package with the same binary reports the same
// version(); its files are still new inodes).
import { defineFact } from '../../src/fact.js';
import type { Host } from '../../src/inventory/types.js';
import { shq } from '../../src/quote.js';

export interface ServerProcess {
  /** Undefined when no server process runs. */
  pid?: number;
  exe?: string;
  /** Epoch ms when the process started (host clock). */
  startedAtMs?: number;
  /** Mapped files that no longer exist on disk (replaced by a package since the start). */
  deleted: string[];
}

export function serverProcessCommand(host: Host): string {
  const c = host.clickhouse;
  // systemd's main pid; without systemd (custom start commands) the oldest clickhouse-server
  // (comm is cut to 15 characters by the kernel)
  const pid = c.startCommand
    ? `pid=$(pgrep -o -x clickhouse-serv 2>/dev/null || true)`
    : `pid=$(systemctl show -p MainPID --value ${shq(c.service)} 2>/dev/null || true)`;
  return `${pid}
case "$pid" in ''|0) echo @pid; exit 0 ;; esac
echo "@pid $pid"
echo "@exe $(readlink "/proc/$pid/exe" 2>/dev/null)"
echo "@elapsed $(ps -o etimes= -p "$pid" 2>/dev/null | tr -d ' ')"
echo "@now $(date +%s)"
awk '$NF == "(deleted)" && $6 ~ /^\\// {sub(/ \\(deleted\\)$/, ""); $1=$2=$3=$4=$5=""; sub(/^ +/, ""); print "@deleted " $0}' "/proc/$pid/maps" 2>/dev/null | sort -u`;
}

/** Pure: the command's output → the process (no pid line value = not running). */
export function parseServerProcess(stdout: string): ServerProcess {
  const p: ServerProcess = { deleted: [] };
  let elapsed: number | undefined;
  let now: number | undefined;
  for (const raw of stdout.split('\n')) {
    const m = /^@(\w+)(?: (.*))?$/.exec(raw.trim());
    if (!m) continue;
    const v = (m[2] ?? '').trim();
    if (m[1] === 'pid' && /^\d+$/.test(v) && v !== '0') p.pid = Number(v);
    else if (m[1] === 'exe' && v) p.exe = v.replace(/ \(deleted\)$/, '');
    else if (m[1] === 'elapsed' && /^\d+$/.test(v)) elapsed = Number(v);
    else if (m[1] === 'now' && /^\d+$/.test(v)) now = Number(v);
    else if (m[1] === 'deleted' && v && !/^\/(memfd:|dev\/|run\/|tmp\/|SYSV)/.test(v)) p.deleted.push(v);
  }
  if (/^@exe .* \(deleted\)$/m.test(stdout) && p.exe && !p.deleted.includes(p.exe)) p.deleted.unshift(p.exe);
  if (p.pid && elapsed !== undefined && now !== undefined) p.startedAtMs = (now - elapsed) * 1000;
  return p;
}

export const serverProcess = defineFact({
  name: 'clickhouse server process',
  command: (_: void, host) => serverProcessCommand(host),
  parse: ({ stdout }) => parseServerProcess(stdout),
  timeoutMs: 15_000,
});
