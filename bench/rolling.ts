// bench:rolling — what `chops run rolling-restart` adds, per replica, beyond ClickHouse's own
// stop, start and catch-up, on the replicated ClickHouse lab (2 shards × 2 replicas, 18.16).
//
// Side by side, round-robin, in one run:
//   chops     `chops run rolling-restart --json`: every replica's block is timed from its first
//             step's start to its last step's end (step-start/step-done events), and attributed
//             to steps with their durationMs (gates, stop, start, wait until healthy).
//   baseline  the bare minimum the same restart needs, with the same order (shards in parallel,
//             replicas one by one): inside the container `systemctl stop` and `systemctl start`
//             each timed by the container's own clock (so no transport cost is counted), then
//             polling the node over HTTP every 10 ms until /ping answers and its replicas are
//             writable, caught up (empty queue) and see all replicas.
// ClickHouse's own stop in the chops rounds is read from the container's journal (systemd's
// "Stopping" → "Stopped"): the stop varies most (0.7–1.2 s) and must come from the same round.
// added = chops block − (that stop + the baseline's median start + to-healthy) per replica;
// target ≤ 0.2 s.
//
// chops runs twice per round: with the lab inventory's gates.poll_interval (200ms) and with the
// documented default (500ms). Gates poll every 25 ms at first and back off to that interval, so a
// restarted server is noticed within a few tens of ms whatever the setting.
//
//   npm run bench:rolling            BENCH_ROUNDS=5 (default 3)
//   CHOPS_TEST_REUSE_LAB=1           reuse the bench's lab when it is already up (not torn down)
import assert from 'node:assert/strict';
import { type LabNode, chQuery, ping, waitClusterIdle } from '../test/support/clickhouse.js';
import { chops } from '../test/support/cli.js';
import { inventoryVariant } from '../test/support/inventory.js';
import { type TestLab as ChLab, clickhouseLab, labSh } from '../test/support/lab.js';
import { runProcess, sleep } from '../test/support/process.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TARGET_ADDED_MS = 200;
const STEPS = ['check peers', 'check replica is idle', 'stop clickhouse-server', 'start clickhouse-server', 'wait until healthy'] as const;

