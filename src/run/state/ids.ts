// Run ids and the canonical hash of a run's parameters (a resume refuses changed parameters).
import { createHash, randomBytes } from 'node:crypto';

const ID_RE = /^\d{8}-\d{6}-[0-9a-f]{4}$/;

/** True for ids produced by `newRunId()` (also the guard against path tricks in `load(id)`). */
export function isRunId(id: string): boolean {
  return ID_RE.test(id);
}

/** `YYYYMMDD-HHMMSS-<4 hex>` in UTC: lexical order is creation order (to the second). */
export function newRunId(now: Date = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp =
    `${p(now.getUTCFullYear(), 4)}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-` +
    `${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

/** When run ID was created, to the second (its stamp, UTC), in epoch ms; NaN for a non-id. */
export function runIdTime(id: string): number {
  if (!isRunId(id)) return Number.NaN;
  const n = (a: number, b: number) => Number(id.slice(a, b));
  return Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(9, 11), n(11, 13), n(13, 15));
}

/** Canonical JSON: object keys sorted at every depth, undefined dropped, Dates as ISO strings. */
export function canonicalJson(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'bigint') return v.toString();
      return v;
    }
    if (v instanceof Date) return v.toISOString();
    if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : norm(x)));
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined && typeof x !== 'function') out[k] = norm(x);
    }
    return out;
  };
  return JSON.stringify(norm(value)) ?? 'null';
}

/** Stable sha256 (hex) of run parameters: key order does not matter. */
export function paramsHash(params: Record<string, unknown>): string {
  return createHash('sha256')
    .update(canonicalJson(params ?? {}))
    .digest('hex');
}
