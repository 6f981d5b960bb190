// Asynchronous table loading (async_load_databases: new installs from 23.12/24.1, every server from
// 25.1): /ping answers before the tables are loaded, and queries on them block until they are.
// system.asynchronous_loader lists the load jobs (docs: "system.asynchronous_loader"; status is
// PENDING, OK, FAILED or CANCELED).
import { defineQueryFact } from '../../src/fact.js';

export interface LoaderProgress {
  total: number;
  pending: number;
  failed: number;
  /** The first failed job's exception, first line. */
  error?: string;
}

export function parseLoaderProgress(rows: Record<string, unknown>[]): LoaderProgress {
  const r = rows[0] ?? {};
  const failed = Number(r.failed ?? 0);
  return {
    total: Number(r.total ?? 0),
    pending: Number(r.pending ?? 0),
    failed,
    ...(failed
      ? {
          error: String(r.error ?? '')
            .split('\n')[0]
            .slice(0, 200),
        }
      : {}),
  };
}

export const loaderProgress = defineQueryFact({
  name: 'asynchronous loader',
  query: () =>
    `SELECT count() AS total, countIf(status = 'PENDING') AS pending, countIf(status = 'FAILED') AS failed, anyIf(exception, status = 'FAILED') AS error FROM system.asynchronous_loader`,
  parse: (rows) => parseLoaderProgress(rows),
  timeoutMs: 10_000,
});
