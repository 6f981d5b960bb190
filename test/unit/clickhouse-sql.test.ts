// The one place values get into SQL: escaping against hostile strings. The same strings are
// round-tripped through a real 18.16 server in test/integration/gates.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, sqlIdent, sqlLiteral, sqlString } from '../../src/clickhouse/sql.js';
import { HOSTILE } from '../fixtures/hostile-strings.js';

/** Decode a literal the way ClickHouse's parser does (for the subset sqlString emits). */
function decode(lit: string): string {
  assert.ok(lit.startsWith("'") && lit.endsWith("'"), `not quoted: ${lit}`);
  const body = lit.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "'") assert.fail(`unescaped quote inside literal ${lit}`);
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = body[++i];
    const map: Record<string, string> = { '0': '\0', b: '\b', t: '\t', n: '\n', v: '\v', f: '\f', r: '\r', a: '\x07', '\\': '\\', "'": "'" };
    if (n === 'x') {
      out += String.fromCharCode(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (n in map) out += map[n];
    else assert.fail(`unexpected escape \\${n} in ${lit}`);
  }
  return out;
}

test('sqlString: every hostile string is one literal that decodes back to itself', () => {
  for (const s of HOSTILE) {
    const lit = sqlString(s);
    assert.equal(decode(lit), s, JSON.stringify(s));
    // no raw control characters or line breaks ever reach the SQL text
    assert.doesNotMatch(lit, /[\x00-\x1f\x7f]/, JSON.stringify(s));
  }
});

test('sqlString: exact forms', () => {
  assert.equal(sqlString(''), "''");
  assert.equal(sqlString("it's"), "'it\\'s'");
  assert.equal(sqlString('a\\b'), "'a\\\\b'");
  assert.equal(sqlString('a\nb\r\t\0'), "'a\\nb\\r\\t\\0'");
  assert.equal(sqlString('\x1b\x7f'), "'\\x1b\\x7f'");
  assert.equal(sqlString('`"'), "'`\"'");
  assert.equal(sqlString('日本 🚀'), "'日本 🚀'");
});

test('sqlString: refuses what cannot be sent (lone surrogates, non-strings)', () => {
  assert.throws(() => sqlString('\uD800'), /surrogate/);
  assert.throws(() => sqlString('a\uDC00b'), /surrogate/);
  assert.throws(() => sqlString(42 as any), /must be a string/);
  assert.equal(sqlString('\uD83D\uDE80'), "'🚀'");
});

test('sqlIdent: backquoted, escapes backquote and backslash', () => {
  assert.equal(sqlIdent('events_local'), '`events_local`');
  assert.equal(sqlIdent('we`ird'), '`we\\`ird`');
  assert.equal(sqlIdent("it's"), "`it's`");
  assert.equal(sqlIdent('a\\b\nc'), '`a\\\\b\\nc`');
  assert.throws(() => sqlIdent(''), /empty/);
});

test('sql``: strings quoted, numbers as numbers, identifiers and fragments', () => {
  const db = "lab'; DROP DATABASE lab; --";
  assert.equal(
    sql`SELECT count() FROM system.replicas WHERE database = ${db} AND queue_size > ${20}`,
    "SELECT count() FROM system.replicas WHERE database = 'lab\\'; DROP DATABASE lab; --' AND queue_size > 20",
  );
  assert.equal(sql`SELECT * FROM ${sql.ident('lab')}.${sql.ident('events')} ${sql.raw('ORDER BY id DESC')}`, 'SELECT * FROM `lab`.`events` ORDER BY id DESC');
  assert.equal(sql`x IN ${['a', "b'c", 3]}`, "x IN ('a', 'b\\'c', 3)");
  assert.equal(sql`${true} ${false} ${null} ${12345678901234567890n} ${1.5}`, '1 0 NULL 12345678901234567890 1.5');
  // a negative number after a minus must not become a -- comment
  assert.equal(sql`SELECT 1 -${-1}`, 'SELECT 1 -(-1)');
  assert.equal(sql`${new Date('2024-01-02T03:04:05.678Z')}`, 'toDateTime(1704164645)');
  // the result is a plain string for ChClient.query()
  assert.equal(typeof sql`SELECT 1`, 'string');
});

test('sql``: refuses values that have no safe literal', () => {
  assert.throws(() => sql`${NaN}`, /NaN/);
  assert.throws(() => sql`${Infinity}`, /Infinity/);
  assert.throws(() => sql`${[]}`, /empty list/);
  assert.throws(() => sql`${{ a: 1 } as any}`, /cannot inline/);
  assert.throws(() => sql`${undefined as any}`, /cannot inline/);
  assert.throws(() => sql`${new Date('nope')}`, /invalid Date/);
  assert.equal(sqlLiteral("o'k"), "'o\\'k'");
});
