// bench:state — what recording a run's progress costs chops, side by side in one run:
//   before   the chops before the journal (git rev BENCH_BEFORE, default 43fa9be, extracted to a
//            temp dir and imported next to this tree): every step transition (start, done)
//            rewrites the whole state file (its own YAML emitter + temp file + rename);
//   rewrite  this tree, the same rewrite per transition, with the JSON state file;
//   journal  this tree as the runner uses it: a transition appends one JSON line to
//            runs/<id>/journal.<epoch>.jsonl (same durability: no fsync until the final state),
//            folded into state.yml at the end.
// Workload: a 20-host rolling restart's state (a once-scoped preflight + 5 steps per host, notes,
// StepResult.data), every step marked started then done, one after the other and awaited (the
// critical path of a run); journal mode also remembers one value per host. Wall and CPU per
// mode, medians of ROUNDS, round-robin. Then log pruning at the end of a run, over RUNS past
// runs that are all within the retention (the usual case): before read every state file whole,
// now only its head.
//
//   npm run bench:state            BENCH_ROUNDS=7 BENCH_HOSTS=20 BENCH_RUNS=2000 BENCH_BEFORE=<rev>
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import * as runlog from '../src/run/runlog.js';
import * as ids from '../src/run/state/ids.js';
import * as steps from '../src/run/state/steps.js';
import * as store from '../src/run/state/store.js';

/** This tree's state modules, in the shape the tree before had them (one module). */
const state = { ...ids, ...steps, ...store };

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const HOSTS = Number(process.env.BENCH_HOSTS ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 2000);
const BEFORE = process.env.BENCH_BEFORE ?? '43fa9be';
const STEPS = ['check peers', 'check replica is idle', 'stop clickhouse-server', 'start clickhouse-server', 'wait until healthy'];
const repo = fileURLToPath(new URL('..', import.meta.url));

/** What the bench uses of a tree: the state module and pruning. */
interface Impl {
  state: any;
  pruneLogs: (dir: string, days: number, opts: { currentRunId?: string }) => Promise<unknown[]>;
}
type Mode = 'before' | 'rewrite' | 'journal';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function loadBefore(root: string): Promise<Impl> {
  const dir = join(root, 'before');
  mkdirSync(dir);
  const tar = await execa('git', ['-C', repo, 'archive', '--format=tar', BEFORE, 'src'], { encoding: 'buffer' });
  await execa('tar', ['-x', '-C', dir], { input: tar.stdout });
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  const st = await import(join(dir, 'src/run/state.ts'));
  const rl = await import(join(dir, 'src/run/runlog.ts'));
  return { state: st, pruneLogs: rl.pruneLogs };
}

function init(impl: Impl, hosts: string[]) {
  return {
    playbook: 'rolling-restart',
    params: { waitTimeout: 300000 },
    inventory: '/etc/chops/inventory.yml',
    inventoryHash: 'f'.repeat(64),
    cluster: 'production',
    steps: impl.state.buildSteps([
      { phase: 'preflight', scope: 'once', steps: ['check topology'], hosts },
      { phase: 'restart', scope: 'rolling', steps: STEPS, hosts },
    ]),
  };
}

const hostNames = () => Array.from({ length: HOSTS }, (_, i) => `ch-${String(Math.floor(i / 2) + 1).padStart(2, '0')}-${(i % 2) + 1}`);

async function oneRun(impl: Impl, dir: string, mode: Mode) {
  const hosts = hostNames();
  const s = new impl.state.RunStore(dir);
  const st = await s.create(init(impl, hosts));
  await s.flush();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let transitions = 0;
  const mark = async (pi: number, step: string, host: string, patch: Record<string, unknown>) => {
    transitions++;
    if (mode === 'journal') return s.mark(st, pi, step, host, patch);
    impl.state.markStep(st, pi, step, host, patch);
    return s.save(st);
  };
  const data = { replicas: [{ database: 'lab', table: 'events_local', queue_size: 0, absolute_delay: 0, log_lag: 0 }], polls: 3 };
  await mark(0, 'check topology', hosts[0], { status: 'started' });
  await mark(0, 'check topology', hosts[0], { status: 'done', changed: false, note: `${HOSTS} hosts match system.macros and system.clusters`, data });
  for (const h of hosts) {
    for (const step of STEPS) {
      await mark(1, step, h, { status: 'started' });
      if (mode === 'journal' && step === 'stop clickhouse-server') await s.remember(st, h, 'restart.previousUptime', 86400);
      await mark(1, step, h, { status: 'done', changed: !step.startsWith('check'), note: `${step} on ${h}: ok after 3 polls`, data });
    }
  }
  st.outcome = 'succeeded';
  await s.save(st);
  await s.flush();
  const c = process.cpuUsage(cpu0);
  const bytes = readFileSync(s.statePath(st.id)).length;
  return { wallMs: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, transitions, bytes };
}

