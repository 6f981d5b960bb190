// Pure pieces of the gates and `chops status` (the gates themselves run on the lab:
// test/integration/gates.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeForFileName, summarizeReplicas } from '../../tasks/clickhouse/gates.js';

test('escapeForFileName matches ClickHouse (18.16 Distributed data dirs)', () => {
  assert.equal(escapeForFileName('events_local'), 'events_local');
  assert.equal(escapeForFileName('my-db.x'), 'my%2Ddb%2Ex');
  assert.equal(escapeForFileName('é'), '%C3%A9');
});

test('summarizeReplicas', () => {
  const row = {
    database: 'lab',
    table: 't',
    isReadonly: false,
    isSessionExpired: false,
    queueSize: 3,
    insertsInQueue: 1,
    mergesInQueue: 2,
    logLag: 0,
    absoluteDelay: 4,
    activeReplicas: 1,
    totalReplicas: 2,
  };
  const s = summarizeReplicas([row, { ...row, table: 'u', isReadonly: true, queueSize: 1, absoluteDelay: 9, activeReplicas: 2 }]);
  assert.deepEqual(s, {
    tables: 2,
    readonly: ['lab.u'],
    sessionExpired: [],
    queueSize: 4,
    insertsInQueue: 2,
    maxLogLag: 0,
    maxDelay: 9,
    missingReplicas: ['lab.t (1/2 active)'],
  });
});
