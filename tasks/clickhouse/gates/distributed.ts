// Pending Distributed sends on a server, for the idle gate. Where the server has
// system.distribution_queue (19.x+) it is asked directly (per-table file counts, broken files,
// errors; no file access on the host). 18.16 has no such table: its async inserts wait as .bin
// files under each Distributed table's data directory, found from system.tables of local-engine
// databases only (a MySQL/PostgreSQL database engine makes a SELECT over every database fail or
// hang: ClickHouse #30783, #51277).
import type { HostHandle } from '../../../src/host.js';
import type { Host } from '../../../src/inventory/types.js';
import type { ChClient } from '../../../src/clickhouse/client.js';
import { shq } from '../../../src/quote.js';

export interface PendingSends {
  count: number;
  sample: string[];
  error?: string;
}

/** ClickHouse's escapeForFileName: [A-Za-z0-9_] kept, every other byte as %XX. */
export function escapeForFileName(name: string): string {
  let out = '';
  for (const b of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Database engines whose tables live on this server (Ordinary, Atomic, Lazy, Memory, Replicated). */
const LOCAL_ENGINES = `('Ordinary', 'Atomic', 'Lazy', 'Memory', 'Replicated')`;

/**
 * Data directories of the Distributed tables on an 18.16-style server. On 18.16 system.databases
 * has an `engine` column too, so the same filter holds; named columns only (SELECT * would make
 * the server open every table of every database).
 */
export async function distributedDirs(client: ChClient, h: Host): Promise<string[]> {
  const rows = await client.query<{ database: string; name: string }>(
    `SELECT database, name FROM system.tables
     WHERE engine = 'Distributed' AND database IN (SELECT name FROM system.databases WHERE engine IN ${LOCAL_ENGINES})`,
    { timeoutMs: 10_000 },
  );
  const base = h.clickhouse.dataDir.replace(/\/+$/, '');
  return rows.map((r) => `${base}/data/${escapeForFileName(String(r.database))}/${escapeForFileName(String(r.name))}/`);
}

/** .bin files waiting to be sent in DIRS (tmp/ and broken/ are never sent, so not counted). */
export async function pendingDistributedFiles(host: HostHandle, dirs: string[]): Promise<PendingSends> {
  if (dirs.length === 0) return { count: 0, sample: [] };
  // A missing directory is an empty queue; any other find error means we could not look.
  const script = `for d in ${dirs.map((d) => shq(d)).join(' ')}; do [ -e "$d" ] || continue; find "$d" -type f -name '*.bin' -not -path '*/tmp/*' -not -path '*/broken/*' 2>&1 || echo "chops-find-failed: $d"; done`;
  const r = await host.runString('probe', script, { nothrow: true, timeoutMs: 30_000 });
  if (r.code !== 0) return { count: 0, sample: [], error: `exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0]}` };
  return parseFindOutput(r.stdout);
}

export function parseFindOutput(stdout: string): PendingSends {
  const lines = stdout.split('\n').filter(Boolean);
  const errors = lines.filter((l) => !l.startsWith('/'));
  const files = lines.filter((l) => l.startsWith('/') && l.endsWith('.bin'));
  return { count: files.length, sample: files.slice(0, 3), ...(errors.length ? { error: errors[0] } : {}) };
}

/**
 * system.distribution_queue rows (19.x+): files waiting per Distributed table, broken files and
 * the last error. Counted as pending: any data_files; broken files are reported, not waited for.
 */
export async function distributionQueue(client: ChClient): Promise<PendingSends> {
  const rows = await client.query<Record<string, unknown>>(
    `SELECT database, table, data_files, broken_data_files, last_exception FROM system.distribution_queue WHERE data_files > 0 OR broken_data_files > 0`,
    { timeoutMs: 10_000 },
  );
  return parseDistributionQueue(rows);
}

export function parseDistributionQueue(rows: Record<string, unknown>[]): PendingSends {
  let count = 0;
  const sample: string[] = [];
  for (const r of rows) {
    const n = Number(r.data_files ?? 0);
    count += n;
    if (n > 0 && sample.length < 3)
      sample.push(`${r.database}.${r.table}: ${n} file(s)${r.last_exception ? ` (last error: ${String(r.last_exception).split('\n')[0].slice(0, 80)})` : ''}`);
  }
  return { count, sample };
}
