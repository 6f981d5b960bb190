// The building blocks of the declarative inventory schema: what a key may hold, how its text
// becomes a value, and which YAML 1.2 trap to name when it is wrong.

import { UNIT_MS } from '../duration.js';
import { isAbsolute } from 'node:path';
import { address as checkAddress, dataDirectory, decimalInt, durationMs, normalPath, type DurationRange } from './values.js';

export interface RuleContext {
  /** $HOME, for `~` in paths. */
  home: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; message?: string; hint?: string };

/** A scalar key. `check` sees the parsed value and the text as written (to name YAML traps). */
export interface ScalarRule<T = unknown> {
  kind: 'scalar';
  /** Completes "expected ...", e.g. "an integer 1-65535". */
  expected: string;
  check(value: unknown, source: string, ctx: RuleContext): Checked<T>;
}

/** A fixed set of keys; `as` renames a key for the typed output (snake_case file, camelCase code). */
export interface MapRule {
  kind: 'map';
  what: string;
  fields: Record<string, Field>;
}

/** Keys chosen by the user (cluster names), each checked by `key`, values by `value`. */
export interface RecordRule {
  kind: 'record';
  what: string;
  key: ScalarRule<string>;
  value: Rule;
  tooFew?: { message: string; hint?: string };
}

export interface ListRule {
  kind: 'list';
  what: string;
  item: Rule;
  /** Minimum number of items, with the message for a shorter list. */
  min?: number;
  tooFew?: { message: string; hint?: string };
}

/** A reference to a secret: {env: NAME} or {file: /path}. Inline values are refused, never echoed. */
export interface SecretRule {
  kind: 'secret';
}

/** Free-form data (vars): anything goes, except numbers YAML would silently change (0644 -> 644). */
export interface AnyRule {
  kind: 'any';
}

/** A scalar or a map, decided by the node's shape (ssh.jump: a host name or {address, ...}). */
export interface EitherRule {
  kind: 'either';
  scalar: ScalarRule;
  map: MapRule;
}

export type Rule = ScalarRule | MapRule | RecordRule | ListRule | SecretRule | AnyRule | EitherRule;

export interface Field {
  rule: Rule;
  /** Output property name; defaults to the key. */
  as?: string;
  /** Value used when neither defaults nor the host set the key (as written in YAML). */
  default?: unknown;
  /** Set when the key must be present: the message and hint for its absence. */
  required?: { message?: string; hint?: string };
}

export const field = (rule: Rule, options: Omit<Field, 'rule'> = {}): Field => ({ rule, ...options });

const fail = (hint?: string, message?: string): Checked<never> => ({ ok: false, hint, message });
const ok = <T>(value: T): Checked<T> => ({ ok: true, value });

/** A value written unquoted where a string is needed: quoting keeps the text exactly as written. */
function quoteHint(value: unknown, source: string): string | undefined {
  if (typeof value !== 'number' && typeof value !== 'boolean') return undefined;
  const written = source || String(value);
  return `quote it: ${JSON.stringify(written)}`;
}

// Control characters in names, paths or commands only ever come from mistakes or attacks, and
// would garble terminals and logs.
// eslint-disable-next-line no-control-regex
// C1 controls and the bidi/format controls (U+202E reverses what follows) likewise.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

export function text(options: { expected?: string; pattern?: RegExp; hint?: string } = {}): ScalarRule<string> {
  const expected = options.expected ?? 'a string';
  return {
    kind: 'scalar',
    expected,
    check(value, source) {
      if (typeof value !== 'string') return fail(quoteHint(value, source));
      if (value === '') return fail(options.hint);
      if (CONTROL.test(value)) return fail('remove the control characters');
      if (options.pattern && !options.pattern.test(value)) return fail(options.hint);
      return ok(value);
    },
  };
}

/** Host, cluster, shard and replica names: safe in file names, logs, SQL and shell words. */
export const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const safeName = (what: string): ScalarRule<string> =>
  text({
    expected: `${what} (letters, digits, '.', '_', '-'; starting with a letter or digit)`,
    pattern: SAFE_NAME,
  });

export function literal<T extends string | number>(allowed: readonly T[], message?: string): ScalarRule<T> {
  const expected = allowed.map((v) => JSON.stringify(v)).join(' or ');
  return {
    kind: 'scalar',
    expected,
    check(value) {
      return (allowed as readonly unknown[]).includes(value) ? ok(value as T) : fail(undefined, message);
    },
  };
}

