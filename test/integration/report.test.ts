// `chops report` of real runs in the replicated ClickHouse lab, opened in headless Chromium:
// one rolling-restart that succeeds, one whose replica does not come back (a broken config.d
// file makes the server exit right after its start) and is rolled back. The DOM must show a lane
// per host with exactly the steps the state file says ran, each replica's downtime, the failure
// and the rollback; a screenshot of each report is kept under test-artifacts/ (gitignored).
//
//   flock /run/chops-heavy.lock node --import tsx --test test/integration/report.test.ts
//   CHOPS_TEST_REUSE_LAB=1  reuse the lab chops-report when it is already up (and leave it up)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { REPO } from '../support/process.js';
import { chops, runIdOf, ensureBuilt } from '../support/cli.js';
import { waitClusterIdle } from '../support/clickhouse.js';
import { readRunState } from '../support/inventory.js';
import { type TestLab, clickhouseLab, labSh } from '../support/lab.js';
import { launchBrowser, loadMermaid, offlinePage, renderMermaid } from '../browser/browser.js';

const ARTIFACTS = path.join(REPO, 'test-artifacts');
const BROKEN = '/etc/clickhouse-server/config.d/zz-chops-report-test-broken.xml';
const DROPIN = '/etc/systemd/system/clickhouse-server.service.d/zz-chops-report-test.conf';

let lab: TestLab;
let browser: Browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  await ensureBuilt();
  [lab, browser] = await Promise.all([clickhouseLab('chops-report'), launchBrowser()]);
  await waitClusterIdle(lab.nodes);
});

after(async () => {
  await browser?.close();
  await lab?.down();
});

/** Steps the state file says ran (started), per lane key (host name, or "*" for once steps). */
function stepsRan(state: any): Map<string, number> {
  const m = new Map<string, number>();
  for (const ph of state.steps) for (const st of ph.steps) for (const [h, s] of Object.entries<any>(st.hosts)) if (s.startedAt) m.set(h, (m.get(h) ?? 0) + 1);
  return m;
}

