// The gates' pure decisions on fixtures: caught up = sustained (issue 8 C), stuck = old and failing
// (issue 8 F), whose queries count (issue 9 #8), where pending sends and new errors come from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holdState } from '../../tasks/clickhouse/gates/poll.js';
import { classifyQueue, processesQuery, type QueueEntry } from '../../tasks/clickhouse/gates/idle.js';
import { parseDistributionQueue, parseFindOutput, escapeForFileName } from '../../tasks/clickhouse/gates/distributed.js';
import { parseSystemErrors } from '../../tasks/clickhouse/gates/error-log.js';
import { parseCapabilities } from '../../facts/clickhouse/capabilities.js';

/** Feed (time, ok) polls to holdState; the time the gate passes, or undefined. */
function passesAt(polls: Array<[number, boolean]>, holdMs: number): number | undefined {
  let okSince: number | undefined;
  for (const [t, ok] of polls) {
    const s = holdState(okSince, ok, t, holdMs);
    okSince = s.okSince;
    if (s.passed) return t;
  }
  return undefined;
}

test('caught up must hold: one lucky poll does not pass, a broken run starts over', () => {
  // within thresholds at 0 ms, out at 500 ms, within again from 1000 ms: passes at 3000 with a 2 s hold
  assert.equal(
    passesAt(
      [
        [0, true],
        [500, false],
        [1000, true],
        [1500, true],
        [2500, true],
        [3000, true],
      ],
      2000,
    ),
    3000,
  );
  assert.equal(
    passesAt(
      [
        [0, true],
        [500, false],
        [1000, true],
        [1500, false],
      ],
      2000,
    ),
    undefined,
  );
  // hold 0: the first passing poll passes (the old behaviour, for gates that need no window)
  assert.equal(
    passesAt(
      [
        [0, false],
        [200, true],
      ],
      0,
    ),
    200,
  );
});

const entry = (over: Partial<QueueEntry>): QueueEntry => ({
  database: 'lab',
  table: 'events_local',
  type: 'GET_PART',
  isExecuting: false,
  numTries: 0,
  lastException: '',
  ageSeconds: 1,
  ...over,
});

test('stuck means old and failing, not merely retried often', () => {
  // 18.16: a GET_PART from a peer that is restarting passes 100 tries within seconds
  const retried = entry({ numTries: 150, lastException: 'Code: 210, e.displayText() = DB::NetException: Connection refused', ageSeconds: 4 });
  assert.deepEqual(classifyQueue([retried]), { inFlight: [retried], stuck: [] });
  // old and its last try failed: stuck
  const old = entry({ numTries: 3, lastException: 'Code: 234, e.displayText() = DB::Exception: No active replica has part', ageSeconds: 3600 });
  assert.deepEqual(classifyQueue([old]), { inFlight: [], stuck: [old] });
  // old, not failing, not executing (a postponed merge): holds nothing
  const postponed = entry({ type: 'MERGE_PARTS', ageSeconds: 3600 });
  assert.deepEqual(classifyQueue([postponed]), { inFlight: [], stuck: [] });
  // old but executing right now: in flight
  const busy = entry({ type: 'MERGE_PARTS', ageSeconds: 3600, isExecuting: true, lastException: 'earlier failure' });
  assert.deepEqual(classifyQueue([busy]), { inFlight: [busy], stuck: [] });
});

test("active queries: chops' own (probes and KILLs) never, killed ones not where the server says so", () => {
  const c18 = parseCapabilities([{ kind: 'version', name: '18.16.1', tbl: '' }]);
  assert.equal(processesQuery(c18), "SELECT query_id, user, elapsed, query FROM system.processes WHERE query_id NOT LIKE 'chops-%'");
  const c24 = parseCapabilities([
    { kind: 'version', name: '24.8.4.13', tbl: '' },
    { kind: 'column', name: 'is_cancelled', tbl: 'processes' },
  ]);
  assert.match(processesQuery(c24), /NOT LIKE 'chops-%' AND NOT is_cancelled$/);
});

test('pending sends: distribution_queue rows and 18.16 find output', () => {
  assert.deepEqual(
    parseDistributionQueue([
      { database: 'lab', table: 'events', data_files: '3', broken_data_files: '0', last_exception: '' },
      { database: 'lab', table: 'other', data_files: '0', broken_data_files: '1', last_exception: 'Code: 210' },
    ]),
    { count: 3, sample: ['lab.events: 3 file(s)'] },
  );
  assert.deepEqual(parseFindOutput('/var/lib/clickhouse/data/lab/events/default@ch2:9000/1.bin\n'), {
    count: 1,
    sample: ['/var/lib/clickhouse/data/lab/events/default@ch2:9000/1.bin'],
  });
  assert.deepEqual(parseFindOutput('find: ‘/x’: Permission denied\n'), { count: 0, sample: [], error: 'find: ‘/x’: Permission denied' });
  assert.equal(escapeForFileName('my-db.x'), 'my%2Ddb%2Ex');
});

test('new errors from system.errors rows', () => {
  const e = parseSystemErrors([
    { name: 'KEEPER_EXCEPTION', code: 999, value: '2', last_error_time: '2024-09-01 10:00:01', last_error_message: 'Session expired\nstack' },
  ]);
  assert.equal(e.count, 2);
  assert.deepEqual(e.lines, ['2024-09-01 10:00:01 KEEPER_EXCEPTION (Code 999) ×2: Session expired']);
  assert.equal(e.source, 'system.errors');
});
