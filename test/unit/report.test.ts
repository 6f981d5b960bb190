// chops report from a run's files: the state file and run log written by the same code a run
// uses (RunStore.markStep, RunLog), read back into lanes, downtime, gates, rollbacks and
// progress; the HTML escapes whatever a run recorded; the gantt and the CLI. The rendering in a
// real browser, of real lab runs, is test/integration/report.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chops } from '../support/cli.js';
import { buildSteps, markStep, RunStore, type RunState } from '../../src/run/state.js';
import { RunLog } from '../../src/run/runlog.js';
import { parseRunLog, parseLoggedDuration } from '../../src/report/runlog-read.js';
import { buildModel, type StepMeta } from '../../src/report/model.js';
import { reportHtml } from '../../src/report/html.js';
import { ganttMarkdown } from '../../src/report/gantt.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'chops-report-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const STEPS = ['check peers', 'stop', 'start', 'wait healthy'];
const META: Record<string, StepMeta> = {
  'check peers': { gate: true },
  stop: { downtime: 'starts' },
  'wait healthy': { waitsFor: 'caught up', downtime: 'ends' },
};
const meta = (pi: number, s: string) => (pi === 1 ? META[s] : pi === 0 ? { gate: true } : undefined);
const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000);

/** A rolling-restart-like run on r1 (succeeds) and r2 (its wait fails, the stop is rolled back), as the runner records it. */
async function fixtureRun(): Promise<{ store: RunStore; state: RunState; log: string }> {
  const store = new RunStore(join(root, `state-${Math.random().toString(16).slice(2)}`));
  const state = await store.create(
    {
      playbook: 'rolling-restart',
      params: {},
      inventory: '/x/inventory.yml',
      inventoryHash: 'h',
      cluster: 'lab',
      steps: buildSteps([
        { phase: 'preflight', scope: 'once', steps: ['check topology'], hosts: ['r1', 'r2'] },
        { phase: 'restart', scope: 'rolling', steps: STEPS, hosts: ['r1', 'r2'] },
      ]),
    },
    at(0),
  );
  const log = new RunLog(store.logPath(state.id));
  let t = 0;
  const step = (pi: number, name: string, host: string, secs: number, end: Record<string, unknown> = { status: 'done', changed: true }) => {
    markStep(state, pi, name, host, { status: 'started' }, at(t));
    log.logCommand({
      host: host === '*' ? 'r1' : host,
      step: name,
      kind: 'probe',
      command: `probe ${name}`,
      code: end.status === 'failed' ? 1 : 0,
      durationMs: 5,
      stderr: end.status === 'failed' ? 'boom <script>x</script>\nlast line' : '',
      at: at(t + secs),
    });
    t += secs;
    markStep(state, pi, name, host, end as any, at(t));
    // the run log's record of the outcome, as executeRun writes it
    if (end.status === 'done')
      log.logRecord(
        {
          type: 'step-done',
          host: host === '*' ? 'r1' : host,
          phase: pi ? 'restart' : 'preflight',
          step: name,
          durationMs: secs * 1000,
          changed: end.changed,
          note: end.note,
        },
        at(t),
      );
  };
  step(0, 'check topology', '*', 1, { status: 'done', changed: false, note: 'inventory matches the servers' });
  step(1, 'check peers', 'r1', 1, {
    status: 'done',
    changed: false,
    note: 'peers healthy: r2 (queue 0, delay 0s)',
    data: { peers: [{ host: 'r2', queueSize: 0 }] },
  });
  step(1, 'stop', 'r1', 2);
  log.logRecord({ type: 'progress', host: 'r1', step: 'stop', text: 'copy pass 1', bytes: 512 << 20, total: 1 << 30, rate: 100 << 20 }, at(t - 1));
  step(1, 'start', 'r1', 1);
  log.logRecord({ type: 'note', host: 'r1', step: 'wait healthy', text: 'waiting: queue_size=3 (40s left)' }, at(t + 1));
  step(1, 'wait healthy', 'r1', 3, { status: 'done', changed: false, note: 'healthy 3.0 s after start' });
  step(1, 'check peers', 'r2', 1, { status: 'done', changed: false, note: 'peers healthy' });
  step(1, 'stop', 'r2', 2);
  step(1, 'start', 'r2', 1);
  step(1, 'wait healthy', 'r2', 6, { status: 'failed', error: 'gate "replica caught up" not passed after 6s: queue_size=12 <b>' });
  t += 1;
  // the runner's rollback: the stop is undone, then the replica's other steps are pending again
  markStep(state, 1, 'stop', 'r2', { status: 'rolled-back' }, at(t));
  log.logRecord({ type: 'rollback', host: 'r2', phase: 'restart', step: 'stop', ok: true }, at(t));
  for (const name of ['check peers', 'stop', 'start']) markStep(state, 1, name, 'r2', { status: 'pending', note: undefined, changed: undefined }, at(t));
  state.outcome = 'failed';
  state.error = 'r2: wait healthy: gate failed';
  await store.save(state);
  await store.flush();
  await log.close();
  // updatedAt is stamped by save(); put it at the end of the fixture's timeline
  state.updatedAt = at(t).toISOString();
  return { store, state, log: readFileSync(store.logPath(state.id), 'utf8') };
}

