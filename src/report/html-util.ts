// HTML escaping for the report: every value that comes from a run (host names, notes, command
// output, step data) is text, never markup.
export function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A compact, readable rendering of step data: JSON, long arrays and strings shortened. */
export function dataText(v: unknown, maxChars = 4000): string {
  const s = JSON.stringify(v, (_k, x) => (typeof x === 'string' && x.length > 400 ? `${x.slice(0, 400)}… (${x.length} chars)` : x), 2) ?? String(v);
  return s.length > maxChars ? `${s.slice(0, maxChars)}\n… (${s.length - maxChars} more characters)` : s;
}
