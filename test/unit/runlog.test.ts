import assert from 'node:assert/strict';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { Redactor } from '../../src/run/redact.js';
import { formatDuration, pruneLogs, RunLog } from '../../src/run/runlog.js';
import { writeFileAtomic } from '../../src/run/state/atomic-write.js';
import type { RunOutcome } from '../../src/run/state/model.js';
import { serializeState } from '../../src/run/state/state-file.js';
import { buildSteps } from '../../src/run/state/steps.js';
import { RunStore } from '../../src/run/state/store.js';
import { scratchDirs } from '../support/scratch.js';

const freshDir = scratchDirs('chops-runlog');

describe('Redactor', () => {
  it('masks registered secrets, including their shell-quoted form; ignores short ones', () => {
    const r = new Redactor();
    r.add("pa'ss word");
    r.add('hunter22');
    r.add('ab');
    assert.equal(r.redact('echo hunter22 hunter22'), 'echo *** ***');
    assert.equal(r.redact(`printf %s 'pa'\\''ss word' | x`), "printf %s '***' | x");
    assert.equal(r.redact('ab cab'), 'ab cab');
  });

  it('masks credential patterns', () => {
    const r = new Redactor();
    const cases: Array<[string, string]> = [
      ['clickhouse-client --password s3cret --query "SELECT 1"', 'clickhouse-client --password *** --query "SELECT 1"'],
      ["clickhouse-client --password='a b' -q x", 'clickhouse-client --password=*** -q x'],
      ['CLICKHOUSE_PASSWORD=abc123 clickhouse-client', 'CLICKHOUSE_PASSWORD=*** clickhouse-client'],
      ['curl "http://h:8123/?user=u&password=xyz&query=1"', 'curl "http://h:8123/?user=u&password=***&query=1"'],
      ['  password: my secret # comment', '  password: *** # comment'],
      ['PASSWORD: "quoted"', 'PASSWORD: "***"'],
      ['{"user": "u", "password": "x\\"1", "n": 1}', '{"user": "u", "password": "***", "n": 1}'],
      ['  "password": "x1y2",', '  "password": "***",'],
      ['Authorization: Basic ZGVmYXVsdDpwYXNz', 'Authorization: Basic ***'],
      ['X-ClickHouse-Key: topsecret', 'X-ClickHouse-Key: ***'],
      ['https://default:pa55@ch-01:8443/ping', 'https://default:***@ch-01:8443/ping'],
      ['<password>plain</password>', '<password>***</password>'],
      ["CREATE USER u IDENTIFIED WITH sha256_password BY 'qwerty'", 'CREATE USER u IDENTIFIED WITH sha256_password BY ***'],
      ['password_file: /etc/ch/pass', 'password_file: /etc/ch/pass'],
      ['nothing to see here: ok', 'nothing to see here: ok'],
    ];
    for (const [input, want] of cases) {
      assert.equal(r.redact(input), want, input);
    }
    // Mixed case and a word split across the rules' hints: the one-test gate (no rule's words in
    // the text: nothing to do) must let each of these through to its rule.
    for (const [input, want] of [
      ['PaSsWoRd=abc', 'PaSsWoRd=***'],
      ['x-ClickHouse-KEY: k1', 'x-ClickHouse-KEY: ***'],
      ['Identified By "q"', 'Identified By ***'],
      ['--API-KEY zz9', '--API-KEY ***'],
      ['ftp://u:p4ss@h', 'ftp://u:***@h'],
    ] as Array<[string, string]>)
      assert.equal(r.redact(input), want, input);
    const plain = 'Linux h1 6.1.0 #1 SMP x86_64 GNU/Linux; uid=0(root) gid=0(root)';
    assert.equal(r.redact(plain), plain);
  });

  // How long this takes belongs in a benchmark, not here (shared, noisy machines); what is checked
  // is that a secret after megabytes of output with rule hints ("password") is still masked.
  it('masks a secret at the end of a big output full of rule hints', () => {
    const r = new Redactor();
    r.add('hunter22');
    const big = `${'SELECT 1 FROM system.parts WHERE x = 1 -- note: password\n'.repeat(200_000)}hunter22\n${'y'.repeat(4_000_000)}`;
    const out = r.redact(big);
    assert.ok(!out.includes('hunter22'));
    assert.ok(out.endsWith('y'.repeat(100)), 'the rest of the output is kept');
  });
});

