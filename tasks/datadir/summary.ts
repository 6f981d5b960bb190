// The table printed after move-data: per replica, downtime (stop → healthy) and bytes copied
// with the server running and stopped.
import { formatBytes, formatDuration, renderTable } from '../../src/format.js';

export interface ReplicaFigures {
  host: string;
  copy: string;
  downtimeMs?: number;
  bytesOnline: number;
  bytesOffline: number;
}

export function moveFigures(results: Array<{ host: string; step: string; data: unknown }>): ReplicaFigures[] {
  const out: ReplicaFigures[] = [];
  for (const r of results) {
    const d = r.data as { downtimeMs?: number; bytesOnline?: number; bytesOffline?: number; copy?: string } | undefined;
    if (!d || r.step !== 'wait until healthy' || d.copy === undefined) continue;
    out.push({ host: r.host, copy: d.copy, downtimeMs: d.downtimeMs, bytesOnline: d.bytesOnline ?? 0, bytesOffline: d.bytesOffline ?? 0 });
  }
  return out;
}

export function moveSummary(results: Array<{ host: string; phase: string; step: string; data: unknown }>): string | undefined {
  const f = moveFigures(results);
  if (!f.length) return undefined;
  return renderTable(
    ['replica', 'copy', 'downtime (stopped → healthy)', 'copied online', 'copied offline'],
    f.map((x) => [
      x.host,
      x.copy,
      x.downtimeMs === undefined ? '? (interrupted run)' : formatDuration(x.downtimeMs),
      formatBytes(x.bytesOnline),
      formatBytes(x.bytesOffline),
    ]),
    { rule: true },
  ).trimEnd();
}
