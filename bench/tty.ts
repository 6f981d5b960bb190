// bench:tty — what the terminal display costs: `chops run exec` in a real pseudo-terminal
// (util-linux `script`, `stty cols 160 rows 50`), once with the default output (the live display
// on a terminal) and once with `--output plain`, side by side, round-robin, in one run, on nspawn
// lab hosts over real OpenSSH. Wall time, CPU and peak RSS are chops' own (GNU time around the
// chops process inside the pty). Target (issue 8 #10): the display within 1.2× of plain in wall
// time and RSS, at 20 hosts × 10 commands and at 200 hosts × 2 commands.
//
// Also checks that a pty with no size (stty cols 0 rows 0) still shows progress.
//
//   flock /run/chops-heavy.lock npm run bench:tty        BENCH_TTY_HOSTS=20,200 BENCH_ROUNDS=3
//   CHOPS_TEST_REUSE_LAB=1                               reuse a lab of the bench's name if up
//   BENCH_TTY_HOSTS=200L                                 N hosts with `connection: local` (no lab:
//                                                        for when N lab hosts do not fit; each command
//                                                        is a local `sh`, so only the ratio means much)
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { shq } from '../src/quote.js';
import { CHOPS } from '../test/support/cli.js';
import { type TestLab, testLab } from '../test/support/lab.js';
import { REPO } from '../test/support/process.js';

const SIZES = (process.env.BENCH_TTY_HOSTS ?? '20,200').split(',').map((x) => ({ hosts: Number.parseInt(x, 10), local: x.endsWith('L') }));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TEN = ['true', 'uname -a', 'cat /etc/hostname', 'date +%s', 'id -u', 'cat /proc/uptime', 'cat /proc/loadavg', 'echo hello', 'ls /etc/ssh', 'whoami'];
const TARGET = 1.2;

