// chops graph: the drawing follows the playbook's definition (order, scope, gates, rollbacks),
// the inventory's topology, any playbook or flow; labels cannot break the syntax; the README's
// diagrams are exactly what `chops graph` draws now (npm run docs:graphs regenerates them).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allGroups, allNodes, flowToDiagram, type Diagram } from '../../src/graph/diagram.js';
import { NeedsInventory, diagramFor, drawableNames } from '../../src/graph/flows.js';
import { AGENT_FLOW } from '../../templates/backup/agent-flow.js';
import { playbookDiagram } from '../../src/graph/playbook-flow.js';
import { toMermaid, text as mmText } from '../../src/graph/mermaid.js';
import { toDot } from '../../src/graph/dot.js';
import { currentBlock, readmeBlock } from '../../src/graph/docs.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadPlaybook } from '../../playbooks/index.js';
import { HOSTILE } from '../support/hostile.js';
import { chops } from '../support/cli.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const nodeOf = (d: Diagram, first: string) => allNodes(d).filter((n) => n.lines[0].replace(/^⚠ /, '') === first);
const edgesFrom = (d: Diagram, id: string) => d.edges.filter((e) => e.from === id);

describe('chops graph: a playbook drawn from its phases and steps', () => {
  test('rolling-restart: phases in order, gates, the rollback of the stop, skip conditions', async () => {
    const d = await diagramFor('rolling-restart');
    assert.deepEqual(
      d.groups.map((g) => g.label),
      ['1. preflight — once, on the first selected host', '2. restart replicas — rolling: shards in parallel, one replica at a time'],
    );
    // phase to phase, group to group (Mermaid keeps the subgraphs' direction only then)
    assert.deepEqual(
      d.edges.filter((e) => ['start', 'p1', 'p2', 'done'].includes(e.from)).map((e) => `${e.from}>${e.to}`),
      ['start>p1', 'p1>p2', 'p2>done'],
    );
    const pb = await loadPlaybook('rolling-restart');
    const steps = pb.phases({}, { path: '', hash: '', clusters: [], hosts: [], stateDir: '', logRetentionDays: 0 })[1].steps;
    const lane = d.groups[1].nodes.filter((n) => n.kind !== 'rollback' && n.kind !== 'stop');
    assert.deepEqual(
      lane.map((n) => n.lines[0]),
      steps.map((s) => s.name),
      'every step, in the order the runner runs them',
    );
    assert.deepEqual(
      lane.map((n) => n.kind),
      steps.map((s) => (s.gate ? 'gate' : s.waitsFor ? 'wait' : 'step')),
    );
    const [stop] = nodeOf(d, 'stop clickhouse-server');
    assert.ok(stop.lines.includes('skipped if already stopped'));
    // a failure from the stop on undoes the stop; the gates before it just stop the run
    const undo = allNodes(d).filter((n) => n.kind === 'rollback');
    assert.deepEqual(
      undo.map((n) => n.lines[0]),
      ['↩ undo: stop clickhouse-server'],
    );
    for (const name of ['stop clickhouse-server', 'start clickhouse-server', 'wait until healthy']) {
      assert.ok(
        edgesFrom(d, nodeOf(d, name)[0].id).some((e) => e.kind === 'failure' && e.to === undo[0].id),
        `${name} fails -> undo stop`,
      );
    }
    for (const name of ['check peers', 'check replica is idle']) {
      const e = edgesFrom(d, nodeOf(d, name)[0].id).find((x) => x.kind === 'failure')!;
      assert.equal(allNodes(d).find((n) => n.id === e.to)!.kind, 'stop', `${name} refuses -> the run stops, nothing to undo`);
    }
    assert.ok(d.edges.some((e) => e.kind === 'loop' && e.label === 'next replica of the shard'));
  });

  test('with an inventory the rolling phase is one box per shard, the real replicas one after another', async () => {
    const inv = await loadInventory(join(REPO, 'inventory.yml'), { env: { HOME: '/home/op' } });
    const d = await diagramFor('rolling-restart', { inventory: inv, selected: inv.hosts });
    const shards = d.groups[1].groups;
    assert.deepEqual(
      shards.map((s) => s.label),
      inv.clusters[0].shards.map((s) => `shard ${inv.clusters[0].name}/${s.name}`),
    );
    assert.deepEqual(
      shards.map((s) => s.groups.map((l) => l.label.split(' ')[0])),
      inv.clusters[0].shards.map((s) => s.replicas.map((h) => h.name)),
    );
    for (const s of shards)
      assert.ok(
        d.edges.some((e) => e.from === s.groups[0].id && e.to === s.groups[1].id),
        'replica 1 -> replica 2, lane to lane',
      );
    const dot = toDot(d);
    assert.match(dot, /newrank=true/);
    assert.match(dot, /compound=true/);
    // the second shard starts on the same rank as the first: an (invisible) edge into it
    const firstOf2 = shards[1].groups[0].nodes[0].id.replace(/[^A-Za-z0-9_]/g, '_');
    assert.match(dot, new RegExp(`-> n_${firstOf2} \\[style=invis\\]`));
  });

  test('every playbook and flow draws, in Mermaid and DOT, without unknown ends', async () => {
    const names = await drawableNames();
    assert.ok(names.includes('rolling-restart') && names.includes('exec') && names.includes('facts'));
    const inv = await loadInventory(join(REPO, 'test/fixtures/inventory/graph-docs.yml'), { env: { HOME: '/home/op' } });
    for (const name of names) {
      const d = await diagramFor(name).catch((err) => {
        if (err instanceof NeedsInventory) return diagramFor(name, { inventory: inv, selected: inv.hosts });
        throw err;
      });
      assert.ok(allNodes(d).length >= 3, name);
      assert.match(toMermaid(d), /^---\ntitle: /);
      assert.match(toDot(d), /^digraph /);
      for (const e of d.edges)
        assert.ok(
          [...allNodes(d), ...allGroups(d)].some((x) => x.id === e.from) && [...allNodes(d), ...allGroups(d)].some((x) => x.id === e.to),
          `${name}: ${e.from} -> ${e.to}`,
        );
    }
  });

  test('exec draws what its parameters build: rolling behind gates, reboot, after-commands', async () => {
    const each = await diagramFor('exec', { raw: { cmd: ['uptime'] } });
    assert.deepEqual(
      each.groups.map((g) => g.label),
      ['1. commands — each host, all in parallel'],
    );
    const rolling = await diagramFor('exec', { raw: { cmd: ['a', 'b'], scope: 'rolling', reboot: true, after: ['c'] } });
    const names = rolling.groups[1].nodes.filter((n) => n.kind !== 'rollback' && n.kind !== 'stop').map((n) => n.lines[0]);
    assert.deepEqual(names, [
      'check peers',
      'check replica is idle',
      '#1 $ a',
      '#2 $ b',
      'reboot and wait for a new boot',
      'after reboot $ c',
      'wait until healthy',
    ]);
  });

  test('hostile step names stay text: Mermaid labels hold only safe characters, DOT strings are escaped', async () => {
    for (const s of HOSTILE) {
      const d = await diagramFor('exec', { raw: { cmd: [`echo ${s}`] } });
      const mm = toMermaid(d);
      const label = mmText(`$ echo ${s}`);
      assert.ok(mm.includes(label), JSON.stringify(s));
      assert.doesNotMatch(label.replace(/#\d+;/g, ''), /["[\]{}<>|;#`\\\n\r\0]/, 'only safe characters and #NN; entities');
      const dot = toDot(d);
      for (const line of dot.split('\n')) assert.ok(!/[\r\0]/.test(line), 'no raw CR/NUL in DOT');
    }
  });

  test('a flow defined elsewhere (nodes and edges) is drawn as it is; an edge to nowhere is refused', () => {
    const d = flowToDiagram('f', {
      nodes: [
        { id: 'start', label: 'start', kind: 'start' },
        { id: 'type', label: 'type?', kind: 'decision' },
        { id: 'end', label: 'end', kind: 'end' },
      ],
      edges: [
        { from: 'start', to: 'type' },
        { from: 'type', to: 'end', label: 'FULL' },
      ],
    });
    assert.match(toMermaid(d), /n_type\{"type\?"\}/);
    assert.match(toMermaid(d), /n_end\(\["end"\]\)/, '"end" is a Mermaid keyword: ids are prefixed');
    assert.throws(() => flowToDiagram('f', { nodes: [{ id: 'a', label: 'a' }], edges: [{ from: 'a', to: 'b' }] }), /unknown node "b"/);
  });

  test("backup-agent is drawn from the agent's own flow definition, node for node and edge for edge", async () => {
    const d = await diagramFor('backup-agent');
    assert.deepEqual(
      d.nodes.map((n) => n.id),
      AGENT_FLOW.nodes.map((n) => n.id),
    );
    assert.equal(d.edges.length, AGENT_FLOW.edges.length);
    const kinds = Object.fromEntries(d.nodes.map((n) => [n.id, n.kind]));
    for (const n of AGENT_FLOW.nodes)
      assert.equal(kinds[n.id], { start: 'terminal', end: 'terminal', decision: 'decision', refusal: 'stop' }[n.kind as string] ?? 'step', n.id);
    AGENT_FLOW.edges.forEach((e, i) => {
      assert.equal(d.edges[i].kind, e.exit ? 'failure' : e.from === e.to ? 'loop' : 'flow', `${e.from} -> ${e.to}`);
      if (e.exit !== undefined) assert.match(d.edges[i].label!, new RegExp(`exit ${e.exit}$`));
    });
  });

  test('a playbook whose phases read the inventory: drawn with -i, refused without (exit 2, the fix)', async () => {
    const inv = await loadInventory(join(REPO, 'test/fixtures/inventory/graph-docs.yml'), { env: { HOME: '/home/op' } });
    const d = await diagramFor('backup-install', { inventory: inv, selected: inv.hosts });
    assert.match(d.groups[0].label, /each host, all in parallel: ch-01-1, ch-01-2, ch-02-1, ch-02-2/);
    await assert.rejects(
      diagramFor('backup-install'),
      (err: any) => err instanceof NeedsInventory && err.exitCode === 2 && /chops graph backup-install -i inventory.yml/.test(String(err.hint)),
    );
  });

  test('a playbook with no phases, or an empty phase, still draws', () => {
    const d = playbookDiagram('x', [{ name: 'empty', scope: 'each', steps: [] }]);
    assert.ok(toMermaid(d).includes('n_p1'));
    assert.ok(toDot(d).includes('digraph'));
  });

  test('the README diagrams are what chops graph draws now (regenerate: npm run docs:graphs)', async () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const block = currentBlock(readme);
    assert.ok(block, 'README has the generated-diagrams block');
    assert.equal(block, await readmeBlock(), 'README diagrams are stale: run `npm run docs:graphs`');
  });
});

describe('chops graph on the command line', () => {
  // the built bundle (bin/chops.js), as an operator runs it: `npm run build` first
  const cli = async (args: string[]) => {
    const r = await chops(args);
    return { exitCode: r.code, stdout: r.stdout.replace(/\n$/, ''), stderr: r.stderr };
  };

  test('mermaid by default; the format follows -o; PNG and SVG come from dot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chops-graph-'));
    try {
      const mm = await cli(['graph', 'rolling-restart']);
      assert.equal(mm.exitCode, 0, mm.stderr);
      assert.equal(mm.stdout + '\n', toMermaid(await diagramFor('rolling-restart')));
      const png = await cli(['graph', 'rolling-restart', '-i', 'inventory.yml', '-o', join(dir, 'rr.png')]);
      assert.equal(png.exitCode, 0, png.stderr);
      const bytes = await readFile(join(dir, 'rr.png'));
      assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG file');
      const svg = await cli(['graph', 'facts', '--format', 'svg']);
      assert.equal(svg.exitCode, 0, svg.stderr);
      assert.match(svg.stdout, /<svg[\s\S]*gather facts[\s\S]*<\/svg>/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('bad input: exit 2 with the place and the fix', async () => {
    const unknown = await cli(['graph', 'no-such-playbook']);
    assert.equal(unknown.exitCode, 2);
    assert.match(unknown.stderr, /unknown playbook or flow "no-such-playbook"\n {2}fix: available: .*rolling-restart/);
    const fmt = await cli(['graph', 'facts', '--format', 'jpeg']);
    assert.equal(fmt.exitCode, 2);
    assert.match(fmt.stderr, /--format must be one of mermaid, dot, svg, png/);
    const param = await cli(['graph', 'facts', '--bogus', 'x']);
    assert.equal(param.exitCode, 2);
    assert.match(param.stderr, /playbook facts has no parameter --bogus/);
    const limit = await cli(['graph', 'facts', '--limit', 'h1']);
    assert.equal(limit.exitCode, 2);
    assert.match(limit.stderr, /--limit needs an inventory/);
  });
});