export function int(min: number, max = Number.MAX_SAFE_INTEGER): ScalarRule<number> {
  const expected = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer ${min}-${max}`;
  return {
    kind: 'scalar',
    expected,
    check(value, source) {
      if (typeof value === 'string' && /^\d+$/.test(value.trim())) return fail('remove the quotes');
      if (typeof value !== 'number') return fail();
      // The text as written: YAML 1.2 reads 0022, 0x16 and 1e3 as 22, 22 and 1000.
      const checked = decimalInt(source || String(value), min, max);
      return checked.ok ? checked : fail(checked.hint, checked.message);
    },
  };
}

export const port = (): ScalarRule<number> => int(1, 65535);

// YAML 1.1 booleans that YAML 1.2 (and therefore this loader) reads as plain strings.
const YAML11_BOOLEANS = /^(y|yes|n|no|on|off|true|false)$/i;

export function bool(): ScalarRule<boolean> {
  return {
    kind: 'scalar',
    expected: 'true or false',
    check(value) {
      if (typeof value === 'boolean') return ok(value);
      if (typeof value === 'string' && YAML11_BOOLEANS.test(value)) {
        return fail(`use true/false: YAML 1.2 reads ${JSON.stringify(value)} as a string, not a boolean`);
      }
      return fail('use true/false');
    },
  };
}

/**
 * "10s" -> a number in the unit the typed inventory uses (ms, s or d), within RANGE (values.ts
 * DURATION_RANGES). Without a range (older call sites): above zero (or from zero with allowZero),
 * at most 3650 days — pick a range for anything that becomes a timer.
 */
export function duration(unit: 'ms' | 's' | 'd', rangeOrOptions: DurationRange | { allowZero?: boolean } = {}): ScalarRule<number> {
  const range: DurationRange =
    'max' in rangeOrOptions ? rangeOrOptions : { min: (rangeOrOptions as { allowZero?: boolean }).allowZero ? 0 : 1, max: 3650 * UNIT_MS.d };
  return {
    kind: 'scalar',
    expected: 'a duration with a unit ("500ms", "10s", "5m", "1h", "30d")',
    check(value) {
      // A bare number has no unit, and guessing seconds vs milliseconds is how timeouts go wrong.
      if (typeof value === 'number') return fail(`add a unit, e.g. "${value}s"`);
      if (typeof value !== 'string') return fail('write a number and a unit: "500ms", "10s", "5m", "1h", "30d"');
      const checked = durationMs(value.trim(), range);
      return checked.ok ? ok(checked.value / UNIT_MS[unit]) : fail(checked.hint, checked.message);
    },
  };
}

/** A DNS name or an IP address (values.ts: the same check as everywhere else). */
export function address(): ScalarRule<string> {
  return {
    kind: 'scalar',
    expected: 'a DNS name or IP address',
    check(value, source) {
      if (typeof value !== 'string') return fail(quoteHint(value, source));
      const checked = checkAddress(value);
      return checked.ok ? checked : fail(checked.hint, checked.message);
    },
  };
}

/** File mode bits as a quoted octal string ("0644"); the result is the number (0o644). */
export function mode(): ScalarRule<number> {
  return {
    kind: 'scalar',
    expected: 'an octal file mode as a quoted string ("0644")',
    check(value, source) {
      if (typeof value === 'string' && /^0?[0-7]{3}$/.test(value)) return ok(parseInt(value, 8));
      return fail(quoteHint(value, source));
    },
  };
}

/** `~` and `~/x` become $HOME and $HOME/x; other paths are left alone. */
export function expandHome(path: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return `${home.replace(/\/+$/, '')}/${path.slice(2)}`;
  return path;
}

/** An absolute path after `~` expansion, in normal form (relative paths would depend on where chops is started). */
export function absolutePath(options: { dataDir?: boolean } = {}): ScalarRule<string> {
  const asText = text({ expected: 'an absolute path' });
  return {
    kind: 'scalar',
    expected: 'an absolute path (or ~/...)',
    check(value, source, ctx) {
      const t = asText.check(value, source, ctx);
      if (!t.ok) return t;
      const expanded = expandHome(t.value, ctx.home);
      if (!isAbsolute(expanded)) return fail('use an absolute path, or ~/... for your home directory');
      const checked = options.dataDir ? dataDirectory(expanded) : normalPath(expanded);
      return checked.ok ? checked : fail(checked.hint, checked.message);
    },
  };
}
