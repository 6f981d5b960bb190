// Ctrl-C on a terminal (issue 8 I): chops runs in a real pseudo-terminal (util-linux `script`),
// with the live display on, on a local-connection inventory, running `sleep 5` on two hosts.
// The first SIGINT is acknowledged at once, with the resume command, while the run goes on;
// the second one prints the resume command and exits 130 — the live display neither swallows
// nor delays either. Also: a pty without a size (cols 0, rows 0) still shows progress.
//
// SIGINT goes to the chops process itself (as `kill -INT`): a Ctrl-C typed into the pty would
// also reach the local `sleep` children (same process group), which remote commands never see.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { execa } from 'execa';
import { parse as parseYaml } from 'yaml';
import { shq } from '../../src/quote.js';
import { CHOPS } from '../support/cli.js';
import { REPO, sleep } from '../support/process.js';

const dir = mkdtempSync(path.join(tmpdir(), 'chops-ctrlc-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const inventory = path.join(dir, 'inventory.yml');
writeFileSync(
  inventory,
  `version: 1\nstate: {dir: ${dir}/state}\nclusters:\n  c1:\n    shards:\n      - replicas: [{host: a1, connection: local}, {host: a2, connection: local}]\n`,
);

/** chops in a pty of SIZE; the handle, its output so far, and the pid of chops itself. */
function inPty(args: string[], size: { cols: number; rows: number }) {
  const inner = `stty cols ${size.cols} rows ${size.rows}; exec ${shq(process.execPath)} ${[CHOPS, ...args].map(shq).join(' ')}`;
  const env = { ...process.env, TERM: 'xterm-256color', CI: undefined, NO_COLOR: '1' };
  const child = execa('script', ['-qfec', inner, '/dev/null'], { cwd: REPO, env, extendEnv: false, reject: false, stdin: 'ignore', timeout: 60_000 });
  const seen = { text: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (seen.text += d));
  const chopsPid = async (): Promise<number> => {
    for (let i = 0; i < 200; i++) {
      // `script` forks one child, which execs node (chops).
      const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
      if (kids && readFileSync(`/proc/${kids.split(' ')[0]}/cmdline`, 'utf8').includes(CHOPS)) return Number(kids.split(' ')[0]);
      await sleep(25);
    }
    throw new Error('chops did not start in the pty');
  };
  return { child, seen, chopsPid };
}

async function waitFor(seen: { text: string }, re: RegExp, ms: number): Promise<number> {
  const t0 = performance.now();
  while (!re.test(seen.text)) {
    if (performance.now() - t0 > ms) throw new Error(`not seen within ${ms} ms: ${re}\n--- output ---\n${seen.text}`);
    await sleep(20);
  }
  return performance.now() - t0;
}

test('on a terminal, the first Ctrl-C is acknowledged at once with the resume command; the second exits 130 printing it', async () => {
  const { child, seen, chopsPid } = inPty(['run', 'exec', '-i', inventory, '--yes', '--cmd', 'sleep 5'], { cols: 160, rows: 50 });
  const pid = await chopsPid();
  // The live display is drawing (counts per phase), and the command is running.
  await waitFor(seen, /commands \(each host in parallel\): 0\/2 done, 2 running/, 10_000);
  await waitFor(seen, /a[12] › \$ sleep 5/, 5_000);
  process.kill(pid, 'SIGINT');
  const ackMs = await waitFor(seen, /SIGINT: stopping — nothing new starts[\s\S]*resume later with: chops resume (\S+) -i /, 2_000);
  assert.ok(ackMs < 1000, `acknowledged after ${ackMs.toFixed(0)} ms`);
  const runId = /resume later with: chops resume (\S+) -i /.exec(seen.text)![1];
  assert.equal(child.exitCode, null, 'the run goes on after the first Ctrl-C (sleep 5 is still running)');
  const t0 = performance.now();
  process.kill(pid, 'SIGINT');
  const r = await child;
  const exitMs = performance.now() - t0;
  assert.equal(r.exitCode, 130, `exit code 130 after the second Ctrl-C:\n${seen.text}`);
  assert.ok(exitMs < 3000, `left ${exitMs.toFixed(0)} ms after the second Ctrl-C (sleep 5 was still running)`);
  assert.match(
    seen.text,
    new RegExp(`Aborted by SIGINT; the state is saved\\. Resume with: chops resume ${runId} -i ${inventory.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
  );
  // The state on disk says so, and `chops resume` would pick this run.
  const state = parseYaml(readFileSync(path.join(dir, 'state', 'runs', runId, 'state.yml'), 'utf8'));
  assert.equal(state.outcome, 'interrupted');
});

test('a pty without a size (cols 0, rows 0) still shows the live progress', async () => {
  const { child, seen } = inPty(['run', 'exec', '-i', inventory, '--yes', '--cmd', 'sleep 0.5', '--cmd', 'echo done-$((40+2))'], { cols: 0, rows: 0 });
  const r = await child;
  assert.equal(r.exitCode, 0, seen.text);
  assert.match(seen.text, /commands \(each host in parallel\): 0\/2 done, 2 running/);
  assert.match(seen.text, /a1 › #1 \$ sleep 0\.5/);
  assert.match(seen.text, /✔ commands \(each host in parallel\): 2\/2 done in /);
  assert.match(seen.text, /a1 \| done-42/);
});
