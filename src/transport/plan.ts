// Plan transport: wraps a real one. Read-only probes and port forwards go through, so the plan is
// decided on real facts; anything that could change the host is recorded instead of performed.
import type { CommandListener, ExecOptions, ExecResult, Forward, PutOptions, Transport } from './types.js';

export interface PlannedChange {
  host: string;
  kind: 'exec' | 'put';
  /** The step that asked for it. */
  step?: string;
  command: string;
  /** For put: the content that would be written (secrets redacted by the caller). */
  content?: string;
}

export class PlanTransport implements Transport {
  readonly kind = 'plan' as const;
  readonly changes: PlannedChange[] = [];

  constructor(
    private readonly inner: Transport,
    private readonly listener?: CommandListener,
    private readonly stepOf?: (host: string) => string | undefined,
  ) {}

  get host(): string {
    return this.inner.host;
  }

  /** What the real transport would do: `sudo -n` when the call or the host's inventory asks for it. */
  private sudo(opts: { sudo?: boolean }): boolean {
    return opts.sudo ?? (this.inner as { def?: { ssh?: { sudo?: boolean } } }).def?.ssh?.sudo ?? false;
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    // Shown the way it runs: the real transports wrap it in `sudo -n -- sh -c …` on sudo hosts.
    const shown = this.sudo(opts) ? `sudo -n ${command}` : command;
    this.changes.push({ host: this.host, kind: 'exec', step: this.stepOf?.(this.host), command: shown });
    return this.record('exec', shown);
  }

  probe(command: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.inner.probe(command, opts);
  }

  async put(dest: string, content: string | Buffer, opts: PutOptions): Promise<ExecResult> {
    const label = `${this.sudo(opts) ? 'sudo -n ' : ''}write ${dest} (${Buffer.byteLength(content)} bytes, mode ${opts.mode}${opts.owner ? `, owner ${opts.owner}` : ''})`;
    this.changes.push({ host: this.host, kind: 'put', step: this.stepOf?.(this.host), command: label, content: content.toString() });
    return this.record('put', label);
  }

  private record(kind: 'exec' | 'put', command: string): ExecResult {
    const result: ExecResult = { command, stdout: '', stderr: '', code: 0, durationMs: 0, recorded: true };
    this.listener?.({ host: this.host, kind, result });
    return result;
  }

  /** Reaching a host changes nothing: the plan verifies hosts as the run does. */
  verify(timeoutMs: number): Promise<ExecResult> {
    return this.inner.verify(timeoutMs);
  }

  forward(remoteHost: string, remotePort: number): Promise<Forward> {
    return this.inner.forward(remoteHost, remotePort);
  }

  async reconnect(): Promise<void> {
    /* a planned reboot does not happen */
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
