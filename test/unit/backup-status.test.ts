// The backup status fact's parser and the verdicts of `chops backup status` (pure; fixtures from
// the lab: test/fixtures/clickhouse-backup/status-ok.json is a real agent's status file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { activeReplica, newestGoodBackup, parseBackupStatus } from '../../facts/backup/status.js';
import { judgeShard } from '../../tasks/backup/judge.js';

const FIX = path.resolve(import.meta.dirname, '../fixtures/clickhouse-backup');
const statusJson = readFileSync(path.join(FIX, 'status-ok.json'), 'utf8');
const out = (status: string, lock = 'free', now = 1796160382 /* 2026-12-01T21:26:22Z */) =>
  `--installed--\nyes\n--status--\n${status}\n--lock--\n${lock}\n--now--\n${now}\n`;
const host = { name: 'ch1', cluster: 'lab', shardName: '01', replica: 1 } as any;
const lim = { maxAge: 36 * 3600, maxHold: 4 * 3600 };

test('a real status file: last DIFF with its base and chain, lock free, newest good backup and its age', () => {
  const s = parseBackupStatus(out(statusJson), 0, '', 'ch1');
  assert.equal(s.present, true);
  assert.equal(s.lastDiff?.name, 'diff-20261201T212602');
  assert.equal(s.lastDiff?.base, 'diff-20261201T212534');
  assert.equal(s.lastDiff?.chain, 2);
  assert.equal(s.lastFull, undefined);
  assert.equal(s.lastAttempt?.result, 'ok');
  const n = newestGoodBackup(s)!;
  assert.deepEqual({ type: n.type, name: n.name, age: n.ageSeconds }, { type: 'diff', name: 'diff-20261201T212602', age: 7 });
  assert.deepEqual(judgeShard(host, s, n, lim).problems, []);
});

test('alerts: too old, last run failed, interrupted run, lock held too long, nothing yet', () => {
  const later = 1796160382 + 40 * 3600;
  const old = parseBackupStatus(out(statusJson, 'free', later), 0, '', 'ch1');
  assert.match(judgeShard(host, old, newestGoodBackup(old), lim).problems.join(), /40 h old \(limit 36 h\)/);
  const failed = JSON.parse(statusJson);
  failed.last_attempt = {
    ...failed.last_attempt,
    result: 'failed',
    exit_code: 6,
    phase: 'write-error',
    error: 'upload x exited 1: connection lost (phase upload)',
  };
  const f = parseBackupStatus(out(JSON.stringify(failed)), 0, '', 'ch1');
  assert.match(judgeShard(host, f, newestGoodBackup(f), lim).problems.join(), /last run failed: upload x exited 1/);
  const running = JSON.parse(statusJson);
  running.last_attempt.result = 'running';
  const dead = parseBackupStatus(out(JSON.stringify(running)), 0, '', 'ch1');
  assert.match(judgeShard(host, dead, newestGoodBackup(dead), lim).problems.join(), /interrupted in phase retention/);
  const held = parseBackupStatus(out(JSON.stringify(running), 'busy\nbackup diff pid 12 since 2026-12-01T16:00:00Z'), 0, '', 'ch1');
  const v = judgeShard(host, held, newestGoodBackup(held), lim);
  assert.match(v.lock, /^held 19582 s by backup diff pid 12/);
  assert.match(v.problems.join(), /lock held for 326 min \(limit 240 min\)/);
  assert.equal(v.lastRun, 'running diff');
  const none = parseBackupStatus(out(''), 0, '', 'ch1');
  assert.equal(none.present, false);
  assert.deepEqual(judgeShard(host, none, newestGoodBackup(none), lim).problems, ['no good backup yet']);
});

test('missing information never passes: unreadable output, bad JSON, unknown format', () => {
  assert.throws(() => parseBackupStatus('', 255, 'connection lost', 'ch1'), /cannot read the backup agent status/);
  assert.throws(() => parseBackupStatus(out('{"format":1,'), 0, '', 'ch1'), /not valid JSON/);
  assert.throws(() => parseBackupStatus(out('{"format":2}'), 0, '', 'ch1'), /unknown format 2/);
  assert.throws(() => parseBackupStatus(out(statusJson, 'maybe'), 0, '', 'ch1'), /cannot read/);
  assert.match(judgeShard(host, undefined, undefined, lim, 'ch1: timeout').problems.join(), /status unreadable: ch1: timeout/);
});

test('active replica: backup.active names it, else the first replica', () => {
  const hosts = [
    { name: 'a', shardName: '01', cluster: 'c', replica: 1 },
    { name: 'b', shardName: '01', cluster: 'c', replica: 2 },
    { name: 'x', shardName: '02', cluster: 'c', replica: 1 },
  ];
  assert.equal(activeReplica(hosts, { name: '01', cluster: 'c' })?.name, 'a');
  assert.equal(activeReplica(hosts, { name: '01', cluster: 'c' }, { '01': 'b' })?.name, 'b');
  assert.equal(activeReplica(hosts, { name: '02', cluster: 'c' }, { '01': 'b' })?.name, 'x');
});
