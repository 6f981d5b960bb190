// Values that go into the state file: plain JSON, copied (a later change by the step does not
// silently diverge from what is on disk), and redacted on the way to disk.
import type { Redactor } from '../redact.js';

/** A JSON copy of VALUE (bigints as strings, undefined dropped); throws on what JSON cannot hold. */
export function toJson(value: unknown, what: string): unknown {
  if (value === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  } catch (err) {
    throw new TypeError(`${what} is not JSON data: ${(err as Error).message}`);
  }
  return text === undefined ? undefined : JSON.parse(text);
}

/** Every string inside a JSON value passed through the redactor. */
export function redactJson(value: unknown, r: Redactor): unknown {
  if (typeof value === 'string') return r.redact(value);
  if (Array.isArray(value)) return value.map((v) => redactJson(v, r));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactJson(v, r);
    return out;
  }
  return value;
}
