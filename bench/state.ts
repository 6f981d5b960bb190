// bench:state — what recording a run's progress costs chops, per step, side by side in one run:
//   rewrite  what chops did up to this change: every step transition (start, done) rewrites the
//            whole state file (serialize + temp file + rename), awaited before the step goes on;
//   journal  every transition appends one JSON line to runs/<id>/journal.<epoch>.jsonl (same
//            durability: no fsync until the run's final state), folded into state.yml at the end.
// Workload: a 20-host rolling restart's state (a once-scoped preflight + 5 steps per host,
// notes, StepResult.data and per-host memory), every step marked started then done, one step
// at a time (the critical path of a run). Wall and CPU per mode, medians of ROUNDS, ratios.
// Then log pruning over RUNS past runs that are all within the retention (the common case at
// the end of every run): reads only each state file's head now, the whole file before.
//
//   npm run bench:state            BENCH_ROUNDS=7 BENCH_HOSTS=20 BENCH_RUNS=2000
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pruneLogs } from '../src/run/runlog.js';
import * as state from '../src/run/state.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const HOSTS = Number(process.env.BENCH_HOSTS ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 2000);
const STEPS = ['check peers', 'check replica is idle', 'stop clickhouse-server', 'start clickhouse-server', 'wait until healthy'];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

type Mode = 'rewrite' | 'journal';
const store = state.RunStore as any;
const hasJournal = typeof store.prototype.mark === 'function';

function init(hosts: string[]) {
  return {
    playbook: 'rolling-restart',
    params: { waitTimeout: 300000 },
    inventory: '/etc/chops/inventory.yml',
    inventoryHash: 'f'.repeat(64),
    cluster: 'production',
    steps: state.buildSteps([
      { phase: 'preflight', scope: 'once', steps: ['check topology'], hosts },
      { phase: 'restart', scope: 'rolling', steps: STEPS, hosts },
    ]),
  };
}

async function oneRun(dir: string, mode: Mode): Promise<{ wallMs: number; cpuMs: number; transitions: number }> {
  const hosts = Array.from({ length: HOSTS }, (_, i) => `ch-${String(Math.floor(i / 2) + 1).padStart(2, '0')}-${(i % 2) + 1}`);
  const s = new state.RunStore(dir);
  const st = await s.create(init(hosts));
  await s.flush();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let transitions = 0;
  const mark = async (pi: number, step: string, host: string, patch: any) => {
    transitions++;
    if (mode === 'journal') return (s as any).mark(st, pi, step, host, patch);
    state.markStep(st, pi, step, host, patch);
    return s.save(st);
  };
  const data = { replicas: [{ database: 'lab', table: 'events_local', queue_size: 0, absolute_delay: 0, log_lag: 0 }], polls: 3 };
  await mark(0, 'check topology', hosts[0], { status: 'started' });
  await mark(0, 'check topology', hosts[0], { status: 'done', changed: false, note: `${HOSTS} hosts match system.macros and system.clusters`, data });
  for (const h of hosts) {
    for (const step of STEPS) {
      await mark(1, step, h, { status: 'started' });
      if (mode === 'journal' && step === 'stop clickhouse-server') await (s as any).remember(st, h, 'restart.previousUptime', 86400);
      await mark(1, step, h, { status: 'done', changed: !step.startsWith('check'), note: `${step} on ${h}: ok after 3 polls`, data });
    }
  }
  st.outcome = 'succeeded';
  await s.save(st);
  await s.flush();
  return { wallMs: performance.now() - t0, cpuMs: (() => { const c = process.cpuUsage(cpu0); return (c.user + c.system) / 1000; })(), transitions };
}

async function pruneBench(dir: string): Promise<number> {
  const s = new state.RunStore(dir);
  const hosts = Array.from({ length: HOSTS }, (_, i) => `h${i}`);
  const st = await s.create(init(hosts));
  for (const h of hosts) for (const step of STEPS) state.markStep(st, 1, step, h, { status: 'done', note: `${step} ok`, data: { x: 'y'.repeat(100) } } as any);
  st.outcome = 'succeeded';
  await s.save(st);
  await s.flush();
  const { readFileSync, writeFileSync, mkdirSync } = await import('node:fs');
  const text = readFileSync(s.statePath(st.id), 'utf8');
  const day = new Date('2026-11-21T00:00:00Z').getTime();
  for (let i = 0; i < RUNS; i++) {
    const id = state.newRunId(new Date(day + i * 300_000));
    mkdirSync(s.runDir(id), { recursive: true });
    writeFileSync(s.statePath(id), text.split(st.id).join(id));
  }
  const t0 = performance.now();
  const removed = await pruneLogs(dir, 36500, { currentRunId: st.id });
  if (removed.length) throw new Error('nothing should be pruned');
  return performance.now() - t0;
}

const modes: Mode[] = hasJournal ? ['rewrite', 'journal'] : ['rewrite'];
const res: Record<Mode, { wall: number[]; cpu: number[]; transitions: number }> = {
  rewrite: { wall: [], cpu: [], transitions: 0 },
  journal: { wall: [], cpu: [], transitions: 0 },
};
const root = mkdtempSync(join(tmpdir(), 'chops-bench-state-'));
try {
  let k = 0;
  for (const m of modes) await oneRun(join(root, `warm${k++}`), m); // JIT warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of modes) {
      const x = await oneRun(join(root, `r${k++}`), m);
      res[m].wall.push(x.wallMs);
      res[m].cpu.push(x.cpuMs);
      res[m].transitions = x.transitions;
    }
  }
  const size = (await import('node:fs')).statSync;
  console.log(`# bench:state — ${HOSTS} hosts, ${res.rewrite.transitions} step transitions per run, medians of ${ROUNDS} rounds`);
  for (const m of modes) {
    const w = median(res[m].wall);
    const c = median(res[m].cpu);
    console.log(`${m.padEnd(8)} wall ${w.toFixed(1)} ms (${((w * 1000) / res[m].transitions).toFixed(0)} µs/transition)  cpu ${c.toFixed(1)} ms`);
  }
  if (hasJournal) {
    const rw = median(res.rewrite.wall) / median(res.journal.wall);
    const rc = median(res.rewrite.cpu) / median(res.journal.cpu);
    console.log(`journal vs rewrite: ${rw.toFixed(1)}× less wall, ${rc.toFixed(1)}× less CPU`);
  }
  void size;
  const pruneMs = await pruneBench(join(root, 'prune'));
  console.log(`prune over ${RUNS} past runs (none due): ${pruneMs.toFixed(0)} ms (${((pruneMs * 1000) / RUNS).toFixed(0)} µs/run)`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