interface Sample {
  wall: number;
  cpu: number;
  rssMb: number;
  bytes: number;
  out: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const tmp = mkdtempSync(path.join(tmpdir(), 'chops-bench-tty-'));

/** N hosts on this machine (connection: local), 2 replicas per shard, for when a lab does not fit. */
function localHosts(n: number): Pick<TestLab, 'inventoryPath' | 'down'> {
  const reps = Array.from({ length: n }, (_, i) => `{host: l${i + 1}, connection: local}`);
  const shards = Array.from({ length: Math.ceil(n / 2) }, (_, s) => `      - replicas: [${reps.slice(s * 2, s * 2 + 2).join(', ')}]`);
  const inventoryPath = path.join(tmp, `local-${n}.yml`);
  writeFileSync(inventoryPath, `version: 1\nstate: {dir: ${tmp}/state}\nclusters:\n  local:\n    shards:\n${shards.join('\n')}\n`);
  return { inventoryPath, down: async () => {} };
}

/** One chops run inside a pty of the given size; GNU time measures the chops process alone. */
async function inPty(args: string[], size: { cols: number; rows: number }): Promise<Sample> {
  const timeFile = path.join(tmp, 'time');
  const inner = `stty cols ${size.cols} rows ${size.rows}; exec /usr/bin/time -f '%e %U %S %M' -o ${shq(timeFile)} ${shq(process.execPath)} ${[CHOPS, ...args].map(shq).join(' ')}`;
  const env: Record<string, string | undefined> = { ...process.env, TERM: 'xterm-256color', CI: undefined, NO_COLOR: undefined, FORCE_COLOR: undefined };
  const r = await execa('script', ['-qfec', inner, '/dev/null'], {
    cwd: REPO,
    env,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 15 * 60_000,
    maxBuffer: 1 << 30,
  });
  const out = String(r.stdout);
  if (r.exitCode !== 0) throw new Error(`chops ${args.join(' ')} failed in the pty (exit ${r.exitCode}):\n${out.slice(-3000)}\n${r.stderr}`);
  const [wall, user, sys, rssKb] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(/\s+/).map(Number);
  return { wall, cpu: user + sys, rssMb: rssKb / 1024, bytes: Buffer.byteLength(out), out };
}

const rows: string[] = [];
const summary: Record<string, unknown>[] = [];
for (const { hosts, local } of SIZES) {
  const cmds = hosts > 50 ? TEN.slice(0, 2) : TEN;
  const t0 = Date.now();
  const lab = local ? localHosts(hosts) : await testLab({ name: `benchtty${hosts}`, hosts });
  console.error(`${local ? 'local' : 'lab'}: ${hosts} hosts up in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  try {
    const run = (extra: string[]) => ['run', 'exec', '-i', lab.inventoryPath, ...extra, ...cmds.flatMap((c) => ['--cmd', c])];
    const size = { cols: 160, rows: 50 };
    await inPty(run(['--output', 'plain']), size); // warm-up: page cache, sshd's first connections
    const s: Record<'plain' | 'tty', Sample[]> = { plain: [], tty: [] };
    for (let i = 0; i < ROUNDS; i++) {
      s.plain.push(await inPty(run(['--output', 'plain']), size));
      s.tty.push(await inPty(run([]), size)); // the default on a terminal
      console.error(`${hosts} hosts round ${i + 1}/${ROUNDS}: plain ${s.plain.at(-1)!.wall.toFixed(2)} s, display ${s.tty.at(-1)!.wall.toFixed(2)} s`);
    }
    // The default really was the live display (not plain lines), and it drew progress frames.
    const frames = (x: Sample) => (x.out.match(/\x1b\[\d+F/g) ?? []).length;
    if (!/commands \(each host in parallel\): \d+\/\d+ done/.test(s.tty[0].out))
      throw new Error(`the default output in a pty showed no live display:\n${s.tty[0].out.slice(-2000)}`);
    // A pty with no size still shows progress (80×24 assumed).
    const sizeless = await inPty(run([]), { cols: 0, rows: 0 });
    const sizelessOk = /commands \(each host in parallel\): \d+\/\d+ done/.test(sizeless.out);
    const m = (k: 'plain' | 'tty', f: keyof Omit<Sample, 'out'>) => median(s[k].map((x) => x[f]));
    const ratio = { wall: m('tty', 'wall') / m('plain', 'wall'), cpu: m('tty', 'cpu') / m('plain', 'cpu'), rss: m('tty', 'rssMb') / m('plain', 'rssMb') };
    rows.push(
      `| ${String(hosts).padStart(5)} × ${String(cmds.length).padEnd(2)}${local ? ' local' : ' ssh  '} | ${m('plain', 'wall').toFixed(2).padStart(7)} s ${m('plain', 'cpu').toFixed(2).padStart(6)} s ${m('plain', 'rssMb').toFixed(0).padStart(4)} MB ` +
        `| ${m('tty', 'wall').toFixed(2).padStart(7)} s ${m('tty', 'cpu').toFixed(2).padStart(6)} s ${m('tty', 'rssMb').toFixed(0).padStart(4)} MB ` +
        `| ${ratio.wall.toFixed(2)}× ${ratio.cpu.toFixed(2)}× ${ratio.rss.toFixed(2)}× | ${(m('tty', 'bytes') / 1024).toFixed(0)} KiB, ${median(s.tty.map(frames))} frames | ${sizelessOk ? 'yes' : 'NO'}`,
    );
    summary.push({
      hosts,
      local,
      commands: cmds.length,
      rounds: ROUNDS,
      plain: { wall: m('plain', 'wall'), cpu: m('plain', 'cpu'), rssMb: m('plain', 'rssMb') },
      display: { wall: m('tty', 'wall'), cpu: m('tty', 'cpu'), rssMb: m('tty', 'rssMb') },
      ratio,
      sizelessShowsProgress: sizelessOk,
    });
  } finally {
    await lab.down();
  }
}
rmSync(tmp, { recursive: true, force: true });

console.log(`\nterminal display vs --output plain, both in a 160×50 pty, median of ${ROUNDS} rounds (chops process: wall, CPU user+sys, peak RSS)`);
console.log(
  `| hosts × cmds | plain: wall      CPU    RSS  | display: wall    CPU    RSS  | ratio wall CPU RSS (target ≤ ${TARGET}× wall, RSS) | display bytes | pty without size shows progress`,
);
for (const r of rows) console.log(r);
console.log(JSON.stringify(summary));