describe('RunLog', () => {
  it('writes header lines and prefixed output, redacting commands and output', async () => {
    const dir = freshDir();
    const r = new Redactor();
    r.add('hunter22');
    const log = await RunLog.open(join(dir, 'run.log'), { redactor: r });
    log.logCommand({
      host: 'h1',
      step: 'stop server',
      kind: 'exec',
      command: "clickhouse-client --password 'hunter22' -q 'SYSTEM STOP MERGES'",
      code: 0,
      durationMs: 1.23,
      stdout: 'line one\nsecret is hunter22\n',
      stderr: 'warn: PASSWORD=zzz9\n',
      at: new Date('2026-11-21T08:00:00.123Z'),
    });
    log.logCommand({
      host: 'h2',
      step: 'facts',
      kind: 'probe',
      command: 'cat <<EOF\nmulti\nEOF',
      code: 3,
      durationMs: 2500,
      at: new Date('2026-11-21T08:00:01.000Z'),
    });
    log.logEvent('phase "restart" started\nsecond line hunter22', new Date('2026-11-21T08:00:02.000Z'));
    await log.close();
    await log.close(); // idempotent
    log.logEvent('after close: dropped');
    const text = readFileSync(join(dir, 'run.log'), 'utf8');
    assert.equal(
      text,
      [
        '2026-11-21T08:00:00.123Z host=h1 step="stop server" exit=0 1.2ms $ clickhouse-client --password *** -q \'SYSTEM STOP MERGES\'',
        '  | line one',
        '  | secret is ***',
        '  ! warn: PASSWORD=***',
        '2026-11-21T08:00:01.000Z host=h2 step="facts" kind=probe exit=3 2.50s $ cat <<EOF',
        '  > multi',
        '  > EOF',
        '2026-11-21T08:00:02.000Z phase "restart" started',
        '  second line ***',
        '',
      ].join('\n'),
    );
    assert.ok(!text.includes('hunter22'));
  });

  it('truncates big output to the configured bytes, with a note, keeping head and tail', async () => {
    const dir = freshDir();
    const log = await RunLog.open(join(dir, 'run.log'), { maxOutputBytes: 100 });
    const stdout = Array.from({ length: 1000 }, (_, i) => `out ${i}`).join('\n');
    log.logCommand({ host: 'h1', step: 's', kind: 'exec', command: 'big', code: 1, durationMs: 5, stdout, stderr: 'E'.repeat(30) });
    await log.close();
    const text = readFileSync(join(dir, 'run.log'), 'utf8');
    const lines = text.trimEnd().split('\n');
    assert.match(lines[1], /^ {2}\| out 0$/);
    assert.ok(text.includes('  | out 999\n'), 'tail kept');
    assert.match(text, /\| … \[stdout: \d+ of \d+ bytes not logged\]/);
    assert.ok(text.includes(`  ! ${'E'.repeat(30)}\n`), 'stderr kept whole');
    const body = lines
      .slice(1)
      .filter((l) => !l.includes('not logged'))
      .map((l) => l.slice(4))
      .join('');
    assert.ok(body.length <= 100, `body ${body.length}`);
  });

  it('works as a transport CommandListener', async () => {
    const dir = freshDir();
    const log = await RunLog.open(join(dir, 'run.log'));
    const listen = log.listener((h) => `step-of-${h}`);
    listen({ host: 'h3', kind: 'put', result: { command: 'put /etc/x.xml', stdout: '', stderr: '', code: 0, durationMs: 0.5 } });
    await log.close();
    assert.match(readFileSync(join(dir, 'run.log'), 'utf8'), /host=h3 step="step-of-h3" kind=put exit=0 0\.5ms \$ put \/etc\/x\.xml\n$/);
    assert.equal(formatDuration(61_500), '1m1.5s');
  });
});