interface ChopsRound {
  totalMs: number; // wall time of the chops process
  runMs: number; // run-end durationMs (inside the process)
  preflightMs: number;
  replicas: Record<string, { blockMs: number; steps: Record<string, number>; journalStopMs?: number; wait?: unknown }>;
}
interface BaselineRound {
  totalMs: number;
  replicas: Record<string, { stopMs: number; startMs: number; toHealthyMs: number; ownMs: number }>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const fmt = (ms: number) => (ms / 1000).toFixed(3);

async function chopsRound(lab: ChLab, nodes: LabNode[], inventoryPath: string): Promise<ChopsRound> {
  const since = Math.floor(Date.now() / 1000) - 1;
  const r = await chops(['run', 'rolling-restart', '-i', inventoryPath, '--yes', '--json']).done;
  assert.equal(r.code, 0, `chops failed:\n${r.stdout.slice(-3000)}\n${r.stderr}`);
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  const out: ChopsRound = { totalMs: r.ms, runMs: 0, preflightMs: 0, replicas: {} };
  const firstStart: Record<string, number> = {};
  for (const ev of events) {
    const t = Date.parse(ev.ts);
    if (ev.type === 'run-end') out.runMs = ev.durationMs;
    if (ev.phase === 'preflight' && ev.type === 'step-done') out.preflightMs += ev.durationMs;
    if (ev.phase !== 'restart replicas') continue;
    const rep = (out.replicas[ev.host] ??= { blockMs: 0, steps: {} });
    if (ev.type === 'step-start' && ev.step === STEPS[0]) firstStart[ev.host] = t;
    if (ev.type === 'step-done') {
      rep.steps[ev.step] = ev.durationMs;
      if (ev.step === STEPS[STEPS.length - 1]) rep.blockMs = t - firstStart[ev.host];
    }
    if (ev.type === 'result' && ev.step === 'wait until healthy') rep.wait = ev.data;
  }
  for (const n of nodes) out.replicas[n.name].journalStopMs = await journalStopMs(lab, n.name, since);
  return out;
}

/** systemd's own record of the last stop since SINCE (unix s): "Stopping" → "Stopped", in ms. */
async function journalStopMs(lab: ChLab, host: string, since: number): Promise<number | undefined> {
  const out = await labSh(
    lab,
    host,
    `journalctl -u clickhouse-server -o short-unix --no-pager --since @${since} | grep -E 'systemd\\[1\\]: (Stopping|Stopped) clickhouse-server'`,
  );
  let stopping: number | undefined;
  let stopped: number | undefined;
  for (const line of out.split('\n')) {
    const [ts] = line.split(' ');
    if (/Stopping/.test(line)) stopping = Number(ts);
    else if (/Stopped/.test(line) && stopping !== undefined) stopped = Number(ts);
  }
  return stopping !== undefined && stopped !== undefined ? (stopped - stopping) * 1000 : undefined;
}

/** `systemctl ACTION` inside the container, timed by the container's clock (ms). */
async function timedSystemctl(lab: ChLab, host: string, action: 'stop' | 'start'): Promise<number> {
  const out = await labSh(lab, host, `a=$(date +%s%N); systemctl ${action} clickhouse-server; b=$(date +%s%N); echo $(( (b - a) / 1000 ))`);
  return Number(out.trim()) / 1000;
}

const HEALTHY_SQL =
  'SELECT count() FROM system.replicas WHERE is_readonly OR is_session_expired OR queue_size > 0 OR active_replicas < total_replicas OR absolute_delay > 10';

async function waitHealthyBare(n: LabNode): Promise<number> {
  const t0 = performance.now();
  const deadline = t0 + 120_000;
  while ((await ping(n, 1000)) !== 'up') {
    if (performance.now() > deadline) throw new Error(`${n.name}: no /ping`);
    await sleep(10);
  }
  for (;;) {
    const bad = await chQuery(n, HEALTHY_SQL, { timeoutMs: 2000 }).then(
      (s) => Number(s.trim()),
      () => 1,
    );
    if (bad === 0) return performance.now() - t0;
    if (performance.now() > deadline) throw new Error(`${n.name}: not healthy`);
    await sleep(10);
  }
}

async function baselineRound(lab: ChLab, nodes: LabNode[]): Promise<BaselineRound> {
  const out: BaselineRound = { totalMs: 0, replicas: {} };
  const t0 = performance.now();
  const shards = [...new Set(nodes.map((n) => n.shard))].map((s) => nodes.filter((n) => n.shard === s));
  await Promise.all(
    shards.map(async (replicas) => {
      for (const n of replicas) {
        const stopMs = await timedSystemctl(lab, n.name, 'stop');
        const startMs = await timedSystemctl(lab, n.name, 'start');
        const toHealthyMs = await waitHealthyBare(n);
        out.replicas[n.name] = { stopMs, startMs, toHealthyMs, ownMs: stopMs + startMs + toHealthyMs };
      }
    }),
  );
  out.totalMs = performance.now() - t0;
  return out;
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')).join('\n');
}

// ---------------------------------------------------------------------------------------------
const build = await runProcess('npm', ['run', '--silent', 'build']);
assert.equal(build.code, 0, `npm run build failed:\n${build.stdout}${build.stderr}`);

const lab = await clickhouseLab('chops-rrbench');
try {
  const nodes = lab.nodes;
  await waitClusterIdle(nodes);
  // chops as the lab inventory configures it (gates.poll_interval 200ms), and with the documented
  // default of 500ms: gates poll fast first and back off to that interval, so both should match
  const variants = [
    { label: 'chops, poll_interval 200ms (lab inventory)', inventory: lab.inventoryPath, rounds: [] as ChopsRound[] },
    {
      label: 'chops, poll_interval 500ms (default)',
      inventory: inventoryVariant(lab.inventoryPath, 'poll500', (doc) => (doc.defaults.gates.poll_interval = '500ms')),
      rounds: [] as ChopsRound[],
    },
    // The after-start gate holds a caught-up replica for gates.caught_up_for (default 2s) before
    // it counts as healthy: gate policy, not chops' work. Without the hold, what is left is chops.
    {
      label: 'chops, poll_interval 200ms, caught_up_for 0s (chops own work)',
      inventory: inventoryVariant(lab.inventoryPath, 'nohold', (doc) => (doc.defaults.gates.caught_up_for = '0s')),
      rounds: [] as ChopsRound[],
    },
  ];
  const baseRounds: BaselineRound[] = [];
  const kinds = ['baseline', ...variants.map((_, i) => i)] as const;
  for (let i = 0; i < ROUNDS; i++) {
    // rotate the order so drift (page cache, ZooKeeper sessions) does not favour one side
    const order = kinds.map((_, k) => kinds[(k + i) % kinds.length]);
    for (const what of order) {
      await waitClusterIdle(nodes);
      if (what === 'baseline') baseRounds.push(await baselineRound(lab, nodes));
      else variants[what].rounds.push(await chopsRound(lab, nodes, variants[what].inventory));
    }
    process.stderr.write(
      `round ${i + 1}/${ROUNDS}: baseline ${fmt(baseRounds.at(-1)!.totalMs)} s, ${variants.map((v) => `${v.label.split(',')[1].trim()} ${fmt(v.rounds.at(-1)!.totalMs)} s`).join(', ')}\n`,
    );
  }

  const med = <T>(rounds: T[], f: (r: T) => number | undefined) =>
    median(rounds.map(f).filter((x): x is number => typeof x === 'number' && Number.isFinite(x)));
  console.log(`\nrolling restart of the ClickHouse lab (${nodes.length} replicas, 2 shards), medians of ${ROUNDS} rounds, seconds`);
  const verdicts: string[] = [];
  for (const v of variants) {
    const rows: string[][] = [];
    let worstAdded = 0;
    for (const n of nodes) {
      const bare = {
        stop: med(baseRounds, (r) => r.replicas[n.name].stopMs),
        start: med(baseRounds, (r) => r.replicas[n.name].startMs),
        healthy: med(baseRounds, (r) => r.replicas[n.name].toHealthyMs),
      };
      const startToHealthy = med(baseRounds, (r) => r.replicas[n.name].startMs + r.replicas[n.name].toHealthyMs);
      const chStop = med(v.rounds, (r) => r.replicas[n.name]?.journalStopMs);
      const own = chStop + startToHealthy;
      const block = med(v.rounds, (r) => r.replicas[n.name]?.blockMs);
      const added = med(v.rounds, (r) => r.replicas[n.name].blockMs - (r.replicas[n.name].journalStopMs ?? NaN) - startToHealthy);
      worstAdded = Math.max(worstAdded, added);
      const step = (s: string) => fmt(med(v.rounds, (r) => r.replicas[n.name]?.steps[s]));
      rows.push([
        n.name,
        fmt(bare.stop),
        fmt(bare.start),
        fmt(bare.healthy),
        fmt(chStop),
        fmt(own),
        step('check peers'),
        step('check replica is idle'),
        step('stop clickhouse-server'),
        step('start clickhouse-server'),
        step('wait until healthy'),
        fmt(block),
        fmt(added),
        `${(block / own).toFixed(2)}x`,
        added <= TARGET_ADDED_MS ? 'ok' : 'MISS',
      ]);
    }
    console.log(`\n${v.label}\n`);
    console.log(
      table(
        [
          'replica',
          'bare stop',
          'bare start',
          'bare→healthy',
          'CH stop*',
          'CH own',
          'peers',
          'idle',
          'stop',
          'start',
          'wait',
          'chops block',
          'added',
          'ratio',
          '≤0.2s',
        ],
        rows,
      ),
    );
    verdicts.push(
      `${v.label}: chops adds at most ${fmt(worstAdded)} s per replica beyond ClickHouse's own stop+start+catch-up (target ≤ ${fmt(TARGET_ADDED_MS)} s): ${worstAdded <= TARGET_ADDED_MS ? 'MET' : 'NOT MET'}`,
    );
  }
  console.log(`
bare stop/start: systemctl inside the container, timed by its clock, in the baseline rounds; bare→healthy: from the end
  of start until /ping answers and system.replicas say writable, caught up, all replicas active (polled every 10 ms).
CH stop*: systemd's Stopping→Stopped in the journal during the chops rounds. CH own = CH stop* + bare start + bare→healthy.
chops block: a replica's first step start → "wait until healthy" done (--json events); peers..wait: each step's durationMs.
added = chops block − CH own, per round, median; ratio = chops block / CH own.
`);

  const baseTotal = med(baseRounds, (r) => r.totalMs);
  const rows: string[][] = [['baseline (bare stop/start/poll, same order)', fmt(baseTotal), '1.00x']];
  for (const v of variants) {
    const total = med(v.rounds, (r) => r.totalMs);
    const run = med(v.rounds, (r) => r.runMs);
    rows.push([`${v.label}: process wall time`, fmt(total), `${(total / baseTotal).toFixed(2)}x`]);
    rows.push([`${v.label}: run-start → run-end`, fmt(run), `${(run / baseTotal).toFixed(2)}x`]);
    rows.push([`  of which preflight (check topology)`, fmt(med(v.rounds, (r) => r.preflightMs)), '']);
  }
  console.log(table(['whole rolling restart', 'seconds', 'vs baseline'], rows));
  console.log(`\n${verdicts.join('\n')}`);
} finally {
  await lab.down();
}
