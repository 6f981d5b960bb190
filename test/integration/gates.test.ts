// Health gates, the ClickHouse client and SQL quoting against the real replicated lab
// (4 nspawn containers running clickhouse-server 18.16 under systemd, 2 shards × 2 replicas).
// Gates are called outside a full run through a hand-built RunContext (test/support/run-context.ts).
//
//   node --import tsx --test test/integration/gates.test.ts
//   CHOPS_TEST_REUSE_LAB=1 ...   reuse a running lab named chgates (left up afterwards)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadInventory, parseInventory } from '../../src/inventory/load.js';
import type { Inventory } from '../../src/inventory/types.js';
import { GateError, ChopsError } from '../../src/errors.js';
import { chClient, type ChClient } from '../../src/clickhouse/client.js';
import { ClickHouseError } from '../../src/clickhouse/errors.js';
import { sql, sqlIdent, sqlString } from '../../src/clickhouse/sql.js';
import { checkPeersBeforeStop, checkSelfBeforeStop, checkTopology, waitReplicaHealthy } from '../../tasks/clickhouse/gates.js';
import { checkPeersStep } from '../../tasks/clickhouse/replica-steps.js';
import { makeRunContext, type TestRunContext } from '../support/run-context.js';
import { sleep } from '../support/process.js';
import { type TestLab, clickhouseLab, labSh } from '../support/lab.js';
import { HOSTILE } from '../fixtures/hostile-strings.js';

const LAB = 'chgates';
let lab: TestLab;
let inv: Inventory;
let run: TestRunContext;
const timings: Record<string, number> = {};

/** The lab inventory with short gate deadlines (and optionally other edits of the YAML text). */
function variant(edit: (text: string) => string = (t) => t): Inventory {
  let text = readFileSync(lab.inventoryPath, 'utf8');
  text = text.replace(/wait_timeout: \S+/, 'wait_timeout: 5s').replace(/poll_interval: \S+/, 'poll_interval: 200ms');
  return parseInventory(edit(text), lab.inventoryPath);
}

/** Exchange the whole entries (host, address, replica_name...) of hosts A and B in the inventory text. */
function swapHostEntries(text: string, a: string, b: string): string {
  const entry = (name: string) => new RegExp(`^( *)- host: ${name}\\n(?:\\1  .*\\n)*`, 'm');
  const ea = entry(a).exec(text)?.[0];
  const eb = entry(b).exec(text)?.[0];
  assert.ok(ea && eb, 'both hosts in the inventory');
  return text.replace(ea, '\0A').replace(eb, ea).replace('\0A', eb);
}

async function ch(name: string): Promise<ChClient> {
  return chClient(run, inv.hosts.find((h) => h.name === name)!);
}

before(async () => {
  lab = await clickhouseLab(LAB);
  inv = await loadInventory(lab.inventoryPath);
  run = makeRunContext(inv);
  // every replica idle before the first gate
  await waitReplicaHealthy(run.stepContext('ch1'), { since: new Date() });
});

after(async () => {
  await run?.close();
  await lab?.down();
  if (Object.keys(timings).length) console.log(`# timings (ms): ${JSON.stringify(timings)}`);
});

test('18.16: the capability probe runs and chooses the polling paths (no SYNC REPLICA LIGHTWEIGHT, no fast metric polls)', () => {
  const probes = run.events.filter((e: any) => e.type === 'capabilities') as any[];
  assert.ok(probes.length >= 1, 'the probe of ch1 is logged');
  const f = probes[0].features;
  console.log(`# 18.16 capabilities: ${JSON.stringify(f)}`);
  assert.equal(probes[0].version, '18.16.1');
  assert.equal(f['SYNC REPLICA LIGHTWEIGHT'], false, 'SYNC REPLICA on 18.16 waits for the whole queue, has no timeout, cannot be killed');
  assert.equal(f['fast replica metrics'], false, 'no AsynchronousMetricsUpdateInterval: metrics recomputed once a minute');
  assert.equal(f['replicas.replica_is_active'], false);
});

test('healthy lab: topology matches, peers healthy, replica idle, replica healthy', async () => {
  const ctx = run.stepContext('ch1');
  const topo = (await checkTopology(ctx)) as any;
  assert.match(topo.note, /inventory matches the servers: 4\/4/);
  const peers = (await checkPeersBeforeStop(ctx)) as any;
  assert.match(peers.note, /peers healthy: ch2/);
  assert.equal(peers.data.peers[0].host, 'ch2');
  const self = (await checkSelfBeforeStop(ctx)) as any;
  assert.equal(self.data.queueInFlight, 0);
  assert.equal(self.data.pendingDistributedFiles, 0);
  const t0 = performance.now();
  const healthy = (await waitReplicaHealthy(ctx, { since: new Date() })) as any;
  timings.healthyGateOnRunningReplica = Math.round(performance.now() - t0);
  assert.equal(healthy.data.tables, 1);
  assert.equal(typeof healthy.data.answeredAfterMs, 'number');
  assert.equal(typeof healthy.data.caughtUpAfterMs, 'number');
});