describe('pruneLogs', () => {
  it('removes runs older than the retention (failed and abandoned ones too), never the current run or a live one', async () => {
    const dir = freshDir();
    const store = new RunStore(dir);
    const now = new Date('2026-11-21T08:00:00Z');
    const day = 86_400_000;
    const mk = async (outcome: RunOutcome, ageDays: number, format: 'json' | 'old-yaml' = 'json') => {
      const st = await store.create(
        {
          playbook: 'p',
          params: {},
          inventory: '/i.yml',
          inventoryHash: 'h',
          cluster: 'c',
          steps: buildSteps([{ phase: 'x', scope: 'once', steps: ['s'], hosts: [] }]),
        },
        new Date(now.getTime() - ageDays * day),
      );
      await store.flush();
      // Write the final state with an old updatedAt directly (save() stamps the current time).
      st.outcome = outcome;
      st.updatedAt = new Date(now.getTime() - ageDays * day).toISOString();
      // (old-yaml: a state file of the chops before the journal, block-style YAML, read whole)
      await writeFileAtomic(store.statePath(st.id), format === 'json' ? serializeState(st) : stringify(st));
      const log = await RunLog.open(store.logPath(st.id));
      log.logEvent('hello');
      await log.close();
      return st.id;
    };
    const oldOk = await mk('succeeded', 40);
    const oldFailed = await mk('failed', 40);
    const oldInterrupted = await mk('interrupted', 40);
    const oldRunning = await mk('running', 40);
    const oldYaml = await mk('succeeded', 40, 'old-yaml');
    const newYaml = await mk('failed', 2, 'old-yaml');
    // Only the head of state.yml is read: a body that would not even parse does not matter.
    const oldBigBody = await mk('succeeded', 40);
    writeFileSync(
      store.statePath(oldBigBody),
      readFileSync(store.statePath(oldBigBody), 'utf8').replace(/"steps": [\s\S]*$/, `"steps": [${'{'.repeat(100_000)}`),
    );
    // A crashed run whose state.yml is old but whose journal got a transition a day ago: kept.
    const crashedRecently = await mk('running', 40);
    const journal = store.journalPath(crashedRecently, JSON.parse(readFileSync(store.statePath(crashedRecently), 'utf8')).journalEpoch);
    writeFileSync(journal, '');
    utimesSync(journal, new Date(now.getTime() - day), new Date(now.getTime() - day));
    // Created long ago, resumed and finished a day ago: its head says so.
    const resumedLately = await mk('succeeded', 40);
    const doc = JSON.parse(readFileSync(store.statePath(resumedLately), 'utf8'));
    writeFileSync(store.statePath(resumedLately), JSON.stringify({ ...doc, updatedAt: new Date(now.getTime() - day).toISOString() }, null, 2));
    const newOk = await mk('succeeded', 2);
    const current = await mk('succeeded', 50);
    const corrupt = await mk('succeeded', 60);
    await writeFileAtomic(store.statePath(corrupt), '::: not yaml {{{');

    const removed = await pruneLogs(dir, 30, { now, currentRunId: current });
    const gone = [oldOk, oldFailed, oldInterrupted, oldRunning, oldYaml, oldBigBody];
    assert.deepEqual(removed.map((r) => r.id).sort(), gone.sort());
    assert.equal(removed.find((r) => r.id === oldOk)!.path, store.runDir(oldOk));
    for (const id of gone) assert.ok(!existsSync(store.runDir(id)), id);
    for (const id of [newOk, current, corrupt, newYaml, crashedRecently, resumedLately]) {
      assert.ok(existsSync(store.runDir(id)), id);
    }
    // Date form of the third argument; 0 days: every finished run except the current one.
    const removed2 = await pruneLogs(dir, 0, new Date(now.getTime() + 1000));
    assert.deepEqual(removed2.map((r) => r.id).sort(), [current, newOk, newYaml, crashedRecently, resumedLately].sort());
    await assert.rejects(pruneLogs(dir, -1), RangeError);
    assert.deepEqual(await pruneLogs(join(dir, 'nope'), 30), []);
  });
});
