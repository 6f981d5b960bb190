// HTML escaping for the report: every value that comes from a run (host names, notes, command
// output, step data) is text, never markup.
import { formatDuration } from '../format.js';

export function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A duration in a run's data or events (`ms`, `durationMs`, `downtimeMs`, `etaMs`…) as people read it. */
const isDurationKey = (k: string) => k === 'ms' || /[a-z]Ms$/.test(k);

/** JSON.stringify's replacer for the report: durations in src/format.ts's style, long strings shortened. */
function readable(k: string, x: unknown): unknown {
  if (typeof x === 'number' && isDurationKey(k)) return formatDuration(x);
  return typeof x === 'string' && x.length > 400 ? `${x.slice(0, 400)}… (${x.length} chars)` : x;
}

/** A compact, readable rendering of step data: JSON, durations formatted, long arrays and strings shortened. */
export function dataText(v: unknown, maxChars = 4000): string {
  const s = JSON.stringify(v, readable, 2) ?? String(v);
  return s.length > maxChars ? `${s.slice(0, maxChars)}\n… (${s.length - maxChars} more characters)` : s;
}

/** One line of JSON for an event's fields, durations formatted like dataText's. */
export function eventText(v: unknown): string {
  return JSON.stringify(v, readable);
}
