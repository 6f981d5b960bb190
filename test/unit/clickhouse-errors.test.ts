// ClickHouse error text in the formats chops meets (18.16 HTTP and client, newer servers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClickHouseError, parseClickHouseError } from '../../src/clickhouse/errors.js';
import { ChopsError } from '../../src/errors.js';

test('18.16 HTTP format', () => {
  const p = parseClickHouseError("Code: 60, e.displayText() = DB::Exception: Table default.no_such_table doesn't exist., e.what() = DB::Exception\n");
  assert.deepEqual(p, { code: 60, type: 'UNKNOWN_TABLE', message: "Table default.no_such_table doesn't exist." });
  assert.deepEqual(parseClickHouseError('Code: 115, e.displayText() = DB::Exception: Unknown setting param_x, e.what() = DB::Exception'), {
    code: 115,
    type: 'UNKNOWN_SETTING',
    message: 'Unknown setting param_x',
  });
  // a message that itself contains commas and "e.what" lookalikes
  const p2 = parseClickHouseError('Code: 242, e.displayText() = DB::Exception: Table is in readonly mode, e.what() = DB::Exception');
  assert.equal(p2.code, 242);
  assert.equal(p2.type, 'TABLE_IS_READ_ONLY');
  assert.equal(p2.message, 'Table is in readonly mode');
});

test('18.16 nested errors: the outer code wins, the message keeps the cause', () => {
  const text =
    'Code: 279, e.displayText() = DB::NetException: All connection tries failed. Log: \n\nCode: 210, e.displayText() = DB::NetException: Connection refused (127.0.0.1:19123), e.what() = DB::NetException\n\n, e.what() = DB::NetException';
  const p = parseClickHouseError(text);
  assert.equal(p.code, 279);
  assert.equal(p.type, 'ALL_CONNECTION_TRIES_FAILED');
  assert.match(p.message, /^All connection tries failed/);
  assert.match(p.message, /Connection refused/);
});

test('clickhouse-client formats (18.16 and "Received exception from server")', () => {
  assert.deepEqual(parseClickHouseError('Code: 62. DB::Exception: Syntax error: failed at position 1: SELEC 1. Expected one of: SELECT'), {
    code: 62,
    type: 'SYNTAX_ERROR',
    message: 'Syntax error: failed at position 1: SELEC 1. Expected one of: SELECT',
  });
  const p = parseClickHouseError(
    "Received exception from server (version 18.16.1):\nCode: 60. DB::Exception: Received from localhost:9000, 127.0.0.1. DB::Exception: Table default.x doesn't exist..",
  );
  assert.equal(p.code, 60);
  assert.match(p.message, /Table default\.x doesn't exist/);
});

test('newer servers: type and version trailer', () => {
  assert.deepEqual(parseClickHouseError('Code: 60. DB::Exception: Table default.x does not exist. (UNKNOWN_TABLE) (version 23.8.1.1)'), {
    code: 60,
    type: 'UNKNOWN_TABLE',
    message: 'Table default.x does not exist.',
  });
  // a code chops has no name for keeps the server's name
  const p = parseClickHouseError('Code: 731. DB::Exception: Something new. (BRAND_NEW_ERROR) (version 24.3.1.1)');
  assert.deepEqual(p, { code: 731, type: 'BRAND_NEW_ERROR', message: 'Something new.' });
  assert.equal(parseClickHouseError('Code: 9999. DB::Exception: x').type, undefined);
});

test('not a ClickHouse error: the text itself, no code', () => {
  assert.deepEqual(parseClickHouseError('socket hang up'), { code: undefined, type: undefined, message: 'socket hang up' });
  assert.equal(parseClickHouseError('').message, 'unknown ClickHouse error');
});

test('ClickHouseError carries host, code and query, and is a ChopsError', () => {
  const e = new ClickHouseError('ch2', "Table lab.x doesn't exist.", { code: 60, type: 'UNKNOWN_TABLE', query: 'SELECT *\n  FROM lab.x' });
  assert.ok(e instanceof ChopsError);
  assert.equal(e.host, 'ch2');
  assert.equal(e.code, 60);
  assert.equal(e.kind, 'server');
  assert.equal(e.query, 'SELECT *\n  FROM lab.x');
  assert.equal(e.exitCode, 1);
  assert.equal(e.message, "ch2: ClickHouse [Code 60 UNKNOWN_TABLE]: Table lab.x doesn't exist.\n  query: SELECT * FROM lab.x");
  const t = new ClickHouseError('ch1', 'query did not finish within 5s', { kind: 'timeout', query: 'SELECT sleep(3)' });
  assert.equal(t.kind, 'timeout');
  assert.equal(t.code, undefined);
});
