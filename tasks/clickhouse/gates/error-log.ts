// "No new errors since the start": what the server complained about since it (re)started.
// Where the server has system.errors (20.11+; counters start from zero at every start, with
// last_error_time and last_error_message from 21.x) it is read there: no log parsing, whatever
// the log format (`logger.formatting.type=json` makes the text scan below see nothing). On 18.16
// the error log's `<Error>` lines written since the start are scanned.
import type { HostHandle } from '../../../src/host.js';
import type { ChClient } from '../../../src/clickhouse/client.js';
import { sql } from '../../../src/clickhouse/sql.js';
import { shq } from '../../../src/quote.js';
import { hasColumn, hasTable, type Capabilities } from '../../../facts/clickhouse/capabilities.js';

export interface NewErrors {
  count: number;
  lines: string[];
  /** Where they were read: the log file or system.errors. */
  source: string;
  error?: string;
}

export async function newErrors(host: HostHandle, client: ChClient, caps: Capabilities, since: Date): Promise<NewErrors> {
  if (hasTable(caps, 'errors') && hasColumn(caps, 'errors.last_error_time')) return systemErrors(client, since);
  return newErrorLines(host, since);
}

/** system.errors rows that changed at or after SINCE (remote = errors received from other servers, skipped). */
export async function systemErrors(client: ChClient, since: Date): Promise<NewErrors> {
  try {
    const rows = await client.query<Record<string, unknown>>(
      sql`SELECT name, code, value, last_error_time, last_error_message FROM system.errors WHERE last_error_time >= ${since} AND NOT remote ORDER BY last_error_time`,
      { timeoutMs: 10_000 },
    );
    return parseSystemErrors(rows);
  } catch (err) {
    return { count: 0, lines: [], source: 'system.errors', error: (err as Error).message.split('\n')[0] };
  }
}

export function parseSystemErrors(rows: Record<string, unknown>[]): NewErrors {
  const lines = rows.map((r) => `${r.last_error_time} ${r.name} (Code ${r.code}) ×${r.value}: ${String(r.last_error_message ?? '').split('\n')[0]}`);
  return { count: rows.reduce((a, r) => a + Number(r.value ?? 1), 0), lines: lines.slice(-50), source: 'system.errors' };
}

/**
 * `<Error>` lines of the server's error log written at or after SINCE (at most the last 50).
 * The log's timestamps are the server's local time: SINCE is converted with the host's own
 * `date`, and compared as text ("YYYY.MM.DD hh:mm:ss" sorts by time). Lines without a timestamp
 * (stack traces) are skipped.
 */
export async function newErrorLines(host: HostHandle, since: Date): Promise<NewErrors> {
  const epoch = Math.floor(since.getTime() / 1000);
  const log = host.def.clickhouse.errorLog;
  const script =
    `[ -e ${shq(log)} ] || exit 0; ` +
    `s=$(date -d @${epoch} '+%Y.%m.%d %H:%M:%S') || exit 3; ` +
    `tail -n 20000 ${shq(log)} | awk -v s="$s" 'substr($0,1,19) ~ /^[0-9][0-9][0-9][0-9]\\.[0-9][0-9]\\.[0-9][0-9] / && substr($0,1,19) >= s && index($0, "<Error>") > 0'`;
  const r = await host.runString('probe', script, { nothrow: true, timeoutMs: 15_000 });
  if (r.code !== 0) return { count: 0, lines: [], source: log, error: `exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0]}` };
  const lines = r.stdout.split('\n').filter(Boolean);
  return { count: lines.length, lines: lines.slice(-50), source: log };
}
