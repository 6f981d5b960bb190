// Pure pieces of the gates and `chops status` (the gates themselves run on the lab:
// test/integration/gates.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeForFileName, summarizeReplicas } from '../../tasks/clickhouse/gates.js';
import { parseDfLine as parseDf } from '../../facts/system/df.js';

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

test('parseDf: df -P -T -B1 data line', () => {
  assert.deepEqual(parseDf('/dev/mapper/vg-ch ext4 1073741824000 536870912000 536870912000 50% /var/lib/clickhouse\n'), {
    device: '/dev/mapper/vg-ch',
    fsType: 'ext4',
    mount: '/var/lib/clickhouse',
    sizeBytes: 1073741824000,
    usedBytes: 536870912000,
    availBytes: 536870912000,
    usePercent: 50,
  });
  assert.equal(parseDf('df: /nope: No such file or directory\n'), undefined);
});
