// AGENT_FLOW (drawn by `chops graph`) must be the agent's real flow: the same phases, the same
// exit codes, every exit the script takes present as an edge, every edge's exit a real one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_BODY } from '../../templates/backup/agent-body.js';
import { AGENT_EXIT_CODES, AGENT_EXIT_MEANING, AGENT_EXITS_OUTSIDE_FLOW, AGENT_FLOW } from '../../templates/backup/agent-flow.js';
import { agentExitMeaning } from '../../src/commands/backup.js';

// the script's code without its comments (a comment may say "phase" too)
const CODE = AGENT_BODY.split('\n')
  .filter((l) => !/^\s*#/.test(l))
  .join('\n');
const scriptPhases = () =>
  new Set([...CODE.matchAll(/(?:^|[\s;])phase ([a-z][a-z-]*)\b|PHASE=([a-z][a-z-]*)/gm)].map((m) => m[1] ?? m[2]).filter((p) => p !== 'none'));
const scriptCodes = () => Object.fromEntries([...AGENT_BODY.matchAll(/^(EX_[A-Z]+)=(\d+)$/gm)].map((m) => [m[1], Number(m[2])]));

test('AGENT_FLOW has exactly the phases the script logs', () => {
  const nodes = new Set(AGENT_FLOW.nodes.map((n) => n.id));
  assert.deepEqual([...scriptPhases()].sort(), [...nodes].sort());
});

test("AGENT_FLOW exit codes are the script's EX_* values, each documented", () => {
  assert.deepEqual(scriptCodes(), { ...AGENT_EXIT_CODES });
  for (const code of Object.values(AGENT_EXIT_CODES)) {
    assert.ok(AGENT_EXIT_MEANING[code], `exit ${code} has no meaning`);
    assert.notEqual(agentExitMeaning(code), `exit ${code}`, `chops backup run does not explain exit ${code}`);
    // and the script header says it too
    assert.match(renderHeader(), new RegExp(`(^|\\s)${code} `));
  }
});

test('every exit the script takes is an edge of AGENT_FLOW (or one of the documented outside ones), and back', () => {
  const used = new Set<number>(
    [...AGENT_BODY.matchAll(/(?:finish|exit) "\$(EX_[A-Z]+)"/g)].map((m) => AGENT_EXIT_CODES[m[1] as keyof typeof AGENT_EXIT_CODES]),
  );
  const inFlow = new Set(AGENT_FLOW.edges.filter((e) => e.exit !== undefined).map((e) => e.exit!));
  for (const c of used)
    assert.ok(inFlow.has(c) || (AGENT_EXITS_OUTSIDE_FLOW as readonly number[]).includes(c), `the script exits ${c}; AGENT_FLOW has no edge for it`);
  for (const c of inFlow) assert.ok(used.has(c), `AGENT_FLOW exits ${c}; the script never does`);
  for (const c of AGENT_EXITS_OUTSIDE_FLOW) assert.ok(used.has(c));
});

test('AGENT_FLOW is a connected graph from start to end', () => {
  const ids = new Set(AGENT_FLOW.nodes.map((n) => n.id));
  for (const e of AGENT_FLOW.edges) assert.ok(ids.has(e.from) && ids.has(e.to), `edge ${e.from} → ${e.to}`);
  const seen = new Set(['start']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const e of AGENT_FLOW.edges)
      if (seen.has(e.from) && !seen.has(e.to)) {
        seen.add(e.to);
        grew = true;
      }
  }
  assert.deepEqual(
    [...ids].filter((i) => !seen.has(i)),
    [],
  );
  // a refusal ends the run: nothing leaves it
  for (const n of AGENT_FLOW.nodes.filter((x) => x.kind === 'refusal' || x.kind === 'end'))
    assert.equal(AGENT_FLOW.edges.filter((e) => e.from === n.id).length, 0, n.id);
});

import { renderAgent } from '../../templates/backup/agent.js';
import { AGENT_PATHS } from '../../templates/backup/paths.js';
function renderHeader(): string {
  return renderAgent({
    paths: AGENT_PATHS,
    hostName: 'h',
    cluster: 'c',
    shard: '1',
    enabled: true,
    activeHost: 'h',
    namePrefix: '',
    keepLocal: 1,
    keepRemote: 1,
    fullIntervalSeconds: 1,
    maxChain: 1,
    lockWaitSeconds: 1,
    commandTimeoutSeconds: 1,
    listTimeoutSeconds: 1,
  }).split('\nHOST_NAME=')[0];
}