async function report(runId: string) {
  const r = await chops(['report', runId, '-i', lab.inventoryPath, '--open']).done;
  assert.equal(r.code, 0, `chops report failed:\n${r.stdout}${r.stderr}`);
  const file = r.stdout.trim();
  const { page, blocked, errors } = await offlinePage(browser);
  await page.goto(pathToFileURL(file).href);
  const lanes = await page.$$eval('svg.timeline g.lane', (gs) =>
    gs.map((g) => ({
      host: g.getAttribute('data-host')!,
      steps: g.querySelectorAll('g.step').length,
      statuses: [...g.querySelectorAll('g.step')].map((s) => s.getAttribute('data-status')!),
      downtime: [...g.querySelectorAll('rect.downtime')].map((d) => ({ until: d.getAttribute('data-until'), ms: Number(d.getAttribute('data-ms')) })),
    })),
  );
  const shot = path.join(ARTIFACTS, `report-${runId}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`# report ${file}\n# screenshot ${shot}`);
  const outcome = await page.textContent('#outcome');
  const failures = await page.$$eval('#failure-list li', (li) => li.map((x) => x.textContent ?? ''));
  const gates = await page.$$eval('#gate-table tr.gate', (tr) => tr.map((x) => ({ host: x.getAttribute('data-host'), step: x.getAttribute('data-step') })));
  // The gantt for tickets must parse in the real Mermaid as well.
  const md = await chops(['report', runId, '-i', lab.inventoryPath, '--mermaid']).done;
  assert.equal(md.code, 0, md.stderr);
  await loadMermaid(page);
  const g = await renderMermaid(page, md.stdout.replace(/^```mermaid\n|```\n$/g, ''), `gantt${runId.replace(/\W/g, '')}`);
  assert.equal(g.error, undefined, `the gantt of ${runId} parses:\n${md.stdout}`);
  await page.close();
  assert.deepEqual(blocked, [], 'the report needs no network');
  assert.deepEqual(errors, [], 'no script error in the page');
  return { lanes, outcome, failures, gates, shot };
}

describe('chops report on real runs', { timeout: 240_000 }, () => {
  test('a succeeded rolling-restart: a lane per host with its steps, every replica down once until healthy', async () => {
    const run = await chops(['run', 'rolling-restart', '-i', lab.inventoryPath, '--yes', '--output', 'plain']).done;
    assert.equal(run.code, 0, `chops failed:\n${run.stdout}\n${run.stderr}`);
    const runId = runIdOf(run.stdout)!;
    const state = readRunState(lab.inventoryPath, runId);
    const r = await report(runId);
    assert.equal(r.outcome, 'succeeded');
    const expected = stepsRan(state);
    assert.deepEqual(
      r.lanes.map((l) => l.host),
      ['*', ...lab.nodes.map((n) => n.name)],
      'the once lane, then one lane per host in inventory order',
    );
    for (const l of r.lanes) assert.equal(l.steps, expected.get(l.host), `lane ${l.host} shows the ${expected.get(l.host)} steps that ran`);
    for (const n of lab.nodes) {
      const l = r.lanes.find((x) => x.host === n.name)!;
      assert.deepEqual(l.statuses, ['done', 'done', 'done', 'done', 'done'], n.name);
      assert.equal(l.downtime.length, 1, `${n.name} was down once`);
      assert.equal(l.downtime[0].until, 'healthy');
      assert.ok(l.downtime[0].ms > 0 && l.downtime[0].ms < 120_000, `${n.name} downtime ${l.downtime[0].ms} ms`);
    }
    // every gate of every replica is listed (check peers, check idle, wait until healthy) + topology
    assert.equal(r.gates.length, 1 + 3 * lab.nodes.length);
    assert.deepEqual(r.failures, []);
  });

  test('a replica that does not come back: the failed wait, the rollback and the downtime until it', async () => {
    const victim = lab.nodes[2].name;
    // The server started with the broken file exits at once; when it does (and only then: a clean
    // stop has SERVICE_RESULT=success), systemd removes the file, so the rollback's start works.
    await labSh(
      lab,
      victim,
      `printf '<yandex><broken' > ${BROKEN} && chown clickhouse ${BROKEN} && ` +
        `printf '[Service]\\nExecStopPost=+/bin/sh -c \\047[ "$$SERVICE_RESULT" = success ] || rm -f ${BROKEN}\\047\\n' > ${DROPIN} && systemctl daemon-reload`,
    );
    try {
      const run = await chops(['run', 'rolling-restart', '-i', lab.inventoryPath, '--limit', victim, '--wait-timeout', '6s', '--yes', '--output', 'plain'])
        .done;
      assert.notEqual(run.code, 0, `the run fails:\n${run.stdout}${run.stderr}`);
      const runId = runIdOf(run.stdout)!;
      const state = readRunState(lab.inventoryPath, runId);
      assert.equal(state.outcome, 'failed');
      const r = await report(runId);
      assert.equal(r.outcome, 'failed');
      const expected = stepsRan(state);
      assert.deepEqual(
        r.lanes.map((l) => l.host),
        ['*', victim],
      );
      for (const l of r.lanes) assert.equal(l.steps, expected.get(l.host), `lane ${l.host}`);
      const l = r.lanes.find((x) => x.host === victim)!;
      assert.deepEqual(l.statuses, ['done', 'done', 'rolled-back', 'done', 'failed'], 'stop rolled back, wait until healthy failed');
      assert.equal(l.downtime.length, 1);
      assert.equal(l.downtime[0].until, 'rolled back', 'down from the stop until the rollback started it again');
      assert.ok(
        r.failures.some((f) => f.includes(victim) && f.includes('wait until healthy')),
        r.failures.join('\n'),
      );
      assert.ok(
        r.failures.some((f) => f.includes('stop clickhouse-server') && f.includes('rolled back')),
        r.failures.join('\n'),
      );
      // the rollback really brought the replica back
      await waitClusterIdle(lab.nodes, 30_000);
    } finally {
      await labSh(
        lab,
        victim,
        `rm -f ${BROKEN} ${DROPIN}; systemctl daemon-reload; systemctl is-active -q clickhouse-server || systemctl start clickhouse-server`,
      );
      await waitClusterIdle(lab.nodes);
    }
  });
});
