// Embedded ClickHouse Keeper as one group across the run (issue 9 #3): three Keeper members across
// two shards (a, b in shard 1; c in shard 2), both shards worked on at once: never two members
// down, the second waits for the first to be a follower again and the ensemble in sync. Each host
// is a local endpoint answering as a 24.8 server with embedded Keeper does
// (test/helpers/fake-clickhouse-http.ts; the Keeper* metrics as
// src/Coordination/KeeperAsynchronousMetrics.cpp fills them: followers counts on the leader only).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInventory } from '../../src/inventory/load.js';
import { checkKeeperBeforeStop, ensembleProblem, waitKeeperBack } from '../../tasks/clickhouse/gates/keeper.js';
import { checkTopology } from '../../tasks/clickhouse/topology.js';
import { parseKeeperState } from '../../facts/clickhouse/keeper.js';
import { makeRunContext } from '../support/run-context.js';
import { startFakeClickHouse, VERSION, type FakeClickHouse } from '../helpers/fake-clickhouse-http.js';

type Role = 'leader' | 'follower';
const hosts: Record<string, { keeper?: Role; down: boolean; fake?: FakeClickHouse }> = {
  a: { keeper: 'follower', down: false },
  b: { keeper: 'leader', down: false },
  c: { keeper: 'follower', down: false },
  d: { down: false },
};
/** Every moment at which some members were down, as the fakes saw it. */
const downSets: string[][] = [];

function metrics(name: string): Record<string, unknown>[] {
  const h = hosts[name];
  if (!h.keeper) return []; // no embedded Keeper: no Keeper* rows
  const followers = Object.values(hosts).filter((x) => x.keeper === 'follower');
  const rows: Record<string, unknown>[] = ['Leader', 'Follower', 'Observer', 'Standalone'].map((r) => ({
    metric: `KeeperIs${r}`,
    value: h.keeper === r.toLowerCase() ? 1 : 0,
  }));
  rows.push({ metric: 'KeeperFollowers', value: h.keeper === 'leader' ? followers.length : 0 });
  rows.push({ metric: 'KeeperSyncedFollowers', value: h.keeper === 'leader' ? followers.filter((x) => !x.down).length : 0 });
  return rows;
}

function setDown(name: string, down: boolean): void {
  hosts[name].down = down;
  downSets.push(Object.keys(hosts).filter((n) => hosts[n].down && hosts[n].keeper));
}

before(async () => {
  for (const name of Object.keys(hosts)) {
    hosts[name].fake = await startFakeClickHouse(
      (q) => {
        if (/FROM system\.asynchronous_metrics/.test(q)) return { rows: metrics(name) };
        if (/FROM system\.macros/.test(q))
          return {
            rows: [
              { macro: 'shard', substitution: name < 'c' ? '1' : '2' },
              { macro: 'replica', substitution: name },
            ],
          };
        if (/FROM system\.clusters/.test(q))
          return {
            rows: [
              { shard_num: 1, replicas: '2' },
              { shard_num: 2, replicas: '2' },
            ],
          };
        if (q.includes("SELECT 'version' AS kind")) return { rows: [{ kind: 'version', name: VERSION, tbl: '' }] };
        return { error: { code: 62, name: 'SYNTAX_ERROR', message: `no answer for ${q.slice(0, 60)}` } };
      },
      () => hosts[name].down,
    );
  }
});
after(async () => {
  for (const h of Object.values(hosts)) await h.fake?.close();
});

function inventory() {
  const r = (n: string) => `{host: ${n}, connection: local, clickhouse: {http_port: ${hosts[n].fake!.port}}}`;
  return parseInventory(
    `version: 1
defaults:
  clickhouse: {status_command: 'true'}
  gates: {wait_timeout: 10s, poll_interval: 50ms}
clusters:
  k:
    shards:
      - {name: '1', replicas: [${r('a')}, ${r('b')}]}
      - {name: '2', replicas: [${r('c')}, ${r('d')}]}
`,
    join(tmpdir(), 'inventory.yml'),
  );
}

test('Keeper metrics: member or not, role, followers on the leader', () => {
  assert.deepEqual(parseKeeperState([]), { member: false });
  assert.deepEqual(
    parseKeeperState([
      { metric: 'KeeperIsLeader', value: 1 },
      { metric: 'KeeperFollowers', value: 2 },
      { metric: 'KeeperSyncedFollowers', value: 1 },
    ]),
    { member: true, role: 'leader', followers: 2, syncedFollowers: 1 },
  );
  assert.equal(
    ensembleProblem([
      { host: 'a', state: { member: true, role: 'follower' } },
      { host: 'b', state: { member: true, role: 'leader', followers: 2, syncedFollowers: 1 } },
      { host: 'c', state: { member: true, role: 'follower' } },
    ]),
    'leader b: 1/2 followers in sync',
  );
  assert.match(ensembleProblem([{ host: 'a', error: 'server not answering' }])!, /not answering: a/);
});

test('three members across two shards, shards in parallel: never two members down at once', async () => {
  const run = makeRunContext(inventory());
  try {
    const topo = (await checkTopology(run.stepContext('a'))) as any;
    assert.match(topo.note, /embedded Keeper on a, b, c \(one of them down at a time\)/);
    const order: string[] = [];
    // shard 1 works on a, shard 2 on c, at the same time (what --parallel-shards 2 does)
    const replica = async (name: string) => {
      const ctx = run.stepContext(name);
      const before = (await checkKeeperBeforeStop(ctx)) as any;
      assert.match(before.note, new RegExp(`^Keeper ensemble healthy \\(3 member\\(s\\): .*\\); ${name} holds the run's Keeper slot$`));
      order.push(`${name} stops`);
      setDown(name, true); // stop
      await new Promise((r) => setTimeout(r, 300));
      setDown(name, false); // start; it rejoins as a follower
      order.push(`${name} started`);
      const back = (await waitKeeperBack(ctx)) as any;
      assert.match(back.note, /^Keeper member back \(keeper role follower\)$/);
      order.push(`${name} back`);
    };
    await Promise.all([replica('a'), replica('c')]);
    assert.ok(
      downSets.every((s) => s.length <= 1),
      `never two members down: ${JSON.stringify(downSets)}`,
    );
    const [first] = order;
    const other = first.startsWith('a') ? 'c' : 'a';
    assert.deepEqual(
      order.slice(3),
      [`${other} stops`, `${other} started`, `${other} back`],
      `the second member stopped only after the first was back: ${order.join(', ')}`,
    );
    // d carries no Keeper: no slot, no wait
    const d = (await checkKeeperBeforeStop(run.stepContext('d'))) as any;
    assert.equal(d.note, 'no embedded Keeper');
  } finally {
    await run.close();
  }
});