/** RUNS finished runs of this workload, 5 minutes apart, written by IMPL into DIR. */
async function pastRuns(impl: Impl, dir: string): Promise<string> {
  const s = new impl.state.RunStore(dir);
  const st = await s.create(init(impl, hostNames()));
  for (const h of hostNames())
    for (const step of STEPS) impl.state.markStep(st, 1, step, h, { status: 'done', note: `${step} ok`, data: { x: 'y'.repeat(100) } });
  st.outcome = 'succeeded';
  await s.save(st);
  await s.flush();
  const text = readFileSync(s.statePath(st.id), 'utf8');
  const t0 = Date.now() - RUNS * 300_000;
  for (let i = 0; i < RUNS; i++) {
    const id = impl.state.newRunId(new Date(t0 + i * 300_000));
    mkdirSync(s.runDir(id), { recursive: true });
    writeFileSync(s.statePath(id), text.split(st.id).join(id));
  }
  return st.id;
}

async function pruneOnce(impl: Impl, dir: string, current: string): Promise<number> {
  const t0 = performance.now();
  const removed = await impl.pruneLogs(dir, 36500, { currentRunId: current });
  if (removed.length) throw new Error('nothing should be pruned');
  return performance.now() - t0;
}

const root = mkdtempSync(join(tmpdir(), 'chops-bench-state-'));
try {
  const impls: Record<Mode, Impl> = {
    before: await loadBefore(root),
    rewrite: { state, pruneLogs: runlog.pruneLogs },
    journal: { state, pruneLogs: runlog.pruneLogs },
  };
  const modes: Mode[] = ['before', 'rewrite', 'journal'];
  const res = Object.fromEntries(modes.map((m) => [m, { wall: [] as number[], cpu: [] as number[], transitions: 0, bytes: 0 }])) as Record<
    Mode,
    { wall: number[]; cpu: number[]; transitions: number; bytes: number }
  >;
  let k = 0;
  for (const m of modes) await oneRun(impls[m], join(root, `warm${k++}`), m); // JIT warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of modes) {
      const x = await oneRun(impls[m], join(root, `r${k++}`), m);
      res[m].wall.push(x.wallMs);
      res[m].cpu.push(x.cpuMs);
      res[m].transitions = x.transitions;
      res[m].bytes = x.bytes;
    }
  }
  console.log(`# bench:state — ${HOSTS} hosts, ${res.journal.transitions} step transitions per run, medians of ${ROUNDS} rounds (before = ${BEFORE})`);
  for (const m of modes) {
    const w = median(res[m].wall);
    const c = median(res[m].cpu);
    console.log(
      `${m.padEnd(8)} wall ${w.toFixed(1).padStart(7)} ms (${((w * 1000) / res[m].transitions).toFixed(0).padStart(5)} µs/transition)  cpu ${c.toFixed(1).padStart(7)} ms   final state file ${(res[m].bytes / 1024).toFixed(1)} KB`,
    );
  }
  const ratio = (a: Mode, b: Mode, key: 'wall' | 'cpu') => (median(res[a][key]) / median(res[b][key])).toFixed(1);
  console.log(`journal vs before:  ${ratio('before', 'journal', 'wall')}× less wall, ${ratio('before', 'journal', 'cpu')}× less CPU`);
  console.log(
    `journal vs rewrite: ${ratio('rewrite', 'journal', 'wall')}× less wall, ${ratio('rewrite', 'journal', 'cpu')}× less CPU   (JSON rewrite vs the YAML emitter's: ${ratio('before', 'rewrite', 'wall')}× wall, ${ratio('before', 'rewrite', 'cpu')}× CPU)`,
  );

  const cur = { before: await pastRuns(impls.before, join(root, 'prune-before')), after: await pastRuns(impls.journal, join(root, 'prune-after')) };
  const pb: number[] = [];
  const pa: number[] = [];
  for (let r = 0; r < 3; r++) {
    pb.push(await pruneOnce(impls.before, join(root, 'prune-before'), cur.before));
    pa.push(await pruneOnce(impls.journal, join(root, 'prune-after'), cur.after));
  }
  const [b, a] = [median(pb), median(pa)];
  console.log(
    `prune over ${RUNS} past runs, none due (median of 3): before ${b.toFixed(0)} ms (${((b * 1000) / RUNS).toFixed(0)} µs/run), now ${a.toFixed(0)} ms (${((a * 1000) / RUNS).toFixed(0)} µs/run): ${(b / a).toFixed(1)}×`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