test('hostile strings round-trip through sqlString into a real 18.16 server', async () => {
  const c = await ch('ch1');
  for (const s of HOSTILE) {
    const rows = await c.query<{ s: string }>(`SELECT ${sqlString(s)} AS s`);
    assert.equal(rows[0].s, s, `literal ${JSON.stringify(s).slice(0, 80)}`);
    const viaTag = await c.query<{ n: string; s: string }>(sql`SELECT length(${s}) AS n, ${s} AS s`);
    assert.equal(viaTag[0].s, s);
    assert.equal(Number(viaTag[0].n), Buffer.byteLength(s, 'utf8'), 'length() counts the UTF-8 bytes sent');
    if (s !== '') {
      const asIdent = await c.query<Record<string, number>>(`SELECT 1 AS ${sqlIdent(s)}`);
      assert.deepEqual(Object.keys(asIdent[0]), [s], `identifier ${JSON.stringify(s).slice(0, 80)}`);
    }
  }
  // and as a value stored and read back from a replicated table
  const marker = `hostile-${Date.now()}`;
  const values = HOSTILE.map((s, i) => sql`(now(), ${900_000_000 + i}, ${marker + s})`).join(', ');
  await c.command(`INSERT INTO lab.events_local (ts, id, v) VALUES ${values}`);
  const back = await c.query<{ id: string; v: string }>(sql`SELECT id, v FROM lab.events_local WHERE startsWith(v, ${marker}) ORDER BY id`);
  assert.deepEqual(
    back.map((r) => r.v.slice(marker.length)),
    HOSTILE,
  );
});

test('client: 18.16 errors parsed; a timed-out query is killed on the server', async () => {
  const c = await ch('ch1');
  await assert.rejects(
    c.query('SELECT * FROM lab.no_such_table'),
    (e: any) => e instanceof ClickHouseError && e.code === 60 && e.type === 'UNKNOWN_TABLE' && e.host === 'ch1' && /lab\.no_such_table/.test(e.query ?? ''),
  );
  await assert.rejects(c.query(`SELECT {x:UInt32}`), (e: any) => e instanceof ClickHouseError && e.kind === 'server' && e.code === 62);
  let id = '';
  await assert.rejects(c.query('SELECT count() FROM system.numbers WHERE rand() = 0', { timeoutMs: 1000 }), (e: any) => {
    id = /query_id = '(chops-[0-9a-f]+)'/.exec(e.message)?.[1] ?? '';
    return e instanceof ClickHouseError && e.kind === 'timeout' && e.host === 'ch1' && /did not finish within 1s/.test(e.message);
  });
  assert.ok(id);
  let left = -1;
  for (let i = 0; i < 25; i++) {
    left = (await c.query(sql`SELECT count() AS n FROM system.processes WHERE query_id = ${id}`)).map((r: any) => Number(r.n))[0];
    if (left === 0) break;
    await sleep(200);
  }
  assert.equal(left, 0, `query ${id} still running on the server after KILL QUERY`);
});

