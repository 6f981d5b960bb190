// Local child processes for tests and benchmarks, on execa: stdout seen line by line as it
// arrives, never a throw on a non-zero exit (tests assert exit codes themselves), a kill switch.
import { execa } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ProcResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface RunningProcess extends PromiseLike<ProcResult> {
  pid: number;
  done: Promise<ProcResult>;
  kill(sig?: NodeJS.Signals): void;
}

export interface Killable {
  kill(sig?: NodeJS.Signals): void;
}

export interface StartOptions {
  /** Every complete stdout line, as it arrives; CHILD.kill() stops it (e.g. at a kill point). */
  onLine?: (line: string, child: Killable) => void;
  /** The whole stdout so far, after each chunk. */
  onStdout?: (stdout: string, child: Killable) => void;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL after this long (default 10 min): a hung child must not hang the suite. */
  timeoutMs?: number;
  input?: string;
}

export function startProcess(cmd: string, args: string[], opts: StartOptions = {}): RunningProcess {
  const t0 = performance.now();
  const child = execa(cmd, args, {
    cwd: opts.cwd ?? REPO,
    env: opts.env,
    extendEnv: true,
    reject: false,
    stripFinalNewline: false,
    timeout: opts.timeoutMs ?? 600_000,
    killSignal: 'SIGKILL',
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
  });
  const kill = (sig: NodeJS.Signals = 'SIGTERM') => void child.kill(sig);
  const killable: Killable = { kill };
  let stdout = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) opts.onLine?.(l, killable);
    opts.onStdout?.(stdout, killable);
  });
  const done = child.then((r) => ({
    code: r.exitCode ?? null,
    signal: (r.signal as NodeJS.Signals | undefined) ?? null,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    ms: performance.now() - t0,
  }));
  // biome-ignore lint/suspicious/noThenProperty: a thenable on purpose — `await chops([...])` is the result
  return { pid: child.pid!, done, kill, then: (ok, err) => done.then(ok, err) };
}

export function runProcess(cmd: string, args: string[], opts: StartOptions = {}): Promise<ProcResult> {
  return startProcess(cmd, args, opts).done;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
