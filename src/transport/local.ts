// Local transport (zx) for inventory entries that are this machine: same contract as SSH,
// same `sh -c` wrapping, no network.
import type { Host } from '../inventory/types.js';
import { putCommand, wrapCommand } from './wrap.js';
import type { CommandListener, ExecOptions, ExecResult, Forward, PutOptions, Transport } from './types.js';

export class LocalTransport implements Transport {
  readonly kind = 'local' as const;
  constructor(
    readonly def: Host,
    private readonly listener?: CommandListener,
  ) {}

  get host(): string {
    return this.def.name;
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.run('exec', command, opts);
  }

  probe(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.run('probe', command, opts);
  }

  put(dest: string, content: string | Buffer, opts: PutOptions): Promise<ExecResult> {
    return this.run('put', putCommand(dest, opts), { stdin: content, sudo: opts.sudo }, `put ${dest} (${Buffer.byteLength(content)} bytes, mode ${opts.mode})`);
  }

  private async run(kind: 'exec' | 'probe' | 'put', command: string, opts: ExecOptions, label?: string): Promise<ExecResult> {
    const { $ } = await import('zx/core');
    const wire = wrapCommand(command, { sudo: opts.sudo ?? this.def.ssh.sudo, timeoutMs: opts.timeoutMs, stdin: opts.stdin !== undefined });
    const started = performance.now();
    // zx runs its argument through bash; we hand it one pre-quoted POSIX command line.
    const p = await $({ input: opts.stdin, nothrow: true, quiet: true, verbose: false })`${['sh', '-c', wire]}`;
    const result: ExecResult = {
      command: label ?? command,
      stdout: p.stdout,
      stderr: p.stderr,
      code: p.exitCode ?? 128,
      signal: p.signal ?? undefined,
      durationMs: performance.now() - started,
    };
    this.listener?.({ host: this.host, kind, result });
    return result;
  }

  verify(timeoutMs: number): Promise<ExecResult> {
    return this.probe('true', { timeoutMs });
  }

  async forward(_remoteHost: string, remotePort: number): Promise<Forward> {
    // Locally the port is already reachable.
    return { localPort: remotePort, close: async () => {} };
  }

  async reconnect(): Promise<void> {
    /* nothing to reconnect */
  }

  async close(): Promise<void> {}
}