test('topology mismatch (ch2 and ch3 swapped in the inventory) is refused with every mismatch listed', async () => {
  const swapped = variant((t) => swapHostEntries(t, 'ch2', 'ch3'));
  // what the swap produced: ch3 listed in shard 01, ch2 in shard 02, each with its own address
  const h3 = swapped.hosts.find((h) => h.name === 'ch3')!;
  assert.equal(h3.shardName, '01');
  assert.match(h3.ssh.address, /\.13$/);
  const r2 = makeRunContext(swapped, { selected: ['ch1'] });
  try {
    await assert.rejects(checkTopology(r2.stepContext('ch1')), (e: any) => {
      assert.ok(e instanceof ChopsError);
      assert.match(e.message, /inventory says ch3 is shard 01 replica ch3, the server's macros say shard 02 replica ch3/);
      assert.match(e.message, /inventory says ch2 is shard 02 replica ch2, the server's macros say shard 01 replica ch2/);
      assert.doesNotMatch(e.message, /ch1 is shard|ch4 is shard/);
      assert.ok(e.hint);
      return true;
    });
  } finally {
    await r2.close();
  }
});

test('fetches stopped on ch2: a queue within max_queue_size is caught up once it held; one over it times out naming ch2 and the last value', async () => {
  const short = variant();
  const r2 = makeRunContext(short);
  const c2 = await chClient(r2, short.hosts[1]);
  const c1 = await chClient(r2, short.hosts[0]);
  try {
    await c2.command('SYSTEM STOP FETCHES lab.events_local');
    // 5 parts ch2 does not fetch: queue_size 5 <= max_queue_size 20, delay < 10 s. Caught up means
    // within the peers gate's thresholds, held for gates.caught_up_for (2 s) — not a queue of 0
    // (issue 8 C: under steady inserts the queue hovers at 1-6 and a 0 may never be seen).
    for (let i = 0; i < 5; i++) await c1.command(sql`INSERT INTO lab.events_local (ts, id, v) VALUES (now(), ${10 + i}, ${'while ch2 does not fetch'})`);
    const tHold = performance.now();
    const held = (await waitReplicaHealthy(r2.stepContext('ch2'), { since: new Date() })) as any;
    const holdMs = performance.now() - tHold;
    // (5 GET_PART, and a merge of them may be queued too)
    assert.ok(held.data.queueSize >= 5 && held.data.queueSize <= 20, `passed with the queue it had, not after draining it (queue_size=${held.data.queueSize})`);
    assert.ok(holdMs >= 2000, `the thresholds had to hold for caught_up_for = 2 s (${Math.round(holdMs)} ms)`);
    // 21 more: 26 > 20, behind
    for (let i = 0; i < 21; i++) await c1.command(sql`INSERT INTO lab.events_local (ts, id, v) VALUES (now(), ${100 + i}, ${'more'})`);
    const ctx2 = r2.stepContext('ch2');
    const t0 = performance.now();
    await assert.rejects(waitReplicaHealthy(ctx2, { since: new Date() }), (e: any) => {
      assert.ok(e instanceof GateError, String(e));
      assert.equal(e.host, 'ch2');
      assert.equal(e.gate, 'replica caught up');
      assert.match(
        e.lastValue,
        /^queue_size=(2[1-9]|[3-9]\d|\d{3,}), absolute_delay=\d+(, log_lag=\d+)? \(lab\.events_local queue_size=\d+ > 20(; [^()]+)?\)$/,
      );
      assert.match(
        e.message,
        /^ch2: gate "replica caught up" not passed after 5\.0 s \(last value: queue_size=\d+, absolute_delay=\d+(, log_lag=\d+)? \(lab\.events_local queue_size=\d+ > 20(; [^()]+)?\)\)$/,
      );
      return true;
    });
    const ms = performance.now() - t0;
    assert.ok(ms >= 4500 && ms < 9000, `deadline respected (${Math.round(ms)} ms)`);
    assert.ok(
      r2.notes.some((n) => n.host === 'ch2' && /waiting for "replica caught up": queue_size=/.test(n.text)),
      'progress reported',
    );
    assert.ok(
      // 5 GET_PART, or 6 once the merge ch1 assigned for them reached ch2's queue (a race of the lab, not of chops)
      r2.notes.some((n) => n.host === 'ch2' && /"replica caught up" holding for 2\.0 s: queue_size=[5-9],/.test(n.text)),
      `the hold reported: ${r2.notes
        .filter((n) => n.host === 'ch2')
        .map((n) => n.text)
        .join(' | ')}`,
    );
    // the replica itself is not idle either: it would refuse to be stopped (its 26 fetches listed
    // first, before any merge ch1 assigned meanwhile)
    await assert.rejects(
      checkSelfBeforeStop(ctx2),
      (e: any) =>
        e instanceof GateError && e.host === 'ch2' && /nothing in flight/.test(e.gate) && /replication_queue=\d+ \(GET_PART:\d+[ ;)]/.test(e.lastValue),
    );
  } finally {
    await c2.command('SYSTEM START FETCHES lab.events_local');
    await r2.close();
  }
  // and it catches up after the fetches start again (queue retry back-off may take ~10 s on 18.16)
  const t1 = performance.now();
  const res = (await waitReplicaHealthy(run.stepContext('ch2'), { since: new Date() })) as any;
  timings.catchUpAfterStartFetches = Math.round(performance.now() - t1);
  assert.equal(res.data.queueSize, 0);
});

test('clickhouse-server stopped on ch2: ch1 refuses at once naming ch2; ch2 healthy again after start', async () => {
  await labSh(lab, 'ch2', 'systemctl stop clickhouse-server');
  try {
    const t0 = performance.now();
    await assert.rejects(checkPeersBeforeStop(run.stepContext('ch1')), (e: any) => {
      assert.ok(e instanceof GateError, String(e));
      assert.equal(e.host, 'ch1');
      assert.match(e.message, /^refusing to stop ch1: its peer ch2 \(shard 01\) is down\/unhealthy: service clickhouse-server is inactive/);
      assert.match(e.lastValue, /ch2/);
      return true;
    });
    timings.peerDownRefusal = Math.round(performance.now() - t0);
    assert.ok(timings.peerDownRefusal < 3000, `fails fast, not after the deadline (${timings.peerDownRefusal} ms)`);
    // shard 02 is not concerned
    await checkPeersBeforeStop(run.stepContext('ch3'));
    // rows written while ch2 is down, for it to catch up
    const c1 = await ch('ch1');
    await c1.command(`INSERT INTO lab.events_local (ts, id, v) SELECT now(), number, 'while ch2 is down' FROM numbers(100000)`);
  } finally {
    const since = new Date();
    await labSh(lab, 'ch2', 'systemctl start clickhouse-server');
    const t1 = performance.now();
    const res = (await waitReplicaHealthy(run.stepContext('ch2'), { since })) as any;
    timings.gateAfterStartTotal = Math.round(performance.now() - t1);
    timings.answeredAfterStartMs = res.data.answeredAfterMs;
    timings.caughtUpAfterStartMs = res.data.caughtUpAfterMs;
    assert.equal(res.data.queueSize, 0);
    assert.ok(res.data.answeredAfterMs <= res.data.caughtUpAfterMs);
    assert.match(res.note, /^healthy \d+(\.\d)? (ms|s) after start \(answered after \d+(\.\d)? (ms|s), 1 replicated table\(s\)\)/);
  }
  // and the peer gate passes again
  await checkPeersBeforeStop(run.stepContext('ch1'));
});

test('ch2 itself down: its peers gate names ch2 at once (not its healthy peer ch1); the check-peers step brings it back first', async () => {
  const short = variant();
  const r2 = makeRunContext(short);
  await labSh(lab, 'ch2', 'systemctl stop clickhouse-server');
  try {
    const t0 = performance.now();
    await assert.rejects(checkPeersBeforeStop(r2.stepContext('ch2')), (e: any) => {
      assert.ok(e instanceof GateError, String(e));
      assert.equal(e.host, 'ch2');
      assert.match(
        e.message,
        /^ch2: gate "peers healthy" ch2 itself is down \(service clickhouse-server is inactive\): the inactive replica ch1 sees is ch2 \(last value: ch2: service clickhouse-server is inactive\)$/,
      );
      assert.match(e.hint ?? '', /^start ch2 and wait until it is healthy/);
      assert.doesNotMatch(e.message + (e.hint ?? ''), /bring ch1 back/);
      return true;
    });
    const ms = performance.now() - t0;
    assert.ok(ms < 3000, `diagnosed at once, not after the 5 s deadline (${Math.round(ms)} ms)`);
    // the step: steady state first — start ch2, wait until healthy, then check its peers
    const res = (await checkPeersStep.run(r2.stepContext('ch2'))) as any;
    assert.equal(res.changed, true);
    assert.match(res.note, /^ch2 was inactive: started it first \(healthy .* after start .*\); peers healthy: ch1 \(queue \d+, delay \d+s\)$/);
    assert.equal((await labSh(lab, 'ch2', 'systemctl is-active clickhouse-server')).trim(), 'active');
  } finally {
    await labSh(lab, 'ch2', 'systemctl start clickhouse-server');
    await r2.close();
  }
  await waitReplicaHealthy(run.stepContext('ch2'), { since: new Date() });
});

test('plan mode: gates read real facts (read-only queries), commands are recorded, not sent', async () => {
  const r2 = makeRunContext(inv, { plan: true });
  try {
    const res = (await checkPeersBeforeStop(r2.stepContext('ch3'))) as any;
    assert.match(res.note, /^passes now: peers healthy \(ch4: queue_size=\d+, absolute_delay=\d+\)$/);
    assert.equal(res.data.passedNow, true);
    // a server never restarted by the plan is not "healthy N s after start": what passes now
    const healthy = (await waitReplicaHealthy(r2.stepContext('ch3'), { since: new Date() })) as any;
    assert.match(healthy.note, /^passes now: server answers \(Ok\.\); replica caught up \(queue_size=\d+, absolute_delay=\d+\)$/);
    // commands are recorded by the plan, not sent
    const c3 = await chClient(r2, inv.hosts[2]);
    await c3.command('SYSTEM STOP MERGES lab.events_local');
    const planned = r2.session.plannedChanges();
    assert.ok(planned.some((p) => p.host === 'ch3' && /clickhouse-sql> SYSTEM STOP MERGES/.test(p.command)));
    // queries in plan mode run read-only
    const ro = await c3.query<{ value: string }>(`SELECT value FROM system.settings WHERE name = 'readonly'`);
    assert.equal(ro[0].value, '2');
  } finally {
    await r2.close();
  }
});
