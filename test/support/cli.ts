// The chops CLI as an operator or cron runs it: always the built bundle (bin/chops.js), never
// the sources through tsx, so tests prove what ships. `await chops([...])` for the result, or
// keep the handle to watch lines and kill it at a kill point.
import path from 'node:path';
import { REPO, startProcess, type RunningProcess, type StartOptions } from './process.js';

export const CHOPS = path.join(REPO, 'bin/chops.js');

export function chops(args: string[], opts: StartOptions = {}): RunningProcess {
  return startProcess(process.execPath, [CHOPS, ...args], { ...opts, env: { NO_COLOR: '1', ...opts.env } });
}

/** Parse --json output: one object per line. */
export function events(stdout: string): any[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

/** `run <id>: …` — the first line of a plain-output run. */
export function runIdOf(stdout: string): string | undefined {
  return /^run (\S+):/m.exec(stdout)?.[1];
}

/**
 * The bundle the CLI tests run, built from this tree: `npm run build` (typecheck + bundle), unless
 * test/run-all.sh built it already for this run (it sets CHOPS_TEST_BUILT=1 after scripts/setup.sh),
 * so a suite builds once instead of once per lab file.
 */
export async function ensureBuilt(): Promise<void> {
  if (process.env.CHOPS_TEST_BUILT === '1') return;
  const { runProcess } = await import('./process.js');
  const build = await runProcess('npm', ['run', '--silent', 'build']);
  if (build.code !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
}