describe('chops report: the model of a run', () => {
  test('the run log reads back: commands with host, step, exit and stderr tail; records; durations', async () => {
    const { log } = await fixtureRun();
    const p = parseRunLog(log);
    assert.equal(p.commands.length, 9, 'one per step run');
    const failed = p.commands.find((c) => c.code === 1)!;
    assert.deepEqual([failed.host, failed.step, failed.stderrTail], ['r2', 'wait healthy', ['boom <script>x</script>', 'last line']]);
    assert.deepEqual(
      p.records.map((r) => r.type).filter((t) => t !== 'step-done'),
      ['progress', 'note', 'rollback'],
    );
    assert.deepEqual(['1.5ms', '2.00s', '1m3.0s', 'x'].map(parseLoggedDuration), [1.5, 2000, 63_000, undefined]);
  });

  test('a lane per host with the steps that ran; downtime stop -> healthy, or -> the rollback', async () => {
    const { state, log } = await fixtureRun();
    const m = buildModel(state, parseRunLog(log), meta);
    assert.deepEqual(
      m.lanes.map((l) => [l.host, l.label, l.steps.length]),
      [
        ['*', 'once (on r1)', 1],
        ['r1', 'r1', 4],
        ['r2', 'r2', 4],
      ],
    );
    const r1 = m.lanes[1];
    assert.deepEqual(r1.downtime, [{ from: T0 + 2000, to: T0 + 8000, until: 'healthy' }], 'from the start of the stop to the end of wait healthy');
    const r2 = m.lanes[2];
    assert.deepEqual(
      r2.steps.map((s) => s.status),
      ['done', 'rolled-back', 'done', 'failed'],
    );
    const stop = r2.steps[1];
    assert.equal(stop.end, T0 + 11_000, 'a rolled-back step ends where the next step began');
    assert.equal(stop.rolledBackAt, T0 + 19_000);
    assert.deepEqual(r2.downtime, [{ from: T0 + 9000, to: T0 + 19_000, until: 'rolled back' }]);
    assert.equal(r2.steps[3].failedCommand?.command, 'probe wait healthy');
    assert.deepEqual(
      r1.steps[1].records.map((r) => r.type),
      ['step-done', 'progress'],
      'records go to the step they name',
    );
  });

  test('the HTML: self-contained, everything escaped, gates with what they observed, failures, progress', async () => {
    const { state, log } = await fixtureRun();
    const html = reportHtml(buildModel(state, parseRunLog(log), meta));
    assert.doesNotMatch(html, /<script|<link|src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no script, no external resource');
    assert.ok(html.includes('boom &lt;script&gt;x&lt;/script&gt;'), 'stderr is text');
    assert.ok(html.includes('queue_size=12 &lt;b&gt;'));
    assert.equal((html.match(/<g class="lane" /g) ?? []).length, 3);
    assert.match(html, /<g class="lane" data-host="r2" data-steps="4">/);
    assert.equal((html.match(/<tr class="gate" /g) ?? []).length, 1 + 2 * 2, 'topology + check peers and wait healthy on both replicas');
    assert.ok(html.includes('waiting: queue_size=3 (40s left)'), 'the observations a gate made while waiting');
    assert.match(html, /<li class="failure" data-host="r2">/);
    assert.match(html, /<li class="rolled-back" data-host="r2">/);
    assert.match(html, /copy pass 1<\/td><td class="num">512 MiB \/ 1\.0 GiB<\/td><td><span class="bar"><i style="width:50\.0%">/);
    assert.match(html, /rect class="downtime" data-until="rolled back" data-ms="10000"/);
  });

  test("durations are shown as people read them: step data in src/format.ts's style, duration parameters as typed", async () => {
    const { state, log } = await fixtureRun();
    state.params = { 'wait-timeout': 300_000, 'max-queue-size': 20 };
    markStep(state, 1, 'wait healthy', 'r1', { data: { downtimeMs: 6000, passes: [{ ms: 1500, delta: 10 }], stoppedAt: T0 } }, at(8));
    const m = buildModel(state, parseRunLog(log), meta);
    m.durationParams = ['wait-timeout'];
    const html = reportHtml(m);
    assert.match(html, /parameters --wait-timeout 5m --max-queue-size 20/);
    assert.match(html, /&quot;downtimeMs&quot;: &quot;6\.0 s&quot;/);
    assert.match(html, /&quot;ms&quot;: &quot;1\.5 s&quot;/);
    assert.match(html, /&quot;delta&quot;: 10\s/, 'other numbers stay numbers');
    assert.match(html, new RegExp(`&quot;stoppedAt&quot;: ${T0}`), 'a point in time is not a duration');
  });

  test('without the playbook definition: no gate or downtime marks, and the report says so', async () => {
    const { state, log } = await fixtureRun();
    const m = buildModel(state, parseRunLog(log));
    assert.deepEqual(
      m.lanes.map((l) => l.downtime.length),
      [0, 0, 0],
    );
    assert.match(reportHtml(m), /could not be loaded for this run/);
  });

  test('the gantt: a section per lane, a task per step, failed crit, rollback milestone, downtime', async () => {
    const { state, log } = await fixtureRun();
    const md = ganttMarkdown(buildModel(state, parseRunLog(log), meta));
    assert.match(md, /^```mermaid\ngantt\n/);
    assert.deepEqual(md.match(/^ {2}section .*$/gm), ['  section once (on r1)', '  section r1', '  section r2']);
    assert.match(md, new RegExp(`  wait healthy :crit, s\\d+, ${T0 + 12_000}, ${T0 + 18_000}`));
    assert.match(md, /rollback stop :milestone, crit/);
    assert.match(md, /down \(rolled back\) :crit/);
  });
});

describe('chops report on the command line', () => {
  test('writes runs/<id>/report.html (--open prints the path), --mermaid prints the gantt; bad run id: exit 2', async () => {
    const { store, state } = await fixtureRun();
    const inv = join(root, 'inv.yml');
    writeFileSync(
      inv,
      `version: 1\ndefaults:\n  ssh: {agent: true}\nstate:\n  dir: ${store.stateDir}\nclusters:\n  lab:\n    shards:\n      - replicas:\n          - {host: r1, address: 10.0.0.1}\n          - {host: r2, address: 10.0.0.2}\n`,
    );
    const cli = async (args: string[]) => {
      const r = await chops(args);
      return { exitCode: r.code, stdout: r.stdout, stderr: r.stderr };
    };
    const r = await cli(['report', '-i', inv, '--open']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), join(store.runDir(state.id), 'report.html'), 'the latest run by default');
    assert.match(readFileSync(r.stdout.trim(), 'utf8'), /<g class="lane" data-host="r2"/);
    const md = await cli(['report', state.id, '-i', inv, '--mermaid']);
    assert.equal(md.exitCode, 0, md.stderr);
    assert.match(md.stdout, /^```mermaid\ngantt/);
    const bad = await cli(['report', '../etc', '-i', inv]);
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /"..\/etc" is not a run id[\s\S]*fix: list runs with `chops runs`/);
  });
});
