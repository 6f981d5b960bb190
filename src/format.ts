// How chops writes durations, sizes and tables for people: one style everywhere (terminal,
// plan, summaries, status, run log), so figures can be compared at a glance.

/** 850 → "850 ms", 1234 → "1.2 s", 12_345 → "12 s", 123_000 → "2 min 3 s", 3_720_000 → "1 h 2 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const m = Math.round(s / 60);
  if (m < 2880) return `${Math.floor(m / 60)} h ${m % 60} min`;
  return `${Math.floor(m / 1440)} d ${Math.floor((m % 1440) / 60)} h`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 512 → "512 B", 1536 → "1.5 KiB", 5_368_709_120 → "5.0 GiB" (binary units, as df -h and lsblk count). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  let i = 0;
  let x = n;
  while (x >= 1024 && i < BYTE_UNITS.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x >= 100 ? Math.round(x) : x.toFixed(1)} ${BYTE_UNITS[i]}`;
}

/**
 * A plain-text table: columns padded to their widest cell, two spaces apart, no trailing blanks,
 * a newline after every row; with `rule`, a line of dashes under the head. Safe for any number of
 * rows (no argument spreading).
 */
export function renderTable(head: string[], rows: Array<Array<string | number | undefined>>, opts: { rule?: boolean } = {}): string {
  const widths = head.map((h) => h.length);
  const cells = rows.map((r) => head.map((_, i) => String(r[i] ?? '')));
  for (const r of cells) for (let i = 0; i < r.length; i++) if (r[i].length > widths[i]) widths[i] = r[i].length;
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  let out = `${line(head)}\n`;
  if (opts.rule) out += `${line(widths.map((n) => '-'.repeat(n)))}\n`;
  for (const r of cells) out += `${line(r)}\n`;
  return out;
}
