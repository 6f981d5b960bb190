// Every diagram `chops graph` can draw, through the real renderers: Graphviz `dot` for the DOT
// (any error or warning fails), and the Mermaid package from node_modules inside headless
// Chromium for the Mermaid (any parse or render error fails). Playbooks with their defaults and
// with an inventory (per-shard lanes), the README variants, and step names made of hostile
// strings. No network: the page loads Mermaid from disk and every outside request is refused.
//
//   node --import tsx --test test/browser/diagrams.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Browser, Page } from 'playwright-core';
import { FLOWS, NeedsInventory, diagramFor, drawableNames } from '../../src/graph/flows.js';
import { toMermaid } from '../../src/graph/mermaid.js';
import { toDot } from '../../src/graph/dot.js';
import type { Diagram } from '../../src/graph/diagram.js';
import { loadInventory } from '../../src/inventory/load.js';
import { HOSTILE } from '../support/hostile.js';
import { REPO } from '../support/process.js';
import { launchBrowser, loadMermaid, offlinePage, renderMermaid } from './browser.js';

let browser: Browser;
let page: Page;
let blocked: string[];
let pageErrors: string[];

before(async () => {
  browser = await launchBrowser();
  ({ page, blocked, errors: pageErrors } = await offlinePage(browser));
  await loadMermaid(page);
});

after(async () => {
  await browser?.close();
});

async function cases(): Promise<Array<{ what: string; d: Diagram }>> {
  const inv = await loadInventory(join(REPO, 'test/fixtures/inventory/graph-docs.yml'), { env: { HOME: '/home/op' } });
  const out: Array<{ what: string; d: Diagram }> = [];
  for (const name of await drawableNames()) {
    if (name in FLOWS) {
      out.push({ what: name, d: await diagramFor(name) });
      continue;
    }
    try {
      out.push({ what: name, d: await diagramFor(name) });
    } catch (err) {
      if (!(err instanceof NeedsInventory)) throw err; // only a playbook whose phases read the inventory may refuse
    }
    out.push({ what: `${name} -i graph-docs.yml`, d: await diagramFor(name, { inventory: inv, selected: inv.hosts }) });
  }
  out.push({
    what: 'exec rolling + reboot',
    d: await diagramFor('exec', { raw: { cmd: ['a', 'b'], scope: 'rolling', reboot: true, after: ['c'] }, inventory: inv, selected: inv.hosts }),
  });
  out.push({ what: 'exec with hostile commands', d: await diagramFor('exec', { raw: { cmd: HOSTILE.map((s) => `echo ${s}`), scope: 'rolling' } }) });
  return out;
}

describe('every diagram renders with the real renderers', { timeout: 110_000 }, () => {
  test('DOT: Graphviz dot renders every one to SVG without error or warning', async () => {
    for (const { what, d } of await cases()) {
      const r = await execa('dot', ['-Tsvg'], { input: toDot(d), reject: false });
      assert.equal(r.exitCode, 0, `${what}: dot failed: ${r.stderr}`);
      assert.equal(r.stderr.trim(), '', `${what}: dot warned: ${r.stderr}`);
      assert.match(r.stdout, /<svg[\s\S]*<\/svg>/, what);
      // every node drawn: each DOT node statement becomes one <g class="node">
      const nodes = (toDot(d).match(/^\s+n_\w+ \[label=/gm) ?? []).length;
      assert.equal((r.stdout.match(/<g id="node\d+" class="node">/g) ?? []).length, nodes, `${what}: ${nodes} nodes in the SVG`);
    }
  });

  test('Mermaid: the mermaid package parses and renders every one in Chromium', async () => {
    let i = 0;
    for (const { what, d } of await cases()) {
      const text = toMermaid(d);
      const r = await renderMermaid(page, text, `g${i++}`);
      assert.equal(r.error, undefined, `${what}: Mermaid error: ${r.error}\n${text}`);
      // the rendered SVG has a node for each step label's first line
      const count = await page.$$eval('#out svg g.node', (g) => g.length);
      assert.ok(count >= d.nodes.length, `${what}: ${count} nodes rendered`);
    }
    assert.deepEqual(blocked, [], 'no network request');
    assert.deepEqual(pageErrors, []);
  });
});
