// One validation per value, whatever its source: the inventory schema (rules.ts) and the command
// line (engine/params.ts, commands/common.ts) check integers, durations, addresses and paths with
// these functions, so a value refused in inventory.yml is refused as a flag too, with the same
// words. Each takes the text as written (YAML source or argv), never a value YAML or the argument
// parser already converted: `0022`, `0x16` and `1e3` are not 22, 22 and 1000.

import { isIPv4, isIPv6 } from 'node:net';
import { posix } from 'node:path';
import { UNIT_MS, durationText } from '../duration.js';

export type Checked<T> = { ok: true; value: T } | { ok: false; message?: string; hint?: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const fail = (message?: string, hint?: string): Checked<never> => ({ ok: false, message, hint });

/** Plain decimal integers only: no sign, no leading zero, no hex/octal/exponent, no spaces. */
export const DECIMAL = /^(0|[1-9][0-9]*)$/;

export function decimalInt(written: string, min: number, max: number): Checked<number> {
  const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer ${min}-${max}`;
  if (!DECIMAL.test(written)) {
    return fail(
      `expected ${range} written in plain decimal digits, found ${show(written)}`,
      'write digits only, e.g. 22 (no sign, leading zero, 0x, exponent)',
    );
  }
  const n = Number(written);
  if (!Number.isSafeInteger(n) || n < min || n > max) return fail(`expected ${range}, found ${written.length <= 20 ? written : show(written)}`);
  return ok(n);
}

/** Where a duration is used and what it may be. Bounds are in milliseconds, inclusive. */
export interface DurationRange {
  min: number;
  max: number;
}

// Node timers overflow above 2^31-1 ms (24.8 days: the timeout fires after 1 ms instead), so
// nothing that becomes a timer may exceed that; each range is also what makes sense for its use.
export const TIMER_MAX_MS = 2 ** 31 - 1;
export const DURATION_RANGES = {
  connectTimeout: { min: 1000, max: 10 * UNIT_MS.m },
  keepaliveInterval: { min: 1000, max: UNIT_MS.h },
  waitTimeout: { min: 1000, max: UNIT_MS.d },
  pollInterval: { min: 10, max: UNIT_MS.m },
  maxDelay: { min: 0, max: UNIT_MS.d },
  logRetention: { min: UNIT_MS.d, max: 3650 * UNIT_MS.d },
  rebootTimeout: { min: 10 * UNIT_MS.s, max: UNIT_MS.d },
  commandTimeout: { min: 1000, max: 7 * UNIT_MS.d },
  /** How long canaries are watched before the rest of a rolling phase (--soak). */
  soak: { min: 1000, max: UNIT_MS.d },
  /** Any other duration flag a playbook declares. */
  any: { min: 1, max: 7 * UNIT_MS.d },
} satisfies Record<string, DurationRange>;

const DURATION_TEXT = /^([0-9]{1,12})(?:\.([0-9]{1,3}))?(ms|s|m|h|d)$/;

/** Milliseconds of a duration written "500ms", "10s", "1.5m", "1h", "30d", within RANGE. */
export function durationMs(written: string, range: DurationRange): Checked<number> {
  const span = `${range.min === 0 ? '0' : durationText(range.min)} to ${durationText(range.max)}`;
  const m = DURATION_TEXT.exec(written);
  if (!m) {
    return fail(`expected a duration with a unit, ${span}, found ${show(written)}`, 'write a number and a unit: "500ms", "10s", "5m", "1h", "30d"');
  }
  const ms = Math.round(Number(`${m[1]}.${m[2] ?? '0'}`) * UNIT_MS[m[3] as keyof typeof UNIT_MS]);
  if (ms < range.min || ms > range.max) return fail(`expected a duration with a unit, ${span}, found ${show(written)}`, `use a value from ${span}`);
  return ok(ms);
}

// RFC 1123 host names: labels of letters, digits and '-' (and '_', seen in real internal zones),
// 1-63 characters, 253 in all. Names made only of digits and dots are IPv4 and must be valid.
const LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** A DNS name, an IPv4 address or an IPv6 address (no port, no user@, no brackets). */
export function address(written: string): Checked<string> {
  const hint = 'write a plain DNS name or IP address; the port goes in ssh.port';
  if (written.length === 0) return fail('expected a DNS name or IP address, found nothing', hint);
  if (written.length > 253) return fail(`expected a DNS name or IP address (at most 253 characters), found ${written.length} characters`, hint);
  if (written.includes(':')) {
    if (isIPv6(written)) return ok(written);
    const port = /^(.*):([0-9]+)$/.exec(written);
    return fail(
      `expected a DNS name or IP address, found ${show(written)}${port && !port[1].includes(':') ? ' (a port does not belong in the address)' : ''}`,
      port ? `address: ${port[1]} and ssh.port: ${port[2]}` : hint,
    );
  }
  if (/^[0-9.]+$/.test(written)) {
    return isIPv4(written) ? ok(written) : fail(`expected a valid IPv4 address, found ${show(written)}`, 'each of the four numbers is 0-255');
  }
  const name = written.endsWith('.') ? written.slice(0, -1) : written;
  if (name.split('.').every((l) => LABEL.test(l))) return ok(written);
  return fail(`expected a DNS name or IP address, found ${show(written)}`, hint);
}

/** `[::1]:22` for IPv6, `host:22` otherwise: how an address and port are shown. */
export function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** An absolute path written in its normal form: no `..`, `.`, `//` or trailing `/`. */
export function normalPath(path: string): Checked<string> {
  if (!posix.isAbsolute(path)) return fail(`expected an absolute path, found ${show(path)}`, 'use an absolute path, or ~/... for your home directory');
  const normal = posix.normalize(path).replace(/(.)\/+$/, '$1');
  if (normal !== path)
    return fail(`expected a normalised absolute path, found ${show(path)}`, `write it as ${show(normal)} (no '..', '.', '//' or trailing '/')`);
  return ok(path);
}

// Directories the system itself lives in: a data directory there would make move-data copy and
// delete the system. Subdirectories (/var/lib/clickhouse, /srv/ch) are fine.
const SYSTEM_DIRS = new Set([
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/media',
  '/mnt',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/tmp',
  '/usr',
  '/usr/bin',
  '/usr/lib',
  '/usr/local',
  '/usr/sbin',
  '/usr/share',
  '/var',
  '/var/lib',
  '/var/log',
  '/var/tmp',
  '/var/cache',
  '/var/spool',
  '/var/run',
]);
const NEVER_UNDER = ['/proc', '/sys', '/dev', '/etc', '/boot', '/run', '/usr/bin', '/usr/sbin', '/bin', '/sbin'];

/** A directory chops may copy into and delete under: normalised, not a system directory. */
export function dataDirectory(path: string): Checked<string> {
  const n = normalPath(path);
  if (!n.ok) return n;
  if (SYSTEM_DIRS.has(path) || NEVER_UNDER.some((d) => path.startsWith(`${d}/`))) {
    return fail(
      `expected ClickHouse's own data directory, found the system directory ${show(path)}`,
      'name the directory ClickHouse keeps its data in, e.g. /var/lib/clickhouse',
    );
  }
  return ok(path);
}

// Terminal controls: C0 (except newline where allowed), DEL, C1, and the Unicode bidi/format
// controls that reorder or hide text (U+202E shows "txt.exe" as "exe.txt").
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;

/** TEXT with every terminal control escaped (\x1b, \u202e); newlines kept unless `oneLine`. */
export function printable(text: string, opts: { oneLine?: boolean } = {}): string {
  const escaped = text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return opts.oneLine ? escaped.replace(/\n/g, '\\n') : escaped;
}

/** Shorten to at most MAX characters, saying how much was left out. */
export function shorten(text: string, max = 60): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max - 3)}... (${text.length} characters)`;
}

/** A value from a file or the command line, for a message: quoted, escaped, short. */
export function show(value: string, max = 60): string {
  const short = value.length > max ? value.slice(0, max - 3) : value;
  const quoted = `"${printable(short, { oneLine: true }).replace(/"/g, '\\"')}"`;
  return value.length > max ? `${quoted}... (${value.length} characters)` : quoted;
}

/** The check of a flag that mirrors an inventory value, by flag name (gate thresholds: src/gates/thresholds.ts). */
export type ValueCheck = (written: string) => Checked<number | boolean>;

export function flagValueCheck(flag: string): ValueCheck | undefined {
  if (flag === 'reboot-timeout') return (w) => durationMs(w, DURATION_RANGES.rebootTimeout);
  if (flag === 'timeout') return (w) => durationMs(w, DURATION_RANGES.commandTimeout);
  return undefined;
}
